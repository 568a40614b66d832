package Tenant::Test;

# Tenant::Test, a registry that survives losing its primary: a 3-member
# etcd and 3 PostgreSQL nodes under Patroni (synchronous mode), all on
# loopback ports of the test's own, in its temp dir. conninfo() then names
# all three nodes with target_session_attrs=read-write, as an operator's
# edges and provisioners would.

use strict;
use warnings;
use File::Path qw(make_path);
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);

our ($PGBIN, $SLOW);

sub start_ha {
    my ($self) = @_;
    my $dir = "$self->{dir}/ha";
    make_path($dir);
    my @n = (1 .. 3);
    my %ha = (dir => $dir, etcd => {}, pg => {});
    $ha{client}{$_} = free_port() for @n;
    $ha{peer}{$_} = free_port() for @n;
    $ha{pgport}{$_} = free_port() for @n;
    $ha{rest}{$_} = free_port() for @n;
    my $cluster = join ',', map { "e$_=http://127.0.0.1:$ha{peer}{$_}" } @n;
    for my $i (@n) {
        make_path("$dir/etcd$i");
        $ha{etcd}{$i} = spawn("$dir/etcd$i.log", undef, '/usr/bin/etcd', '--name', "e$i",
            '--data-dir', "$dir/etcd$i",
            '--listen-client-urls', "http://127.0.0.1:$ha{client}{$i}",
            '--advertise-client-urls', "http://127.0.0.1:$ha{client}{$i}",
            '--listen-peer-urls', "http://127.0.0.1:$ha{peer}{$i}",
            '--initial-advertise-peer-urls', "http://127.0.0.1:$ha{peer}{$i}",
            '--initial-cluster', $cluster, '--initial-cluster-state', 'new',
            '--initial-cluster-token', "tenant-test-$$");
    }
    my $hosts = join ',', map { "127.0.0.1:$ha{client}{$_}" } @n;
    for my $i (@n) {
        # short timings: a dead leader's key goes in ttl (10 s), the others
        # look every loop_wait (1 s)
        write_file("$dir/pg$i.yml", <<"YML");
scope: registry
name: pg$i
restapi: {listen: 127.0.0.1:$ha{rest}{$i}, connect_address: 127.0.0.1:$ha{rest}{$i}}
etcd3: {hosts: "$hosts"}
bootstrap:
  dcs:
    ttl: 10
    loop_wait: 1
    retry_timeout: 5
    maximum_lag_on_failover: 1048576
    synchronous_mode: true
    postgresql:
      use_pg_rewind: true
      parameters: {wal_level: replica, hot_standby: "on", max_wal_senders: 10, max_replication_slots: 10, max_connections: 200, wal_log_hints: "on"}
  initdb: [{encoding: UTF8}, {auth: trust}]
  pg_hba: ["host all all 127.0.0.1/32 trust", "host replication all 127.0.0.1/32 trust", "local all all trust"]
postgresql:
  listen: 127.0.0.1:$ha{pgport}{$i}
  connect_address: 127.0.0.1:$ha{pgport}{$i}
  data_dir: $dir/pg$i
  bin_dir: $PGBIN
  pgpass: $dir/pgpass$i
  authentication: {replication: {username: postgres}, superuser: {username: postgres}}
  parameters: {unix_socket_directories: "$dir", fsync: "off", full_page_writes: "off"}
YML
    }
    if ($< == 0) {
        my (undef, undef, $uid, $gid) = getpwnam('postgres') or die "no postgres user\n";
        system('chown', '-R', "$uid:$gid", $dir) == 0 or die "chown $dir";
    }
    $self->{ha} = \%ha;
    for my $i (@n) {
        $ha{patroni}{$i} = spawn("$dir/patroni$i.log", 'postgres', '/usr/bin/patroni', "$dir/pg$i.yml");
    }
    # all three, not just one replica: on a busy machine the second
    # replica's base backup can still be running when the first is up, and
    # the database made below would reach it only after that
    wait_until(sub { my @r = map { $self->ha_role($_, 'running') } @n;
                     (grep { $_ eq 'primary' } @r) == 1 && (grep { $_ eq 'replica' } @r) == 2 }, 120)
        or die "no Patroni leader with two running replicas:\n" . join '', map { slurp("$dir/patroni$_.log") // '' } @n;
    wait_until(sub { my ($rc) = run_cmd('/usr/bin/createdb', '--maintenance-db', ha_conninfo(\%ha, 'postgres'), 'tenant'); $rc == 0 }, 30)
        or die "createdb on the leader failed";
    # on every node: libpq tries the next host when one refuses the
    # connection, not when one without the database answers FATAL
    for my $i (@n) {
        wait_until(sub { (run_cmd('/usr/bin/psql', '-X', '-At', '-h', '127.0.0.1', '-p', $ha{pgport}{$i},
                                  '-U', 'postgres', '-d', 'tenant', '-c', 'SELECT 1'))[0] == 0 }, 60)
            or die "node $i never had the database tenant:\n" . (slurp("$dir/patroni$i.log") // '');
    }
    $self->{pgport} = $ha{pgport}{ $self->ha_leader };
    return $self;
}

# a process in a group of its own, output to log, as user if given
sub spawn {
    my ($log, $user, @cmd) = @_;
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open STDOUT, '>>', $log or die;
        open STDERR, '>>', $log or die;
        setpgrp(0, 0);
        @cmd = ('runuser', '-u', $user, '--', @cmd) if $user && $< == 0;
        exec @cmd or die "exec $cmd[0]: $!";
    }
    return $pid;
}

sub ha_conninfo {
    my ($ha, $db) = @_;
    my @n = sort keys %{ $ha->{pgport} };
    return 'host=' . join(',', ('127.0.0.1') x @n) . ' port=' . join(',', map { $ha->{pgport}{$_} } @n)
        . " dbname=$db user=postgres connect_timeout=2 target_session_attrs=read-write";
}

# what Patroni's REST API says node i is: "primary", "replica", or "" (down);
# with $state, "" also unless Patroni reports its PostgreSQL in that state
sub ha_role {
    my ($self, $i, $state) = @_;
    my (undef, $out) = run_cmd('curl', '-s', '-m', '2', "http://127.0.0.1:$self->{ha}{rest}{$i}/patroni");
    my ($role) = ($out // '') =~ /"role":\s*"(\w+)"/;
    return '' if defined $state && ($out // '') !~ /"state":\s*"\Q$state\E"/;
    return 'primary' if ($role // '') eq 'master';    # Patroni before 3.1
    return $role // '';
}

# the node that is primary now, or undef
sub ha_leader {
    my ($self) = @_;
    for my $i (sort keys %{ $self->{ha}{rest} }) {
        return $i if $self->ha_role($i) eq 'primary';
    }
    return;
}

# kill -9 of a node: its Patroni and its PostgreSQL, as a machine lost
sub ha_kill {
    my ($self, $i) = @_;
    my $ha = $self->{ha};
    my $pm;
    if (open my $fh, '<', "$ha->{dir}/pg$i/postmaster.pid") { $pm = <$fh>; chomp $pm }
    kill 'KILL', -$ha->{patroni}{$i};
    kill 'KILL', $pm if $pm;
    waitpid $ha->{patroni}{$i}, 0;
    # the backends of a killed postmaster end once they see it gone
    wait_until(sub { !$pm || !kill 0, $pm }, 10);
    $ha->{patroni}{$i} = 0;
}

sub stop_ha {
    my ($self) = @_;
    my $ha = $self->{ha} or return;
    for my $pid (grep { $_ } values %{ $ha->{patroni} }) { kill 'TERM', -$pid }
    for my $pid (grep { $_ } values %{ $ha->{patroni} }) {
        for (1 .. 300) { last if waitpid($pid, WNOHANG) != 0; sleep 0.05 }
        kill 'KILL', -$pid;
        waitpid $pid, 0;
    }
    # a postmaster Patroni did not stop (its Patroni killed): by its pid file
    for my $i (keys %{ $ha->{pgport} }) {
        if (open my $fh, '<', "$ha->{dir}/pg$i/postmaster.pid") {
            my $pm = <$fh>;
            chomp $pm;
            kill 'KILL', $pm if $pm && kill 0, $pm;
        }
    }
    for my $pid (values %{ $ha->{etcd} }) { kill 'TERM', -$pid }
    for my $pid (values %{ $ha->{etcd} }) {
        for (1 .. 100) { last if waitpid($pid, WNOHANG) != 0; sleep 0.05 }
        kill 'KILL', -$pid;
        waitpid $pid, 0;
    }
    wait_until(sub { !$self->ha_processes }, 15);
    delete $self->{ha};
}

# processes of this test's HA cluster (etcd, Patroni, PostgreSQL)
sub ha_processes {
    my ($self) = @_;
    my $dir = $self->{ha} ? $self->{ha}{dir} : "$self->{dir}/ha";
    my @left;
    for my $pid (map { s{/proc/}{}r } glob '/proc/[0-9]*') {
        next if $pid == $$;
        my $cmd = slurp("/proc/$pid/cmdline") // '';
        push @left, "$pid " . ($cmd =~ tr/\0/ /r) if $cmd =~ /\Q$dir\E/;
    }
    return @left;
}

1;
