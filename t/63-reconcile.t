# The reconciler: a tenant process killed by hand is restarted and routing
# recovers; a suspended tenant's process started by hand is stopped; an
# orphan (a tenant the registry does not have) is removed.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Tenant::Test;
use Tenant::Conf;

my $t = Tenant::Test->new->start_pg;
$t->migrate;
$t->start_nginx(http => Tenant::Conf::http());
$t->start_provisioner(reconcile => 1);

my ($rc, $out) = $t->cli('create', 'steady', '--blueprint', 'static', '--wait', '30');
is($rc, 0, 'tenant created') or diag $out;
is($t->get('steady.localhost')->{status}, 200, 'routed');

my ($pid) = grep { Tenant::Test::slurp("/proc/$_/cmdline") =~ m{/site\0} } $t->tenant_pids('steady');
ok($pid, "site process $pid");
kill 'KILL', -$pid;
ok(Tenant::Test::wait_until(sub { $t->get('steady.localhost')->{status} == 502 }, 5), 'killed by hand: 502');
ok(Tenant::Test::wait_until(sub { $t->get('steady.localhost')->{status} == 200 }, 15), 'restarted by the reconciler: 200 again');
my ($again) = grep { Tenant::Test::slurp("/proc/$_/cmdline") =~ m{/site\0} } $t->tenant_pids('steady');
ok($again && $again != $pid, "a new process ($again)");
like($t->provisioner_log, qr/reconcile: steady\/web should run but does not: starting it/, 'the reconciler says what it did');

# a suspended tenant whose process is started again by hand is stopped
($rc) = $t->cli('suspend', 'steady', '--wait');
is($rc, 0, 'suspended');
is(scalar $t->tenant_pids('steady'), 0, 'no process');
my $state = $t->{state_dir};
my $port = $t->psql("SELECT port FROM tenant_ports WHERE tenant_id = 'steady' AND service = 'web'");
my $rogue = fork // die;
if (!$rogue) {
    setpgrp(0, 0);
    chdir "$state/steady/home";
    exec 'busybox', 'httpd', '-f', '-p', "127.0.0.1:$port", '-h', "$state/steady/home/site" or die;
}
open my $fh, '>', "$state/steady/run/web.pid" or die;
my $st = (split ' ', (Tenant::Test::slurp("/proc/$rogue/stat") =~ s/^.*\) //sr))[19];
print $fh "$rogue $st\n";
close $fh;
ok(Tenant::Test::wait_until(sub { waitpid($rogue, POSIX::WNOHANG()) == $rogue }, 15), 'the reconciler stopped the suspended tenant\'s process');

# an orphan: a tenant directory with a running service, unknown to the registry
mkdir "$state/ghost";
mkdir "$state/ghost/run";
my $orphan = fork // die;
if (!$orphan) {
    setpgrp(0, 0);
    chdir "$state/ghost";
    exec 'busybox', 'sleep', '300' or die;
}
sleep 0.2;
open $fh, '>', "$state/ghost/run/web.pid" or die;
$st = (split ' ', (Tenant::Test::slurp("/proc/$orphan/stat") =~ s/^.*\) //sr))[19];
print $fh "$orphan $st\n";
close $fh;
ok(Tenant::Test::wait_until(sub { waitpid($orphan, POSIX::WNOHANG()) == $orphan }, 15), 'the orphan process was removed');
ok(Tenant::Test::wait_until(sub { !-d "$state/ghost" }, 5), 'and its directory');
like($t->provisioner_log, qr/reconcile: ghost is not in the registry: removing it/, 'logged');
ok(-d "$state/steady", 'the real tenant is untouched');

Tenant::Test::finish();
