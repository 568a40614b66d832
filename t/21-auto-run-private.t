# auto/run from a clone inside a directory only root may enter (a clone
# under /root): PostgreSQL, nginx's workers and tenant services still reach
# its state, no directory outside the clone changes mode, and stop removes
# what it made outside the clone.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Temp qw(tempdir);
use Tenant::Test;

plan skip_all => 'needs root (a 0700 home and bind mounts)' if $< != 0;

my $t = Tenant::Test->new;
my $home = tempdir('private-home-XXXXXX', TMPDIR => 1, CLEANUP => 0);
chmod 0700, $home;
my $clone = "$home/ngx_tenant";
mkdir $clone or die;
# the working tree as a clone has it, and the build (to save compiling)
my $top = $Tenant::Test::TOP;
system("cd $top && git ls-files -co --exclude-standard -z | xargs -0 tar -cf - | tar -C $clone -xf -") == 0
    or BAIL_OUT('cannot copy the tree');
system('cp', '-a', "$top/build", "$clone/build") == 0 or BAIL_OUT('cannot copy build/');

my $http = Tenant::Test::free_port();
my $pg = Tenant::Test::free_port();
local $ENV{TENANT_HTTP_PORT} = $http;
my $https = Tenant::Test::free_port();
local $ENV{TENANT_HTTPS_PORT} = $https;
local $ENV{TENANT_PG_PORT} = $pg;
my $ports = Tenant::Test::port_block();
local $ENV{TENANT_SERVICE_PORTS} = "$ports-" . ($ports + 99);
delete local $ENV{TENANT_VAR_DIR};
# the runtimes' install is t/20's (it lives outside any clone)
local $ENV{TENANT_RUNTIMES} = 'none';
my $run = "$clone/auto/run";
my $modes_before = join ',', map { sprintf '%s=%o', $_, (stat $_)[2] & 07777 } ($home, '/tmp');

$t->on_cleanup(sub {
    system("$run stop >/dev/null 2>&1");
    system('rm', '-rf', $home) unless $ENV{TEST_KEEP};
});

my ($rc, $out) = Tenant::Test::run_cmd($run);
is($rc, 0, 'auto/run succeeds from a clone under a 0700 directory') or diag $out;
like($out, qr{using it as /run/ngx-tenant/[0-9a-f]{12}}, 'it says where the state is reachable');
my ($mnt) = $out =~ m{(/run/ngx-tenant/[0-9a-f]{12})};
ok($mnt && -d "$mnt/pg/data", 'the PostgreSQL cluster is reachable there');
ok(-d "$clone/var/pg/data", '... and lives in the clone');

my $conf = "$clone/var/provisioner.conf";
($rc, $out) = Tenant::Test::run_cmd("$clone/build/provisioner", '-c', $conf,
    'create', 'hidden', '--blueprint', 'static', '--wait', '30');
is($rc, 0, 'a tenant is created') or diag $out;
my $r = $t->request(port => $http, host => 'hidden.localhost');
is($r->{status}, 200, 'and served through nginx');
$r = $t->request(port => $http, host => 'localhost', path => '/dashboard/app.js');
is($r->{status}, 200, 'the dashboard is readable by the workers from the private clone');

($rc, $out) = Tenant::Test::run_cmd($run, 'stop');
is($rc, 0, 'auto/run stop succeeds') or diag $out;
ok(!-e $mnt, 'stop removed the mount point');
is(`grep -c ' /run/ngx-tenant' /proc/mounts`, "0\n", 'nothing left mounted');
my $after = join ',', map { sprintf '%s=%o', $_, (stat $_)[2] & 07777 } ($home, '/tmp');
is($after, $modes_before, 'no directory outside the clone changed mode');
my @left = grep { (readlink("/proc/$_/cwd") // '') =~ /^\Q$home\E|^\Q$mnt\E/
                  || (Tenant::Test::slurp("/proc/$_/cmdline") // '') =~ /\Q$clone\E|\Q$mnt\E/ }
           map { s{/proc/}{}r } glob '/proc/[0-9]*';
is(scalar @left, 0, 'no process of the platform left') or diag("@left");

Tenant::Test::finish();
