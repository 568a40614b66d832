# Shared mode is real: static's shared tenants are served by one runtime
# the platform runs (rt-static-shared, an nginx), started by the first
# shared create, health-checked for each tenant, restarted by the
# reconciler; 50 shared tenants each get their own page with no process of
# their own. A blueprint without shared mode refuses it at create.
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
$t->start_nginx(http => Tenant::Conf::http(), workers => 2);
my $bps = Tenant::Blueprints::make($t);
$t->start_provisioner(blueprints => $bps, reconcile => 1);
$t->{api_key} = $t->create_api_key('tests');

my $r = $t->api(POST => 'tenants?wait=60', { name => 'shared1', blueprint => 'static', mode => 'shared',
                                            display_name => 'First Shared Shop', theme => 'fashion' });
is($r->{status}, 200, 'the first shared tenant is created') or diag explain $r->{json};
is($r->{json}{job}{status}, 'done', '... its job done');
is($t->psql("SELECT status FROM tenants WHERE id = 'rt-static-shared'"), 'active', 'the shared runtime was brought up with it');
my @rt = $t->tenant_pids('rt-static-shared');
is(scalar @rt, 1, 'the runtime runs: one service');
is(scalar $t->tenant_pids('shared1'), 0, 'the shared tenant has no process of its own');
$r = $t->get('shared1.localhost');
is($r->{status}, 200, 'shared1 answers 200');
like($r->{body}, qr/First Shared Shop/, '... with its own page');

# 49 more, created concurrently in batches
my @names = map { "shop$_" } 2 .. 50;
for my $n (@names) {
    my $x = $t->api(POST => 'tenants', { name => $n, blueprint => 'static', mode => 'shared', display_name => "Shop number $n" });
    is($x->{status}, 202, "$n queued") or diag explain $x->{json};
}
ok(Tenant::Test::wait_until(sub {
    $t->psql("SELECT count(*) FROM jobs WHERE kind = 'create' AND status IN ('done', 'failed')") == 50
}, 120), 'all 50 shared creates finished');
is($t->psql("SELECT count(*) FROM jobs WHERE kind = 'create' AND status = 'failed'"), 0, 'none failed')
    or diag $t->psql("SELECT string_agg(tenant_id || ': ' || coalesce(error, ''), E'\\n') FROM jobs WHERE status = 'failed'");
my $ok = 0;
for my $n ('shared1', @names) {
    my $x = $t->get("$n.localhost");
    my $want = $n eq 'shared1' ? 'First Shared Shop' : "Shop number $n";
    $ok++ if $x->{status} == 200 && $x->{body} =~ /\Q$want\E/ && $x->{body} !~ /Shop number (?!\Q$n\E\b)/;
}
is($ok, 50, '50 shared tenants: every one 200 with its own content');
is(scalar $t->tenant_pids, 1, 'one process for all of them: the runtime');
is($t->psql("SELECT count(DISTINCT address) FROM tenant_endpoints WHERE tenant_id LIKE 'shop%' OR tenant_id = 'shared1'"), 1,
   'all routed to the runtime\'s one endpoint');

# the runtime tells tenants apart only by a well-formed X-Tenant-ID
my ($addr) = $t->psql("SELECT address FROM tenant_endpoints WHERE tenant_id = 'rt-static-shared'");
my ($port) = $addr =~ /:(\d+)$/;
$r = $t->request(port => $port, host => 'x', headers => { 'X-Tenant-ID' => '../rt-static-shared' });
is($r->{status}, 404, 'a malformed X-Tenant-ID reaches no directory');

# the reconciler restarts the runtime
kill 'KILL', -$rt[0];
ok(Tenant::Test::wait_until(sub { scalar $t->tenant_pids('rt-static-shared') == 1
                                  && $t->get('shop7.localhost')->{status} == 200 }, 20),
   'the runtime, killed, is restarted by the reconciler and serves again');
like($t->provisioner_log, qr{reconcile: rt-static-shared/web should run but does not}, '... as its log says');

# delete: the tenant's pages go, the others stay
$r = $t->api(DELETE => 'tenants/shop9?wait=30');
is($r->{json}{job}{status}, 'done', 'a shared tenant deleted');
ok(!-e "$t->{state_dir}/rt-static-shared/home/sites/shop9", 'its pages are gone from the runtime');
is($t->get('shop9.localhost')->{status}, 404, 'it answers 404');
is($t->get('shop10.localhost')->{status}, 200, 'its neighbours still answer');

# refused: shared mode where the blueprint offers none; the runtime by hand;
# a name in the runtimes' prefix
$t->psql(q{UPDATE blueprints SET modes = '{dedicated}' WHERE name = 'dbapp'});
$r = $t->api(POST => 'tenants', { name => 'noshare', blueprint => 'dbapp', mode => 'shared' });
is($r->{status}, 422, 'shared mode on a blueprint without it: 422');
like($r->{json}{error}{message}, qr/has no mode "shared"; valid: dedicated/, '... saying which modes it has');
$r = $t->api(POST => 'tenants', { name => 'myruntime', blueprint => 'static-shared' });
is($r->{status}, 422, 'the runtime blueprint cannot be created by hand');
$r = $t->api(POST => 'tenants', { name => 'rt-mine', blueprint => 'static' });
is($r->{status}, 422, 'rt- names are the platform\'s');
ok(!(grep { $_->{name} eq 'static-shared' } @{ $t->api(GET => 'blueprints')->{json}{blueprints} }),
   'the runtime blueprint is not offered');

Tenant::Test::finish();
