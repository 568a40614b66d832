# Memory and CPU limits on the process driver: each service with
# "resources" runs in a control group of its own (cgroup v2, or v1's memory
# and cpu hierarchies) limited as its blueprint says, before it runs a line
# of its own; the kernel holds it there (an allocation over the limit is
# killed); the group goes with the service. Where no control group can be
# written, services still run, and the log says the limits are not
# enforced. `resource_limits = off` turns them off.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use Tenant::Test;
use Tenant::Conf;

my $t = Tenant::Test->new->start_pg;
$t->migrate;
$t->start_nginx(http => Tenant::Conf::http());
$t->start_provisioner;
$t->{api_key} = $t->create_api_key('limits');
my $parent = $t->{cgroup_parent};

my $v2 = -f '/sys/fs/cgroup/cgroup.controllers';
like($t->provisioner_log, qr/limits: cgroup v[12] under \/sys\/fs\/cgroup/, 'the provisioner limits services with control groups');

# a service's group directory for a controller ('memory', 'cpu'), v1 or v2
sub group_dir {
    my ($tenant, $svc, $ctl) = @_;
    return $v2 ? "/sys/fs/cgroup/$parent/$tenant.$svc" : "/sys/fs/cgroup/$ctl/$parent/$tenant.$svc";
}
sub read1 { my $v = Tenant::Test::slurp($_[0]) // ''; chomp $v; $v }
sub pid_of {
    my ($tenant, $svc) = @_;
    my ($pid) = (Tenant::Test::slurp("$t->{state_dir}/$tenant/run/$svc.pid") // '') =~ /^(\d+)/;
    return $pid;
}

sub create {
    my ($name) = @_;
    my $r = $t->api(POST => 'tenants?wait=30', { name => $name, blueprint => 'static' });
    return $r->{status} == 200 && $t->get("$name.localhost")->{status} == 200;
}

ok(create('lim1'), 'a static tenant is created and answers');
for my $svc (qw(web admin)) {
    my $pid = pid_of('lim1', $svc);
    my $groups = Tenant::Test::slurp("/proc/$pid/cgroup") // '';
    if ($v2) {
        like($groups, qr{^0::/\Q$parent\E/lim1\.$svc$}m, "lim1/$svc runs in its own group");
        is(read1(group_dir('lim1', $svc) . '/memory.max'), 32 << 20, '... memory.max is the blueprint\'s 32 MB');
        is(read1(group_dir('lim1', $svc) . '/cpu.max'), '25000 100000', '... cpu.max a quarter of a CPU');
    } else {
        like($groups, qr{:memory:/\Q$parent\E/lim1\.$svc$}m, "lim1/$svc runs in its own memory group");
        like($groups, qr{:cpu:/\Q$parent\E/lim1\.$svc$}m, '... and cpu group');
        is(read1(group_dir('lim1', $svc, 'memory') . '/memory.limit_in_bytes'), 32 << 20,
           "... limited to the blueprint's 32 MB");
        is(read1(group_dir('lim1', $svc, 'cpu') . '/cpu.cfs_quota_us') . '/' . read1(group_dir('lim1', $svc, 'cpu') . '/cpu.cfs_period_us'),
           '25000/100000', '... and a quarter of a CPU');
    }
}

# the kernel holds the group to it: 64 MB at once is killed inside, not outside
my $procs = group_dir('lim1', 'web', 'memory') . '/cgroup.procs';
my ($rc) = Tenant::Test::run_cmd('sh', '-c', "echo \$\$ > $procs && exec busybox dd if=/dev/zero of=/dev/null bs=64M count=1");
is($rc, 137, 'a 64 MB allocation in the web service\'s group is killed (SIGKILL, the memory limit)');
($rc) = Tenant::Test::run_cmd('busybox', 'dd', 'if=/dev/zero', 'of=/dev/null', 'bs=64M', 'count=1');
is($rc, 0, '... the same outside it is not');
is($t->get('lim1.localhost')->{status}, 200, 'the tenant still answers');

# the groups go with the tenant
is($t->api(DELETE => 'tenants/lim1?wait=30')->{status}, 200, 'lim1 is deleted');
ok(!-d group_dir('lim1', 'web', 'memory') && !-d group_dir('lim1', 'admin', 'cpu'), "... and its services' groups are gone");

# limits off, or no control groups to write: services run, unlimited, and
# the log says why
$t->stop_provisioner;
$t->start_provisioner(extra => ['resource_limits = off']);
ok(create('lim2'), 'resource_limits = off: a tenant is created');
unlike(Tenant::Test::slurp('/proc/' . pid_of('lim2', 'web') . '/cgroup'), qr/\Q$parent\E/, '... outside any group of ours');

$t->stop_provisioner;
$t->start_provisioner(extra => ['cgroup_root = ' . $t->dir . '/no-cgroups']);
like($t->provisioner_log, qr/memory and CPU limits are not enforced: no writable cgroup/,
     'no control groups to write: the log says the limits are not enforced, and why');
ok(create('lim3'), '... and tenants are still created');

$t->stop_provisioner;
my ($crc, $cout) = Tenant::Test::run_cmd($Tenant::Test::PROVISIONER, '-c',
    do { my $f = $t->dir . '/bad.conf'; Tenant::Test::write_file($f, "cgroup_parent = ../escape\n"); $f }, 'run');
like($cout, qr/cgroup_parent must be one name/, 'a cgroup_parent that would leave its hierarchy is refused');

Tenant::Test::finish();
