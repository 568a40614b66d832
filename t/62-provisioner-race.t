# Two provisioners racing over 50 queued jobs: each job is done exactly
# once, and both did some of the work.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Tenant::Test;
use Tenant::Conf;
use Tenant::Blueprints;

my $t = Tenant::Test->new->start_pg;
$t->migrate;
$t->start_nginx(backends => ['shared1'], http => Tenant::Conf::http());
my $bps = Tenant::Blueprints::make($t, shared => "127.0.0.1:$t->{backend}{shared1}");
$t->start_provisioner(blueprints => $bps, name => 'p1');
$t->stop_provisioner('p1');    # published the blueprints; now queue work

# 50 jobs queued before anyone works: 20 dedicated, 30 shared tenants
$t->psql("INSERT INTO tenants (id, blueprint, mode) SELECT 'race' || g, 'static', 'dedicated' FROM generate_series(1, 20) g;"
    . " INSERT INTO tenants (id, blueprint, mode) SELECT 'share' || g, 'sharedapp', 'shared' FROM generate_series(1, 30) g;"
    . " INSERT INTO jobs (tenant_id, kind) SELECT id, 'create' FROM tenants ORDER BY random()");
is($t->psql("SELECT count(*) FROM jobs WHERE status = 'queued'"), 50, '50 jobs queued');

$t->start_provisioner(blueprints => $bps, name => 'p1', lease => 30);
$t->start_provisioner(blueprints => $bps, name => 'p2', lease => 30);

ok(Tenant::Test::wait_until(sub { $t->psql("SELECT count(*) FROM jobs WHERE status IN ('done', 'failed')") == 50 }, 120),
   'all 50 jobs finished');
is($t->psql("SELECT count(*) FROM jobs WHERE status = 'done'"), 50, 'all done, none failed');
is($t->psql("SELECT count(*) FROM jobs WHERE attempts <> 1"), 0, 'each claimed exactly once')
    or diag($t->psql("SELECT string_agg(id || ' ' || tenant_id || ' attempts=' || attempts || ' error=' || coalesce(error, '-'), E'\n') FROM jobs WHERE attempts <> 1"),
            "\n", join "\n", map { /^.*(?:retry|lost|release|took over|error).*$/mg } map { $t->provisioner_log($_) } qw(p1 p2));

my %done;
for my $p (qw(p1 p2)) {
    $done{$_}++ for $t->provisioner_log($p) =~ /job (\d+): create of \S+ done/g;
}
is(scalar keys %done, 50, 'the logs show 50 jobs completed');
is(scalar(grep { $_ != 1 } values %done), 0, 'none completed twice');
my %by = map { split /=/ } split /,/, $t->psql("SELECT string_agg(claimed_by || '=' || n, ',') FROM (SELECT claimed_by, count(*) n FROM jobs GROUP BY 1) x");
ok(($by{p1} // 0) > 0 && ($by{p2} // 0) > 0, "both provisioners worked (p1: " . ($by{p1} // 0) . ", p2: " . ($by{p2} // 0) . ")");

is($t->psql("SELECT count(*) FROM tenants WHERE status = 'active'"), 50, '50 active tenants');
is($t->psql("SELECT count(DISTINCT port) FROM tenant_ports"), 40, '40 distinct ports for 20 dedicated tenants: no collision');
is(scalar $t->tenant_pids, 40, '40 service processes, two per dedicated tenant');
my $ok = grep { $t->get("race$_.localhost")->{status} == 200 } 1 .. 20;
is($ok, 20, 'every dedicated tenant routed');
$ok = grep { $t->get("share$_.localhost")->{body} =~ /tenant=share$_\b/ } 1 .. 30;
is($ok, 30, 'every shared tenant routed to the shared runtime');

Tenant::Test::finish();
