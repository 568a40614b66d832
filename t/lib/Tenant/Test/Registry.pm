package Tenant::Test;

# Tenant::Test, the registry: a throwaway PostgreSQL cluster of the test's
# own (started, frozen, restarted, stopped), migrated by the provisioner, and
# the rows tests write and count in it.

use strict;
use warnings;
use File::Path qw(make_path remove_tree);
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);
use Test::More;

# set in Tenant/Test.pm
our ($PGBIN, $PROVISIONER, $SLOW);

# --- PostgreSQL -----------------------------------------------------------

sub start_pg {
    my ($self) = @_;
    my $pgdir = "$self->{dir}/pg";
    make_path($pgdir);
    if ($< == 0) {
        my (undef, undef, $uid, $gid) = getpwnam('postgres')
            or die "no postgres user: run auto/deps\n";
        chown $uid, $gid, $pgdir;
    }
    $self->{pgport} = free_port();
    $self->{pgdir} = $pgdir;

    my ($rc, $out) = run_cmd(as_postgres("$PGBIN/initdb", '-D', "$pgdir/data",
        '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8'));
    die "initdb failed: $out" if $rc;

    $self->pg_ctl_start;

    ($rc, $out) = run_cmd("$PGBIN/createdb", '-h', '127.0.0.1',
        '-p', $self->{pgport}, '-U', 'postgres', 'tenant');
    die "createdb failed: $out" if $rc;

    $self->psql('CREATE EXTENSION pg_stat_statements');
    return $self;
}

sub pg_ctl_start {
    my ($self) = @_;
    my $pgdir = $self->{pgdir};
    my $opts = "-p $self->{pgport} -k $pgdir -c listen_addresses=127.0.0.1"
        . " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        . " -c shared_preload_libraries=pg_stat_statements"
        . " -c pg_stat_statements.track=all -c max_connections=200";
    my ($rc, $out) = run_cmd(as_postgres("$PGBIN/pg_ctl", '-D', "$pgdir/data",
        '-l', "$pgdir/log", '-o', $opts, '-w', '-t', '30', 'start'));
    die "pg_ctl start failed: $out\n" . slurp("$pgdir/log") if $rc;
    $self->{pg_running} = 1;
}

sub stop_pg {
    my ($self, $mode) = @_;
    return unless $self->{pg_running};
    $self->pg_cont if $self->{pg_stopped_sig};
    run_cmd(as_postgres("$PGBIN/pg_ctl", '-D', "$self->{pgdir}/data",
        '-m', $mode // 'fast', '-w', '-t', '30', 'stop'));
    $self->{pg_running} = 0;
}

sub restart_pg {
    my ($self) = @_;
    $self->stop_pg;
    $self->pg_ctl_start;
}

sub pg_pid {
    my ($self) = @_;
    open my $fh, '<', "$self->{pgdir}/data/postmaster.pid" or return;
    my $pid = <$fh>;
    chomp $pid;
    return $pid;
}

# SIGSTOP the postmaster and every backend: the registry hangs, not refuses
sub pg_freeze {
    my ($self) = @_;
    my $pid = $self->pg_pid or die "no postmaster";
    my @pids = ($pid, split ' ', `pgrep -P $pid`);
    kill 'STOP', @pids;
    $self->{pg_stopped_sig} = \@pids;
}

sub pg_cont {
    my ($self) = @_;
    kill 'CONT', @{ $self->{pg_stopped_sig} || [] };
    delete $self->{pg_stopped_sig};
}

sub conninfo {
    my ($self) = @_;
    return ha_conninfo($self->{ha}, 'tenant') if $self->{ha};
    return "host=127.0.0.1 port=$self->{pgport} dbname=tenant user=postgres"
        . " connect_timeout=2";
}

sub psql {
    my ($self, $sql, @args) = @_;
    my ($rc, $out) = run_cmd("/usr/bin/psql",
        '-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-d', $self->conninfo,
        '-c', $sql, @args);
    die "psql failed ($sql): $out" if $rc;
    chomp $out;
    return $out;
}

# like psql, but returns (ok, output) instead of dying
sub try_psql {
    my ($self, $sql) = @_;
    my ($rc, $out) = run_cmd('/usr/bin/psql', '-X', '-q', '-At',
        '-v', 'ON_ERROR_STOP=1', '-d', $self->conninfo, '-c', $sql);
    chomp $out;
    return ($rc == 0, $out);
}

sub provisioner {
    my ($self, @args) = @_;
    return run_cmd($PROVISIONER, '--db', $self->conninfo, @args);
}

sub migrate {
    my ($self) = @_;
    my ($rc, $out) = $self->provisioner('migrate');
    die "migrate failed: $out" if $rc;
    return $out;
}

# counts registry look-ups made by the module, from pg_stat_statements
sub lookup_queries {
    my ($self) = @_;
    return $self->psql("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements"
        . " WHERE query LIKE '%FROM tenant_hosts WHERE host = \$1%'"
        . " AND query NOT LIKE '%pg_stat_statements%'");
}

sub reset_query_stats {
    my ($self) = @_;
    $self->psql('SELECT pg_stat_statements_reset()');
}


sub as_postgres {
    my (@cmd) = @_;
    return $< == 0 ? ('runuser', '-u', 'postgres', '--', @cmd) : @cmd;
}


# another nginx on the registry of $other (which owns and stops it)
sub share_pg {
    my ($self, $other) = @_;
    $self->{$_} = $other->{$_} for qw(pgport pgdir);
    # the other's HA registry, which it stops
    $self->{ha} = $other->{ha} if $other->{ha};
    $self->{ha_shared} = 1 if $other->{ha};
    return $self;
}

# a persistent registry connection: commits are timed exactly
sub dbh {
    my ($self) = @_;
    require DBI;
    return $self->{dbh} //= DBI->connect(
        "dbi:Pg:host=127.0.0.1;port=$self->{pgport};dbname=tenant", 'postgres', '',
        { AutoCommit => 1, RaiseError => 1, PrintError => 0 });
}


sub settle_notifications {
    my ($self) = @_;
    my $last = -1;
    wait_until(sub {
        my $n = $self->cache_api(GET => 'stats')->{json}{notifications} // 0;
        my $same = $n == $last;
        $last = $n;
        sleep 0.2 * $SLOW unless $same;
        $same;
    }, 10);
}

# backends holding the tenant_changed LISTEN
sub listeners {
    my ($self) = @_;
    return $self->psql("SELECT count(*) FROM pg_stat_activity"
        . " WHERE query = 'LISTEN tenant_changed'");
}

# A block of 100 ports for the provisioner of this test file alone, below
# the kernel's ephemeral range (32768 up): a port in that range can be taken
# at any moment by an outgoing connection of a test running alongside, and a
# tenant service that cannot bind fails its first attempt. A lock file per
# block, held until the test file exits, keeps parallel files apart.

# --- tenants --------------------------------------------------------------

sub add_tenant {
    my ($self, $id, %o) = @_;
    my $status = $o{status} // 'active';
    my $bp = $o{blueprint} // 'static';
    my $sql = "INSERT INTO tenants (id, blueprint, status) VALUES"
        . " ('$id', '$bp', '$status');";
    for my $role (qw(site admin)) {
        for my $ep (@{ $o{$role} || [] }) {
            my ($addr, $w) = ref $ep ? @$ep : ($ep, 1);
            $sql .= "INSERT INTO tenant_endpoints (tenant_id, role, address,"
                . " weight) VALUES ('$id', '$role', '$addr', $w);";
        }
    }
    for my $h (@{ $o{hosts} || [] }) {
        my ($host, $role) = ref $h ? @$h : ($h, 'site');
        $sql .= "INSERT INTO tenant_hosts (host, tenant_id, role) VALUES"
            . " ('$host', '$id', '$role');";
    }
    $self->psql("BEGIN; $sql COMMIT;");
}

1;
