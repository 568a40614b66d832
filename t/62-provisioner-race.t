# Two provisioners racing over 50 queued jobs: each job is done exactly
# once, and both did some of the work; a claimer that lost its job just
# before its end writes nothing.
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

# One provisioner with workers = 3: three processes take jobs side by side,
# each under its own name, each job once; a worker killed is replaced; the
# daemon stops its workers with it.
$t->stop_provisioner($_) for qw(p1 p2);
$t->psql("INSERT INTO tenants (id, blueprint, mode) SELECT 'par' || g, 'static', 'dedicated' FROM generate_series(1, 10) g;"
    . " INSERT INTO tenants (id, blueprint, mode) SELECT 'parsh' || g, 'sharedapp', 'shared' FROM generate_series(1, 20) g;"
    . " INSERT INTO jobs (tenant_id, kind) SELECT id, 'create' FROM tenants WHERE id LIKE 'par%' ORDER BY random()");
my $daemon = $t->start_provisioner(blueprints => $bps, name => 'p3', lease => 30, extra => ['workers = 3']);
ok(Tenant::Test::wait_until(sub { $t->psql("SELECT count(*) FROM jobs WHERE tenant_id LIKE 'par%' AND status IN ('done', 'failed')") == 30 }, 120),
   'workers: all 30 jobs finished');
is($t->psql("SELECT count(*) FROM jobs WHERE tenant_id LIKE 'par%' AND status = 'done' AND attempts = 1"), 30,
   'workers: each done, claimed once');
my @claimers = split /,/, $t->psql("SELECT string_agg(DISTINCT claimed_by, ',') FROM jobs WHERE tenant_id LIKE 'par%'");
ok(@claimers >= 2, 'workers: jobs were taken by ' . scalar(@claimers) . ' processes (' . join(' ', @claimers) . ')');
ok(!(grep { !/^p3(-w[12])?$/ } @claimers), '... the daemon (p3) and its workers (p3-w1, p3-w2)');
my @workers = split ' ', `pgrep -P $daemon -f 'provisioner.* run'`;
is(scalar @workers, 2, 'two worker processes beside the daemon');
kill 'KILL', $workers[0];
ok(Tenant::Test::wait_until(sub {
    my @now = split ' ', `pgrep -P $daemon -f 'provisioner.* run'`;
    @now == 2 && !grep { $_ == $workers[0] } @now;
}, 10), 'a worker killed is replaced');
$t->stop_provisioner('p3');
my $conf = $t->{prov}{p3}{conf};
my $left = sub {
    grep { my $c = Tenant::Test::slurp("/proc/$_/cmdline"); $c =~ /\Q$conf\E\0run/ }
    map { s{/proc/}{}r } glob '/proc/[0-9]*';
};
ok(Tenant::Test::wait_until(sub { !$left->() }, 10), 'stopping the daemon stops its workers: no provisioner process left')
    or diag join ' ', $left->();

# A claimer whose job was taken over between its last step and its end
# writes nothing: the routes, the status and the job's end are one
# transaction (sent in one round trip), rolled back when the job is no
# longer its own. The failpoint stops the claimer there; the test takes
# the job from it, lets it go on, and later lets the job be done once.
my $p4 = $t->start_provisioner(blueprints => $bps, name => 'p4', lease => 30,
                               env => { PROVISIONER_FAILPOINT => 'create:finish:stop' });
my $stopped = sub { (split ' ', Tenant::Test::slurp("/proc/$p4/stat") =~ s/^.*\) //sr)[0] eq 'T' };
$t->psql("INSERT INTO tenants (id, blueprint, mode) VALUES ('late', 'static', 'dedicated');"
    . " INSERT INTO jobs (tenant_id, kind) VALUES ('late', 'create')");
ok(Tenant::Test::wait_until($stopped, 30), 'lost claim: the claimer stopped before its last transaction');
$t->psql("UPDATE jobs SET claimed_by = 'thief' WHERE tenant_id = 'late'");
kill 'CONT', $p4;
ok(Tenant::Test::wait_until(sub { $t->provisioner_log('p4') =~ /lost its claim, not finishing it/ }, 10),
   'lost claim: it sees the job is no longer its own');
# nobody holds the job's lock now: taken over (by p4 itself), stopped again
ok(Tenant::Test::wait_until(sub { $t->psql("SELECT attempts FROM jobs WHERE tenant_id = 'late'") == 2 && $stopped->() }, 30),
   'lost claim: the job is taken over, the new attempt stopped before its end');
is($t->psql("SELECT status FROM tenants WHERE id = 'late'"), 'provisioning', 'lost claim: the first attempt did not make the tenant active');
is($t->psql("SELECT count(*) FROM tenant_endpoints WHERE tenant_id = 'late'"), 0, '... nor route it');
kill 'CONT', $p4;
ok(Tenant::Test::wait_until(sub { $t->psql("SELECT status FROM jobs WHERE tenant_id = 'late'") eq 'done' }, 30),
   'lost claim: the second attempt finishes the job');
is($t->psql("SELECT status FROM tenants WHERE id = 'late'"), 'active', '... the tenant active');
is($t->psql("SELECT count(*) FROM tenant_endpoints WHERE tenant_id = 'late'"), 2, '... with its two endpoints, written once');
is($t->get('late.localhost')->{status}, 200, '... and routed');
$t->stop_provisioner('p4');

# The health wait outlasts the 3 s lease: the services step's own record
# renews the lease for it (10 s a service checked), with no round trip
# apart. The failpoint stops the claimer after the wait, before its record.
$t->reset_query_stats;
my $p5 = $t->start_provisioner(blueprints => $bps, name => 'p5',
                               env => { PROVISIONER_FAILPOINT => 'create:health:stop' });
my $stopped5 = sub { (split ' ', Tenant::Test::slurp("/proc/$p5/stat") =~ s/^.*\) //sr)[0] eq 'T' };
$t->psql("INSERT INTO tenants (id, blueprint, mode) VALUES ('leased', 'static', 'dedicated');"
    . " INSERT INTO jobs (tenant_id, kind) VALUES ('leased', 'create')");
ok(Tenant::Test::wait_until($stopped5, 30), 'lease: the claimer stopped after the health wait');
my $lease = $t->psql("SELECT round(extract(epoch FROM lease_until - updated_at)) FROM jobs WHERE tenant_id = 'leased'");
ok($lease >= 20, "lease: renewed for the health wait ($lease s: 10 s a service checked) with the services step, not for the 3 s lease");
is($t->psql("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query LIKE 'UPDATE jobs SET lease_until%'"),
   0, 'lease: no statement of its own to extend it');
kill 'CONT', $p5;
ok(Tenant::Test::wait_until(sub { $t->psql("SELECT status FROM jobs WHERE tenant_id = 'leased'") eq 'done' }, 30),
   'lease: the job done, once');
is($t->psql("SELECT attempts FROM jobs WHERE tenant_id = 'leased'"), 1, '... at the first attempt');
$t->stop_provisioner('p5');

Tenant::Test::finish();
