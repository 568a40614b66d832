# The swarm driver against a real dockerd in swarm mode (one manager on
# 127.0.0.1): tenant services as Swarm services with their labels, limits,
# restart policy and placement; suspend and resume by replicas; a rolling
# update to a new image; the reconciler bringing back a removed service and
# re-routing a tenant whose endpoint no longer matches where its task
# runs; nothing left behind.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MIME::Base64;
use Time::HiRes qw(time);
use IO::Socket::INET;
use JSON::PP;
use Tenant::Test;
use Tenant::Conf;

my $t = Tenant::Test->new->start_pg;
$t->migrate;
$t->start_nginx(http => Tenant::Conf::http());
$t->start_dockerd;

# a provisioner pointed at an engine that is no swarm manager says so
my ($rc, $out) = $t->docker('swarm', 'leave', '--force');
is($rc, 0, 'the swarm left for a moment');
$t->start_provisioner(driver => 'swarm', reconcile => 1, ready => 0);
ok(Tenant::Test::wait_until(sub { $t->provisioner_log =~ /not a swarm manager \(node state "inactive"\): run docker swarm init/ }, 20),
   'no swarm: the provisioner refuses the driver and says how to fix it');
$t->stop_provisioner('p1');
($rc, $out) = $t->swarm_init;
is($rc, 0, 'the swarm again') or diag $out;

$t->start_provisioner(driver => 'swarm', reconcile => 1);
$t->{api_key} = $t->create_api_key('swarm');
like($t->provisioner_log, qr/swarm: a manager of 1 node/, 'the driver found a swarm manager');

# --- lifecycle --------------------------------------------------------------------
my $t0 = time;
my $r = $t->api(POST => 'tenants?wait=60', { name => 'swarmy', blueprint => 'static', theme => 'fashion' });
is($r->{json}{job}{status}, 'done', 'create on the swarm driver: done') or diag explain $r->{json}, $t->provisioner_log;
my $admin = $r->{json}{job}{result}{admin};
ok(Tenant::Test::wait_until(sub { $t->get('swarmy.localhost')->{status} == 200 }, 10), 'swarmy.localhost: 200 from a swarm task');
diag sprintf 'create -> first 200 on the swarm driver: %.2f s', time - $t0;
like($t->get('swarmy.localhost')->{body}, qr/theme-fashion/, 'the themed storefront');
is($t->get('admin.swarmy.localhost', '/', headers => { Authorization => 'Basic ' . encode_base64("$admin->{email}:$admin->{password}", '') })->{status},
   200, 'the admin service opens with the generated login');

my ($code, $svc) = $t->engine(GET => '/services/tenant-swarmy-web');
is($code, 200, 'a swarm service named after tenant and service');
is($svc->{Spec}{Labels}{'io.ngx-tenant.tenant'}, 'swarmy', 'labelled with the tenant');
is($svc->{Spec}{Labels}{'io.ngx-tenant.blueprint'}, 'static', '... and the blueprint');
my $tt = $svc->{Spec}{TaskTemplate};
is($tt->{Resources}{Limits}{MemoryBytes}, 32 << 20, 'memory limit from the blueprint');
is($tt->{Resources}{Limits}{NanoCPUs}, 250_000_000, 'CPU limit from the blueprint');
is($tt->{Resources}{Reservations}{MemoryBytes}, 32 << 20, '... memory reserved, so the scheduler places by it');
ok(!$tt->{Resources}{Reservations}{NanoCPUs}, '... CPU not reserved: shared, as on the other drivers');
is($tt->{RestartPolicy}{Condition}, 'any', 'restarted whenever it stops');
is($svc->{Spec}{Mode}{Replicated}{Replicas}, 1, 'one replica');
my $uid = $t->psql("SELECT uid FROM tenant_uids WHERE tenant_id = 'swarmy'");
like($tt->{ContainerSpec}{User}, qr/^$uid:$uid$/, "it runs as the tenant's own uid ($uid), not root");
is_deeply($tt->{ContainerSpec}{CapabilityDrop}, ['ALL'], 'with no capabilities');
my $port = $t->psql("SELECT port FROM tenant_ports WHERE tenant_id = 'swarmy' AND service = 'web'");
is($t->psql("SELECT address FROM tenant_endpoints WHERE tenant_id = 'swarmy' AND role = 'site'"), "127.0.0.1:$port",
   "the endpoint: the task's node address and the service's port");

$r = $t->api(GET => 'tenants/swarmy/logs?lines=20');
is($r->{status}, 200, 'logs through the service logs endpoint');
ok((grep { $_->{line} =~ /GET|response/ } @{ $r->{json}{job}{result}{lines} }), 'the task\'s own output')
    or diag explain $r->{json};

$r = $t->api(POST => 'tenants/swarmy/suspend?wait=30');
is($r->{json}{job}{status}, 'done', 'suspend done');
is($t->get('swarmy.localhost')->{status}, 503, 'suspended: 503');
($code, $svc) = $t->engine(GET => '/services/tenant-swarmy-web');
is($svc->{Spec}{Mode}{Replicated}{Replicas}, 0, 'scaled to 0 replicas');
my $tcp = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Timeout => 1);
ok(!$tcp, 'and nothing listens on its port');
$r = $t->api(POST => 'tenants/swarmy/resume?wait=30');
is($r->{json}{job}{status}, 'done', 'resume done');
ok(Tenant::Test::wait_until(sub { $t->get('swarmy.localhost')->{status} == 200 }, 20), 'resumed: 200');

# --- a rolling update to a new image -------------------------------------------------
($rc, $out) = $t->docker('tag', 'localhost/tenant-static:latest', 'localhost/tenant-static:v2');
is($rc, 0, 'a second image tag') or diag $out;
my $bps = $t->dir . '/bp-v2';
mkdir $bps;
system("sed 's#localhost/tenant-static:latest#localhost/tenant-static:v2#' $Tenant::Test::TOP/blueprints/static.json > $bps/static.json"
    . " && ln -s $Tenant::Test::TOP/blueprints/static $bps/static") == 0 or die;
$t->stop_provisioner('p1');
$t->start_provisioner(driver => 'swarm', reconcile => 1, blueprints => $bps);
($code, $svc) = $t->engine(GET => '/services/tenant-swarmy-web');
my $version = $svc->{Version}{Index};
my $sid = $svc->{ID};
# the new blueprint's spec reaches the service when it next starts
$r = $t->api(POST => 'tenants/swarmy/suspend?wait=30');
is($r->{json}{job}{status}, 'done', 'suspended under the new blueprint');
$r = $t->api(POST => 'tenants/swarmy/resume?wait=60');
is($r->{json}{job}{status}, 'done', 'resumed: done') or diag explain $r->{json};
($code, $svc) = $t->engine(GET => '/services/tenant-swarmy-web');
like($svc->{Spec}{TaskTemplate}{ContainerSpec}{Image}, qr{^localhost/tenant-static:v2}, 'the service now runs the new image');
ok($svc->{Version}{Index} > $version, 'updated in place: a new version of the service');
is($svc->{ID}, $sid, '... with the same id');
is($svc->{Spec}{UpdateConfig}{Order}, 'stop-first', 'stop-first: the new task needs the old one\'s port');
ok(Tenant::Test::wait_until(sub { $t->get('swarmy.localhost')->{status} == 200 }, 20), 'and serves after the update');

# --- reconciler -----------------------------------------------------------------------
($code) = $t->engine(DELETE => '/services/tenant-swarmy-web');
is($code, 200, 'a service removed by hand');
ok(Tenant::Test::wait_until(sub { $t->get('swarmy.localhost')->{status} == 200
                                  && ($t->engine(GET => '/services/tenant-swarmy-web'))[0] == 200 }, 30),
   'the reconciler makes it again and routing recovers');

# where the registry says a task is and where it runs differ (as after a
# task moved to another node): the reconciler follows the task
$t->psql("UPDATE tenant_endpoints SET address = '127.0.0.9:$port' WHERE tenant_id = 'swarmy' AND role = 'site'");
ok(Tenant::Test::wait_until(sub {
        $t->psql("SELECT address FROM tenant_endpoints WHERE tenant_id = 'swarmy' AND role = 'site'") eq "127.0.0.1:$port" }, 20),
   'the endpoint is rewritten to where the task runs');
like($t->provisioner_log, qr/swarmy's site is now at 127\.0\.0\.1:$port \(the registry had 127\.0\.0\.9:$port\)/, '... and the log says why');
ok(Tenant::Test::wait_until(sub { $t->get('swarmy.localhost')->{status} == 200 }, 10), 'routed there again');

# an orphan service (a tenant the registry does not have) goes
($code) = $t->engine(POST => '/services/create', {
    Name => 'tenant-ghost-web',
    Labels => { 'io.ngx-tenant.managed' => 'true', 'io.ngx-tenant.tenant' => 'ghost', 'io.ngx-tenant.service' => 'web' },
    TaskTemplate => { ContainerSpec => { Image => 'localhost/tenant-static:latest', Command => ['/bin/busybox', 'sleep', '300'] },
                      Networks => [ { Target => 'host' } ] },
    Mode => { Replicated => { Replicas => 1 } } });
is($code, 201, 'an orphan service');
ok(Tenant::Test::wait_until(sub { ($t->engine(GET => '/services/tenant-ghost-web'))[0] == 404 }, 30),
   'the reconciler removes it');

# --- placement constraints from the blueprint ------------------------------------------
my $bpp = $t->dir . '/bp-placed';
mkdir $bpp;
open my $in, '<', "$Tenant::Test::TOP/blueprints/static.json" or die;
my $json = JSON::PP->new->decode(do { local $/; <$in> });
$json->{services}{web}{placement} = ['node.labels.tier==shops'];
open my $o, '>', "$bpp/static.json" or die;
print $o JSON::PP->new->encode($json);
close $o;
symlink "$Tenant::Test::TOP/blueprints/static", "$bpp/static" or die;
$t->stop_provisioner('p1');
$t->start_provisioner(driver => 'swarm', reconcile => 1, blueprints => $bpp);
($rc, $out) = $t->cli('create', 'placed', '--blueprint', 'static');
my $pid_job = $t->psql("SELECT id FROM jobs WHERE tenant_id = 'placed'");
ok(Tenant::Test::wait_until(sub {
        my ($c, $s) = $t->engine(GET => '/services/tenant-placed-web');
        $c == 200 && ($s->{Spec}{TaskTemplate}{Placement}{Constraints}[0] // '') eq 'node.labels.tier==shops' }, 30),
   "the blueprint's placement constraint reaches the service");
my ($nc, $nodes) = $t->engine(GET => '/nodes');
ok(Tenant::Test::wait_until(sub { my ($c, $tasks) = $t->engine(GET => '/tasks?filters=' . uri('{"service":["tenant-placed-web"]}'));
        grep { ($_->{Status}{Err} // $_->{Status}{Message} // '') =~ /no suitable node|constraint/ } @$tasks }, 20),
   'no node has the label: the task stays pending, as the constraint says');
($rc, $out) = $t->docker('node', 'update', '--label-add', 'tier=shops', $nodes->[0]{ID});
is($rc, 0, 'the node labelled tier=shops') or diag $out;
is($t->wait_job($pid_job, 60), 'done', 'then the create finishes') or diag $t->psql("SELECT error FROM jobs WHERE id = $pid_job");
ok(Tenant::Test::wait_until(sub { $t->get('placed.localhost')->{status} == 200 }, 20), 'placed.localhost: 200');

# --- deletes leave nothing -------------------------------------------------------------
for my $name (qw(swarmy placed)) {
    $r = $t->api(DELETE => "tenants/$name?wait=60");
    is($r->{json}{job}{status}, 'done', "$name deleted");
    is($t->get("$name.localhost")->{status}, 404, "$name.localhost: 404");
}
my ($lc, $list) = $t->engine(GET => '/services');
is(scalar @$list, 0, 'no service left');
ok(Tenant::Test::wait_until(sub { my ($c, $l) = $t->engine(GET => '/containers/json?all=1'); $c == 200 && !@$l }, 30),
   'no container left');
$t->stop_provisioner('p1');
$t->stop_dockerd;
my @left = $t->dockerd_processes;
is(scalar @left, 0, 'no dockerd, containerd or shim left') or diag join "\n", @left;

sub uri { my ($s) = @_; $s =~ s/([^A-Za-z0-9_.~-])/sprintf '%%%02X', ord $1/ge; return $s }

Tenant::Test::finish();
