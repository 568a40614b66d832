package Tenant::Test;

# Tenant::Test, the provisioner: the daemon started on the test's registry
# and blueprints, its CLI, the tenant processes it runs, and a Podman engine
# of the test's own for the docker driver.

use strict;
use warnings;
use File::Path qw(make_path remove_tree);
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);
use Test::More;

# set in Tenant/Test.pm
our ($PROVISIONER, $SLOW, $TOP, $VALGRIND);

# --- provisioner ---------------------------------------------------------

# Writes the provisioner's config (once) and starts `provisioner run`.
# %o: blueprints (dir), env (extra environment, e.g. a failpoint), name.
sub start_provisioner {
    my ($self, %o) = @_;
    my $dir = "$self->{dir}/prov";
    make_path("$dir/tenants");
    if (!-f "$dir/secret-key") {
        write_file("$dir/secret-key", join '', map { sprintf '%02x', int rand 256 } 1 .. 32);
        chmod 0600, "$dir/secret-key";
    }
    $self->{port_base} //= port_block();
    my $name = $o{name} // 'p1';
    # one process per name: a restart replaces the old one (a test whose
    # failpoint did not fire must not leave it running)
    $self->stop_provisioner($name) if $self->{prov}{$name} && $self->{prov}{$name}{pid};
    my $conf = "$dir/$name.conf";
    write_file($conf, join "\n",
        "db = " . $self->conninfo,
        "driver = " . ($o{driver} // 'process'),
        "blueprints = " . ($o{blueprints} // "$TOP/blueprints"),
        "runtimes = $TOP/runtimes",
        "state_dir = $dir/tenants",
        "backup_dir = $dir/backups",
        "secret_key = $dir/secret-key",
        "id = $name",
        "base_domain = localhost",
        "base_port = " . ($self->{port} // 8080),
        "port_min = $self->{port_base}",
        "port_max = " . ($self->{port_base} + 99),
        "lease = " . ($o{lease} // 3),
        "poll_interval = 1",
        "reconcile_interval = " . ($o{reconcile} // 1),
        "health_timeout = 10",
        # the test's own control groups, removed by cleanup
        "cgroup_parent = " . ($self->{cgroup_parent} //= "ngx-tenant-test-$$-" . int(rand(1e6))),
        ($self->{engine_sock} ? ("docker_socket = $self->{engine_sock}") : ()),
        ($o{extra} ? @{ $o{extra} } : ()), '');
    chmod 0600, $conf;    # it names the registry, as auto/run's does (0600)
    my $log = "$dir/$name.log";
    # the log is appended to: a restart is ready when its own lines say so
    my $from = -s $log // 0;
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open STDOUT, '>>', $log or die;
        open STDERR, '>>', $log or die;
        setpgrp(0, 0);
        %ENV = (%ENV, %{ $o{env} || {} });
        exec(($VALGRIND ? valgrind_cmd("$dir/valgrind-$name") : ()),
             $PROVISIONER, '-c', $conf, 'run') or die "exec: $!";
    }
    $self->{prov}{$name} = { pid => $pid, log => $log, conf => $conf };
    $self->{state_dir} = "$dir/tenants";
    # ready once it has published the blueprints (ready => 0: one expected
    # to refuse to start, which the test reads from its log)
    return $pid if exists $o{ready} && !$o{ready};
    wait_until(sub { substr(slurp($log) // '', $from) =~ /blueprint\(s\) loaded/ }, 10 * $SLOW)
        or die "provisioner $name did not start:\n" . slurp($log);
    return $pid;
}

# the control groups the test's provisioners made, each and its parent
sub cgroup_dirs {
    my ($self) = @_;
    return () unless $self->{cgroup_parent};
    return map { (glob("$_/*.*/"), $_) } grep { -d }
        map { "/sys/fs/cgroup/$_$self->{cgroup_parent}" } ('', 'memory/', 'cpu/');
}

sub remove_cgroups {
    my ($self) = @_;
    for my $d ($self->cgroup_dirs) {
        $d =~ s{/$}{};
        for (1 .. 50) { last if rmdir($d) || !-d $d; sleep 0.02 }
    }
}

sub provisioner_log { slurp($_[0]{prov}{$_[1] // 'p1'}{log}) }

sub provisioner_conf { $_[0]{prov}{$_[1] // 'p1'}{conf} }

sub stop_provisioner {
    my ($self, $name, $sig) = @_;
    my $p = $self->{prov}{$name // 'p1'} or return;
    return unless $p->{pid};
    kill $sig // 'TERM', $p->{pid};
    for (1 .. 200 * $SLOW) {
        last if waitpid($p->{pid}, WNOHANG) != 0;
        sleep 0.05;
    }
    if (kill 0, $p->{pid}) { kill 'KILL', $p->{pid}; waitpid $p->{pid}, 0 }
    # its workers share its process group (setpgrp above): none outlives it
    kill 'KILL', -$p->{pid};
    $p->{pid} = 0;
}

# has it exited by itself (a failpoint)? reaps it if so
sub provisioner_exited {
    my ($self, $name) = @_;
    my $p = $self->{prov}{$name // 'p1'};
    return 1 unless $p->{pid};
    if (waitpid($p->{pid}, WNOHANG) == $p->{pid}) { $p->{pid} = 0; return 1 }
    return 0;
}

# the CLI with this test's config: (exit code, stdout+stderr)
sub cli {
    my ($self, @args) = @_;
    return run_cmd($PROVISIONER, '-c', $self->provisioner_conf, @args);
}

# pids of live tenant processes, from the process driver's pid files
sub tenant_pids {
    my ($self, $tenant) = @_;
    my @pids;
    for my $f (glob("$self->{state_dir}/" . ($tenant // '*') . "/run/*.pid")) {
        my ($pid) = slurp($f) =~ /^(\d+)/ or next;
        push @pids, $pid if kill 0, $pid;
    }
    return @pids;
}

# processes working inside the tenants' directories (or one tenant's):
# whatever the provisioner started, pid file or not
sub stray_processes {
    my ($self, $tenant) = @_;
    return () unless $self->{state_dir};
    my $dir = $self->{state_dir} . (defined $tenant ? "/$tenant" : '');
    my @p;
    for my $d (glob '/proc/[0-9]*') {
        my $cwd = readlink("$d/cwd") // next;
        next unless $cwd eq $dir || index($cwd, "$dir/") == 0;
        push @p, $d =~ s{/proc/}{}r;
    }
    return @p;
}

# SQL in a tenant's own database, as its service was told to reach it
# (the dbapp blueprints write their database URL to db_url)
sub tenant_sql {
    my ($self, $name, $sql) = @_;
    my $url = slurp("$self->{state_dir}/$name/home/db_url");
    my ($rc, $out) = run_cmd('/usr/bin/psql', '-X', '-q', '-At',
        '-v', 'ON_ERROR_STOP=1', '-d', $url, '-c', $sql);
    die "tenant psql ($sql): $out" if $rc;
    chomp $out;
    return $out;
}

sub wait_job {
    my ($self, $id, $timeout) = @_;
    wait_until(sub { $self->psql("SELECT status FROM jobs WHERE id = $id") =~ /^(done|failed)$/ }, $timeout // 20);
    return $self->psql("SELECT status FROM jobs WHERE id = $id");
}


# deletes a tenant with processes through the API and checks nothing of it
# is left: its database, role, files and processes
sub delete_leaves_nothing {
    my ($self, $name) = @_;
    (my $db = "tenant_$name") =~ s/-/_/g;
    my @pids = $self->tenant_pids($name);
    Test::More::ok(@pids, "$name has processes");
    Test::More::is($self->api(DELETE => "tenants/$name?wait=60")->{status}, 200, "$name is deleted");
    Test::More::is($self->psql("SELECT count(*) FROM pg_database WHERE datname = '$db'"), 0, '... its database is gone');
    Test::More::is($self->psql("SELECT count(*) FROM pg_roles WHERE rolname = '$db'"), 0, '... its role');
    Test::More::ok(!-e "$self->{state_dir}/$name", '... its files');
    Test::More::ok(wait_until(sub { !grep { kill 0, $_ } @pids }, 10), '... and its processes');
}


# --- podman ---------------------------------------------------------------

# Podman's Docker-compatible service on a socket of this test's, with
# storage, run state and network config in the temp dir: images,
# containers and networks go with it. Builds the static blueprint's image
# (busybox-static; the blueprint's files are bind-mounted).
sub start_podman {
    my ($self) = @_;
    my $dir = "$self->{dir}/podman";
    make_path("$dir/storage", "$dir/run", "$dir/networks", "$dir/image/bin", "$dir/tmp");
    write_file("$dir/containers.conf", <<"CONF");
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
netns = "host"
init_path = "/usr/bin/catatonit"
log_driver = "k8s-file"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$dir/events.log"
tmp_dir = "$dir/tmp"
[network]
network_config_dir = "$dir/networks"
CONF
    $self->{podman_dir} = $dir;
    $self->{engine_sock} = "$dir/podman.sock";
    my @podman = $self->podman_cmd;
    my $pid = fork // die;
    if (!$pid) {
        open STDOUT, '>>', "$dir/service.log";
        open STDERR, '>>', "$dir/service.log";
        setpgrp(0, 0);
        $ENV{CONTAINERS_CONF} = "$dir/containers.conf";
        exec @podman, 'system', 'service', '--time=0', "unix://$self->{engine_sock}" or die;
    }
    $self->{podman_pid} = $pid;
    wait_until(sub { -S $self->{engine_sock} }, 20)
        or die "podman service did not start:\n" . slurp("$dir/service.log");

    system('cp', '/bin/busybox', "$dir/image/bin/busybox") == 0 or die "no busybox-static";
    system("tar -C $dir/image -cf $dir/image.tar .") == 0 or die "tar failed";
    my ($rc, $out) = $self->podman('import', "$dir/image.tar", 'localhost/tenant-static:latest');
    die "podman import: $out" if $rc;
    return $self;
}

sub podman_cmd {
    my ($self) = @_;
    my $dir = $self->{podman_dir};
    return ('podman', '--root', "$dir/storage", '--runroot', "$dir/run", '--storage-driver', 'vfs');
}

sub podman {
    my ($self, @args) = @_;
    local $ENV{CONTAINERS_CONF} = "$self->{podman_dir}/containers.conf";
    return run_cmd($self->podman_cmd, @args);
}

# the engine's API over its socket: (HTTP status, decoded JSON or body)
sub engine {
    my ($self, $method, $path, $body) = @_;
    require JSON::PP;
    my @cmd = ('curl', '-s', '-w', '\n%{http_code}', '--unix-socket', $self->{engine_sock}, '-X', $method);
    push @cmd, '-H', 'Content-Type: application/json', '-d', JSON::PP::encode_json($body) if $body;
    my (undef, $out) = run_cmd(@cmd, "http://d/v1.41$path");
    my ($text, $code) = $out =~ /^(.*)\n(\d{3})$/s;
    my $json = eval { JSON::PP::decode_json($text) };
    return ($code // 0, $json // $text);
}

sub stop_podman {
    my ($self) = @_;
    return unless $self->{podman_pid};
    $self->podman('rm', '--all', '--force', '--time', '1');
    $self->podman('network', 'prune', '--force');
    kill 'TERM', -$self->{podman_pid};
    for (1 .. 100) { last if waitpid($self->{podman_pid}, WNOHANG) != 0; sleep 0.05 }
    kill 'KILL', -$self->{podman_pid};
    waitpid $self->{podman_pid}, 0;
    $self->{podman_pid} = 0;
    # conmon runs `podman container cleanup` on its own after a container
    # exits, outside the service's process group: give it time to finish
    wait_until(sub { !$self->podman_processes }, 15);
}

# --- dockerd and a one-node swarm ---------------------------------------------

# Debian's dockerd on a socket of this test's, its data, run state and
# swarm in the temp dir (vfs: no overlay mounts to undo), as the swarm's
# one manager on 127.0.0.1; the static blueprint's image imported as for
# podman. /usr/bin/docker: the machine may have another docker first in
# PATH.
#
# nodes => 2: a second dockerd in a network namespace of the test's own,
# joined as a worker, a veth pair between the two (the manager advertises
# its end of it, so the worker reaches it, and each node's tasks are
# reached at its own address).
sub start_dockerd {
    my ($self, %o) = @_;
    my $dir = "$self->{dir}/dockerd";
    make_path("$dir/image/bin");
    $self->{dockerd_dir} = $dir;
    my $advertise = '127.0.0.1';
    if (($o{nodes} // 1) == 2) {
        my $n = $$ % 250 + 1;
        $self->{netns} = "tenant-test-$$";
        $self->{veth} = "tv$$";
        for my $cmd ("ip netns add $self->{netns}", "ip link add $self->{veth} type veth peer name $self->{veth}n",
                     "ip link set $self->{veth}n netns $self->{netns}", "ip addr add 10.231.$n.1/24 dev $self->{veth}",
                     "ip link set $self->{veth} up", "ip -n $self->{netns} addr add 10.231.$n.2/24 dev $self->{veth}n",
                     "ip -n $self->{netns} link set $self->{veth}n up", "ip -n $self->{netns} link set lo up") {
            system($cmd) == 0 or die "$cmd failed";
        }
        $advertise = "10.231.$n.1";
        $self->{node_addrs} = [ "10.231.$n.1", "10.231.$n.2" ];
    }
    $self->{engine_sock} = $self->dockerd_node('manager');
    $self->{swarm_addr} = $advertise;
    my ($rc, $out) = $self->swarm_init;
    die "docker swarm init: $out" if $rc;

    system('cp', '/bin/busybox', "$dir/image/bin/busybox") == 0 or die "no busybox-static";
    system("tar -C $dir/image -cf $dir/image.tar .") == 0 or die "tar failed";
    ($rc, $out) = $self->docker('import', "$dir/image.tar", 'localhost/tenant-static:latest');
    die "docker import: $out" if $rc;

    if ($self->{netns}) {
        my $sock = $self->dockerd_node('worker', $self->{netns});
        (my $token = ($self->docker('swarm', 'join-token', '-q', 'worker'))[1]) =~ s/\s+//g;
        my @w = ('/usr/bin/docker', '-H', "unix://$sock");
        ($rc, $out) = run_cmd(@w, 'swarm', 'join', '--token', $token, '--advertise-addr',
                              $self->{node_addrs}[1], "$advertise:$self->{swarm_port}");
        die "docker swarm join: $out" if $rc;
        ($rc, $out) = run_cmd(@w, 'import', "$dir/image.tar", 'localhost/tenant-static:latest');
        die "docker import on the worker: $out" if $rc;
        $self->{worker_sock} = $sock;
    }
    return $self;
}

# one dockerd (in netns, if given: nsenter enters only the network, so
# the cgroup mounts stay as they are); its socket
sub dockerd_node {
    my ($self, $name, $netns) = @_;
    my $dir = "$self->{dockerd_dir}/$name";
    make_path("$dir/data", "$dir/exec");
    my $sock = "$dir/docker.sock";
    my $pid = fork // die;
    if (!$pid) {
        open STDOUT, '>>', "$dir/dockerd.log";
        open STDERR, '>>', "$dir/dockerd.log";
        setpgrp(0, 0);
        exec(($netns ? ('nsenter', "--net=/run/netns/$netns") : ()),
            '/usr/sbin/dockerd', '--iptables=false', '--ip6tables=false', '--bridge=none',
            '--storage-driver=vfs', '-H', "unix://$sock", '--data-root', "$dir/data",
            '--exec-root', "$dir/exec", '--pidfile', "$dir/dockerd.pid") or die;
    }
    push @{ $self->{dockerd_pids} }, $pid;
    wait_until(sub { -S $sock && (run_cmd('curl', '-s', '--unix-socket', $sock, 'http://d/_ping'))[1] eq 'OK' }, 30)
        or die "dockerd $name did not start:\n" . slurp("$dir/dockerd.log");
    return $sock;
}

# the manager on a port of the test's own (not 2377: tests run side by
# side), the data path too
sub swarm_init {
    my ($self) = @_;
    $self->{swarm_port} = free_port();
    # UDP (VXLAN), 1024-49151 only: per test process, not free_port()'s
    my $dp = 10000 + $$ % 30000;
    return $self->docker('swarm', 'init', '--advertise-addr', "$self->{swarm_addr}:$self->{swarm_port}",
                         '--listen-addr', "$self->{swarm_addr}:$self->{swarm_port}", '--data-path-port', $dp);
}

sub docker {
    my ($self, @args) = @_;
    return run_cmd('/usr/bin/docker', '-H', "unix://$self->{engine_sock}", @args);
}

# services first (their tasks' containers go with them), then the swarm
# and the daemon; containerd-shims outlive it a moment
sub stop_dockerd {
    my ($self) = @_;
    return unless $self->{dockerd_pids} && @{ $self->{dockerd_pids} };
    my ($rc, $out) = $self->docker('service', 'ls', '-q');
    $self->docker('service', 'rm', split ' ', $out) if !$rc && $out =~ /\S/;
    my @socks = ($self->{engine_sock}, $self->{worker_sock} // ());
    for my $sock (@socks) {
        my @d = ('/usr/bin/docker', '-H', "unix://$sock");
        wait_until(sub { my ($c, $o) = run_cmd(@d, 'ps', '-aq'); !$c && $o !~ /\S/ }, 30);
    }
    run_cmd('/usr/bin/docker', '-H', "unix://$_", 'swarm', 'leave', '--force') for reverse @socks;
    for my $pid (@{ $self->{dockerd_pids} }) {
        kill 'TERM', $pid;
        for (1 .. 200) { last if waitpid($pid, WNOHANG) != 0; sleep 0.05 }
        kill 'KILL', -$pid;
        waitpid $pid, 0;
    }
    $self->{dockerd_pids} = [];
    wait_until(sub { !$self->dockerd_processes }, 15);
    if ($self->{netns}) {
        system('ip', 'netns', 'del', $self->{netns});
        system("ip link del $self->{veth} 2>/dev/null");
        delete $self->{netns};
    }
    # dockerd leaves its namespace mounts (netns/default) behind
    open my $m, '<', '/proc/mounts' or die;
    my @mounts = grep { index($_, $self->{dockerd_dir}) == 0 } map { (split ' ')[1] } <$m>;
    system('umount', '-l', $_) for reverse @mounts;
}

# processes of this test's dockerd (containerd, shims): "pid cmdline" each
sub dockerd_processes {
    my ($self) = @_;
    return unless $self->{dockerd_dir};
    my @left;
    for my $pid (map { s{/proc/}{}r } glob '/proc/[0-9]*') {
        next if $pid == $$;
        my $cmd = slurp("/proc/$pid/cmdline") // '';
        push @left, "$pid " . ($cmd =~ tr/\0/ /r) if $cmd =~ /\Q$self->{dockerd_dir}\E/;
    }
    return @left;
}

# processes still working on this test's podman storage: "pid cmdline" each
sub podman_processes {
    my ($self) = @_;
    return unless $self->{podman_dir};
    my @left;
    for my $pid (map { s{/proc/}{}r } glob '/proc/[0-9]*') {
        next if $pid == $$;
        my $cmd = slurp("/proc/$pid/cmdline") // '';
        push @left, "$pid " . ($cmd =~ tr/\0/ /r) if $cmd =~ /\Q$self->{podman_dir}\E/;
    }
    return @left;
}

# waits until the listener has taken in every pending notification (the
# count in the cache API's stats stops moving): slow under valgrind

1;
