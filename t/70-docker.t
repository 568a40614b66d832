# The docker driver against a real Podman service (Docker Engine API):
# the full lifecycle with real containers, the logs endpoint, the
# reconciler, bridge networking; nothing left behind.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MIME::Base64;
use Tenant::Test;
use Tenant::Conf;

my $t = Tenant::Test->new->start_pg;
$t->migrate;
$t->start_nginx(http => Tenant::Conf::http());
$t->start_podman;
$t->start_provisioner(driver => 'docker', reconcile => 1);
$t->{api_key} = $t->create_api_key('docker');
like($t->provisioner_log, qr/docker: engine at .* speaks API 1\.\d+/, 'API version negotiated from /version');

# --- lifecycle -----------------------------------------------------------------
my $r = $t->api(POST => 'tenants?wait=60', { name => 'boxed', blueprint => 'static', theme => 'minimal' });
is($r->{json}{job}{status}, 'done', 'create on the docker driver: done') or diag explain $r->{json}, $t->provisioner_log;
my $admin = $r->{json}{job}{result}{admin};
$r = $t->get('boxed.localhost');
is($r->{status}, 200, 'boxed.localhost: 200 from a container');
like($r->{body}, qr/theme-minimal/, 'the themed storefront');
is($t->get('admin.boxed.localhost', '/', headers => { Authorization => 'Basic ' . encode_base64("$admin->{email}:$admin->{password}", '') })->{status},
   200, 'the admin container opens with the generated login');

my ($code, $list) = $t->engine(GET => '/containers/json?all=1');
my %c = map { $_->{Names}[0] => $_ } @$list;
ok($c{'/tenant-boxed-web'} && $c{'/tenant-boxed-admin'}, 'two containers, named after tenant and service');
is($c{'/tenant-boxed-web'}{Labels}{'io.ngx-tenant.tenant'}, 'boxed', 'labelled with the tenant');
is($c{'/tenant-boxed-web'}{Labels}{'io.ngx-tenant.blueprint'}, 'static', '... and the blueprint');
($code, my $insp) = $t->engine(GET => '/containers/tenant-boxed-web/json');
is($insp->{HostConfig}{Memory}, 32 << 20, 'memory limit from the blueprint');
is($insp->{HostConfig}{NanoCpus}, 250_000_000, 'CPU limit from the blueprint');
is($insp->{HostConfig}{RestartPolicy}{Name}, 'unless-stopped', 'restart policy');

$r = $t->api(GET => 'tenants/boxed/logs?lines=20');
is($r->{status}, 200, 'logs through the engine');
ok((grep { $_->{line} =~ /GET|response/ } @{ $r->{json}{job}{result}{lines} }), 'the container\'s own output, demultiplexed')
    or diag explain $r->{json};

$r = $t->api(POST => 'tenants/boxed/suspend?wait=30');
is($r->{json}{job}{status}, 'done', 'suspend done');
is($t->get('boxed.localhost')->{status}, 503, 'suspended: 503');
($code, $insp) = $t->engine(GET => '/containers/tenant-boxed-web/json');
ok(!$insp->{State}{Running}, 'the container is stopped');
$r = $t->api(POST => 'tenants/boxed/resume?wait=30');
is($r->{json}{job}{status}, 'done', 'resume done');
ok(Tenant::Test::wait_until(sub { $t->get('boxed.localhost')->{status} == 200 }, 10), 'resumed: 200');

# --- reconciler -------------------------------------------------------------------
($code) = $t->engine(DELETE => '/containers/tenant-boxed-web?force=true');
is($code, 204, 'a container removed by hand');
ok(Tenant::Test::wait_until(sub { $t->get('boxed.localhost')->{status} == 200
                                  && $t->get('boxed.localhost')->{body} =~ /theme-minimal/ }, 20),
   'the reconciler makes it again and routing recovers');
($code) = $t->engine(POST => '/containers/create?name=tenant-ghost-web', {
    Image => 'localhost/tenant-static:latest', Cmd => ['/bin/busybox', 'sleep', '300'],
    Labels => { 'io.ngx-tenant.managed' => 'true', 'io.ngx-tenant.tenant' => 'ghost', 'io.ngx-tenant.service' => 'web' },
    HostConfig => { NetworkMode => 'host' } });
is($code, 201, 'an orphan container (a tenant the registry does not have)');
$t->engine(POST => '/containers/tenant-ghost-web/start');
ok(Tenant::Test::wait_until(sub { ($t->engine(GET => '/containers/tenant-ghost-web/json'))[0] == 404 }, 20),
   'the reconciler removes it');

# engine errors reach the job with the engine's message
$t->psql(q{UPDATE blueprints SET definition = jsonb_set(definition, '{services,web,image}', '"localhost/no-such-image:1"') WHERE name = 'static'});
my $bps = $t->dir . '/bp-missing';
mkdir $bps;
system("sed 's#localhost/tenant-static:latest#localhost/no-such-image:1#' $Tenant::Test::TOP/blueprints/static.json > $bps/static.json && ln -s $Tenant::Test::TOP/blueprints/static $bps/static");
$t->stop_provisioner('p1');
# queued while no provisioner runs, with one attempt: no retries to wait for
my ($rc, $out) = $t->cli('create', 'noimage', '--blueprint', 'static');
$t->psql("UPDATE jobs SET max_attempts = 1 WHERE tenant_id = 'noimage'");
$t->start_provisioner(driver => 'docker', name => 'p1', blueprints => $bps);
my $nid = $t->psql("SELECT id FROM jobs WHERE tenant_id = 'noimage'");
$rc = $t->wait_job($nid, 30) eq 'done' ? 0 : 1;
isnt($rc, 0, 'a missing image fails the create');
my $err = $t->psql("SELECT error FROM jobs WHERE tenant_id = 'noimage'");
like($err, qr/engine: create container: .*no-such-image/i, "the job's error carries the engine's message: $err");
$t->stop_provisioner('p1');
$t->start_provisioner(driver => 'docker', name => 'p1');

$r = $t->api(DELETE => 'tenants/boxed?wait=30');
is($r->{json}{job}{status}, 'done', 'delete done');
is($t->get('boxed.localhost')->{status}, 404, 'deleted: 404');
($code, $list) = $t->engine(GET => '/containers/json?all=1&filters=' . '%7B%22label%22%3A%5B%22io.ngx-tenant.tenant%3Dboxed%22%5D%7D');
is(scalar @$list, 0, 'its containers are gone');

# --- bridge networking: a network per tenant, the container's IP as endpoint ----------
$t->stop_provisioner('p1');
$t->start_provisioner(driver => 'docker', name => 'p1', extra => ['docker_network = bridge']);
($rc, $out) = $t->cli('create', 'bridged', '--blueprint', 'static', '--wait', '60');
is($rc, 0, 'create on a bridge network') or diag $out, $t->provisioner_log;
my $addr = $t->psql("SELECT address FROM tenant_endpoints WHERE tenant_id = 'bridged' AND role = 'site'");
unlike($addr, qr/^127\./, "the endpoint is the container's own address ($addr)");
is($t->get('bridged.localhost')->{status}, 200, 'routed to it');
($code, $list) = $t->engine(GET => '/networks');
ok((grep { $_->{Name} eq 'tenant-bridged' } @$list), 'the tenant has its own network');
($rc) = $t->cli('delete', 'bridged', '--wait', '60');
is($rc, 0, 'deleted');
($code, $list) = $t->engine(GET => '/networks');
ok(!(grep { $_->{Name} eq 'tenant-bridged' } @$list), 'and its network with it');

# --- nothing left behind --------------------------------------------------------------
$t->cli('delete', 'noimage', '--wait', '30');
($code, $list) = $t->engine(GET => '/containers/json?all=1');
is(scalar @$list, 0, 'no container left');
$t->stop_provisioner('p1');
$t->stop_podman;
# a container that is still exiting keeps its conmon a moment: wait for
# it (bounded) before saying something was left
Tenant::Test::wait_until(sub { !$t->podman_processes }, 30);
my @left = $t->podman_processes;
is(scalar @left, 0, 'no podman, conmon or container process left') or diag join "\n", @left;

Tenant::Test::finish();
