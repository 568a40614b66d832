package Tenant::Test;

# Per-test-file fixtures: a throwaway PostgreSQL cluster and an nginx with
# the built module, in a temp dir, on free loopback ports. Everything started
# here is stopped in END, also when the test dies, so test files are
# independent and `prove -j2` works.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use Fcntl qw(:flock);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);
use Test::More;
use JSON::PP ();

our $TOP = abs_path(dirname(__FILE__) . '/../../..');
our $BUILD = "$TOP/build";
our $PGBIN = do {
    my @v = sort { $b <=> $a } map { m{/(\d+)$} ? $1 : () }
        glob('/usr/lib/postgresql/*');
    @v ? "/usr/lib/postgresql/$v[0]/bin" : die "PostgreSQL server binaries not found: run auto/deps\n";
};

my @instances;

# TEST_VALGRIND=1: nginx and the provisioner run under valgrind (memcheck);
# time limits in tests are multiplied by $SLOW.
our $VALGRIND = $ENV{TEST_VALGRIND} ? 1 : 0;
our $SLOW = $VALGRIND ? 20 : 1;
# the provisioner binary: auto/test points this at a sanitizer build
our $PROVISIONER = $ENV{TENANT_PROVISIONER} // "$BUILD/provisioner";

sub valgrind_cmd {
    my ($log) = @_;
    return ('valgrind', '--quiet', "--log-file=$log.%p", '--leak-check=full',
            '--show-leak-kinds=definite', '--errors-for-leak-kinds=definite',
            '--num-callers=30', "--suppressions=$TOP/t/valgrind.supp");
}

sub new {
    my ($class, %opt) = @_;
    my $dir = tempdir('tenant-test-XXXXXX', TMPDIR => 1, CLEANUP => 0);
    chmod 0755, $dir;
    my $self = bless { dir => $dir, owner => $$, %opt }, $class;
    push @instances, $self;
    return $self;
}

sub dir { $_[0]{dir} }

# another nginx on the registry of $other (which owns and stops it)
sub share_pg {
    my ($self, $other) = @_;
    $self->{$_} = $other->{$_} for qw(pgport pgdir);
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

sub cache_api {
    my ($self, $method, $path) = @_;
    require JSON::PP;
    my $r = $self->request(method => $method, host => 'localhost',
                           path => "/tenant-cache/$path",
                           headers => { Authorization => "Bearer $self->{cache_token}" });
    $r->{json} = eval { JSON::PP::decode_json($r->{body}) };
    return $r;
}

# the admin API: $body is a Perl structure (sent as JSON) or a raw string
sub api {
    my ($self, $method, $path, $body, %o) = @_;
    require JSON::PP;
    my %h = (%{ $o{headers} || {} });
    $h{Authorization} //= "Bearer $self->{api_key}" if $self->{api_key} && !$o{nokey};
    my $r = $self->request(method => $method, host => 'localhost',
        path => "/api/$path", headers => \%h, timeout => 90,
        body => ref $body ? JSON::PP->new->canonical->encode($body) : $body);
    $r->{json} = eval { JSON::PP::decode_json($r->{body}) };
    return $r;
}

sub create_api_key {
    my ($self, $name) = @_;
    my ($rc, $key) = $self->provisioner('apikey', 'create', $name // 'test');
    die "apikey create: $key" if $rc;
    chomp $key;
    return $key;
}

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
    my $conf = "$dir/$name.conf";
    write_file($conf, join "\n",
        "db = " . $self->conninfo,
        "driver = " . ($o{driver} // 'process'),
        "blueprints = " . ($o{blueprints} // "$TOP/blueprints"),
        "state_dir = $dir/tenants",
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
        ($self->{podman_sock} ? ("docker_socket = $self->{podman_sock}") : ()),
        ($o{extra} ? @{ $o{extra} } : ()), '');
    chmod 0600, $conf;    # it names the registry, as auto/run's does (0600)
    my $log = "$dir/$name.log";
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
    # ready once it has published the blueprints
    wait_until(sub { slurp($log) =~ /blueprint\(s\) loaded/ }, 10 * $SLOW)
        or die "provisioner $name did not start:\n" . slurp($log);
    return $pid;
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

sub wait_job {
    my ($self, $id, $timeout) = @_;
    wait_until(sub { $self->psql("SELECT status FROM jobs WHERE id = $id") =~ /^(done|failed)$/ }, $timeout // 20);
    return $self->psql("SELECT status FROM jobs WHERE id = $id");
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
    $self->{podman_sock} = "$dir/podman.sock";
    my @podman = $self->podman_cmd;
    my $pid = fork // die;
    if (!$pid) {
        open STDOUT, '>>', "$dir/service.log";
        open STDERR, '>>', "$dir/service.log";
        setpgrp(0, 0);
        $ENV{CONTAINERS_CONF} = "$dir/containers.conf";
        exec @podman, 'system', 'service', '--time=0', "unix://$self->{podman_sock}" or die;
    }
    $self->{podman_pid} = $pid;
    wait_until(sub { -S $self->{podman_sock} }, 20)
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
    my @cmd = ('curl', '-s', '-w', '\n%{http_code}', '--unix-socket', $self->{podman_sock}, '-X', $method);
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
my $port_lock;

sub port_block {
    my $dir = '/tmp/ngx-tenant-test-ports';
    make_path($dir);
    my $first = ($$ % 100);
    for my $i (0 .. 99) {
        my $block = ($first + $i) % 100;
        open my $fh, '>', "$dir/$block" or die "port_block: $dir/$block: $!";
        if (flock $fh, LOCK_EX | LOCK_NB) {
            $port_lock = $fh;
            return 10000 + $block * 100;
        }
        close $fh;
    }
    die "port_block: all 100 port blocks are held by other tests";
}

# The kernel may hand the same ephemeral port out twice once it is closed;
# two backends on one port would make nginx answer both from the first
# server block, so a port is never given out twice in a process.
my %given_ports;

sub free_port {
    for (1 .. 100) {
        my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1',
                                      LocalPort => 0, Proto => 'tcp')
            or die "free_port: $!";
        my $port = $s->sockport;
        close $s;
        return $port unless $given_ports{$port}++;
    }
    die "free_port: no unused port found";
}

sub run_cmd {
    my (@cmd) = @_;
    my $out = `@{[ join ' ', map { shell_quote($_) } @cmd ]} 2>&1`;
    return ($? >> 8, $out);
}

sub shell_quote {
    my ($s) = @_;
    return $s if $s =~ m{^[\w./=:,+-]+$};
    $s =~ s/'/'\\''/g;
    return "'$s'";
}

sub as_postgres {
    my (@cmd) = @_;
    return $< == 0 ? ('runuser', '-u', 'postgres', '--', @cmd) : @cmd;
}

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

# --- nginx ----------------------------------------------------------------

# $http is the body of the http block; %%PORT%%, %%DB%% and %%DIR%% are
# replaced. Backends named in %backends get a server block each on a port
# of their own answering "NAME conn=N"; their ports come back in
# $self->{backend}{NAME}.
sub start_nginx {
    my ($self, %o) = @_;
    my $dir = "$self->{dir}/nginx";
    make_path("$dir/logs", "$dir/tmp");
    $self->{port} //= free_port();
    $self->{ngxdir} = $dir;

    my $backends = '';
    for my $name (@{ $o{backends} || [] }) {
        my $port = $self->{backend}{$name} //= free_port();
        $backends .= "    server { listen 127.0.0.1:$port; access_log off;"
            . " keepalive_requests 10000;"
            . " location / { return 200 \"$name conn=\$connection"
            . " tenant=\$http_x_tenant_id\\n\"; } }\n";
    }
    for my $name (@{ $o{unix_backends} || [] }) {
        my $path = "$self->{dir}/$name.sock";
        $self->{backend}{$name} = "unix:$path";
        $backends .= "    server { listen unix:$path; access_log off;"
            . " location / { return 200 \"$name conn=\$connection\\n\"; } }\n";
    }

    my $http = $o{http} // '';
    my $workers = $o{workers} // 2;
    my $conf = <<"EOF";
load_module $BUILD/ngx_http_tenant_module.so;
user root root;
worker_processes $workers;
error_log $dir/logs/error.log ${\($o{log_level} // 'info')};
pid $dir/nginx.pid;
events { worker_connections 4096; }
http {
    access_log $dir/logs/access.log;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
$backends
$http
}
EOF
    # the cache API's token (tenant_cache_api %%DIR%%/cache-api-token)
    if (!-f "$self->{dir}/cache-api-token") {
        write_file("$self->{dir}/cache-api-token",
                   join('', map { sprintf '%02x', int rand 256 } 1 .. 24) . "\n");
        chmod 0600, "$self->{dir}/cache-api-token";
    }
    $self->{cache_token} = trim(slurp("$self->{dir}/cache-api-token"));
    my $db = $self->{pgport} ? $self->conninfo : 'host=127.0.0.1 port=1';
    $conf =~ s/%%PORT%%/$self->{port}/g;
    $conf =~ s/%%DB%%/$db/g;
    $conf =~ s/%%DIR%%/$self->{dir}/g;

    write_file("$dir/nginx.conf", $conf);
    if ($VALGRIND) {
        # the master in the foreground under valgrind; workers are forks
        my $pid = fork // die;
        if (!$pid) {
            open STDERR, '>>', "$dir/logs/stderr.log";
            exec valgrind_cmd("$dir/logs/valgrind"), '/usr/sbin/nginx', '-p', $dir,
                 '-c', "$dir/nginx.conf", '-g', 'daemon off;' or die;
        }
        $self->{nginx_fg} = $pid;
    } else {
        my ($rc, $out) = run_cmd('/usr/sbin/nginx', '-p', $dir, '-c',
            "$dir/nginx.conf");
        die "nginx failed to start: $out" if $rc;
    }
    $self->{nginx_running} = 1;
    $self->wait_port($self->{port}, 10 * $SLOW);
    return $self;
}

sub nginx_signal {
    my ($self, $sig) = @_;
    my ($rc, $out) = run_cmd('/usr/sbin/nginx', '-p', $self->{ngxdir},
        '-c', "$self->{ngxdir}/nginx.conf", '-s', $sig);
    die "nginx -s $sig: $out" if $rc;
}

sub nginx_master_pid {
    my ($self) = @_;
    return trim(slurp("$self->{ngxdir}/nginx.pid"));
}

sub nginx_worker_pids {
    my ($self) = @_;
    my $m = $self->nginx_master_pid;
    return sort { $a <=> $b } split ' ', `pgrep -P $m`;
}

sub stop_nginx {
    my ($self) = @_;
    return unless $self->{nginx_running};
    my $pid = eval { $self->nginx_master_pid };
    $self->{nginx_running} = 0;
    return unless $pid;
    kill 'TERM', $pid;
    for (1 .. 100 * $SLOW) {
        waitpid($self->{nginx_fg}, WNOHANG) if $self->{nginx_fg};
        last unless kill 0, $pid;
        sleep 0.05;
    }
    kill 'KILL', $pid if kill 0, $pid;
}

sub error_log {
    my ($self) = @_;
    return slurp("$self->{ngxdir}/logs/error.log");
}

sub wait_port {
    my ($self, $port, $timeout) = @_;
    my $deadline = time + ($timeout // 10);
    while (time < $deadline) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $port, Proto => 'tcp');
        if ($s) { close $s; return 1 }
        sleep 0.05;
    }
    die "port $port did not open\n";
}

# --- HTTP -----------------------------------------------------------------

# Raw HTTP/1.1 so tests can send any Host header, malformed ones included.
# Returns a hash: status, headers (lowercased names), body, time (seconds).
sub request {
    my ($self, %o) = @_;
    my $t0 = time;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
        PeerPort => $o{port} // $self->{port}, Proto => 'tcp',
        Timeout => $o{timeout} // 10)
        or return { status => 0, error => "connect: $!" };
    my $req = $o{raw} // do {
        my $r = ($o{method} // 'GET') . ' ' . ($o{path} // '/') . " HTTP/1.1\r\n";
        $r .= "Host: $o{host}\r\n" if defined $o{host};
        my %h = %{ $o{headers} || {} };
        if (defined $o{body}) {
            $h{'Content-Type'} //= 'application/json';
            $h{'Content-Length'} = length $o{body};
        }
        $r .= "$_: $h{$_}\r\n" for sort grep { defined $h{$_} } keys %h;
        $r . "Connection: close\r\n\r\n" . ($o{body} // '');
    };
    print $s $req;
    my $resp = read_response($s, $o{timeout} // 10);
    close $s;
    $resp->{time} = time - $t0;
    return $resp;
}

sub read_response {
    my ($s, $timeout) = @_;
    my $data = '';
    my $deadline = time + $timeout;
    $s->blocking(0);
    my $sel = '';
    vec($sel, fileno($s), 1) = 1;
    while (time < $deadline) {
        my $r = $sel;
        my $n = select($r, undef, undef, 0.5);
        next unless $n;
        my $got = sysread($s, my $buf, 65536);
        last if !defined $got && !$!{EAGAIN};
        last if defined $got && $got == 0;
        $data .= $buf if $got;
    }
    my ($head, $body) = split /\r\n\r\n/, $data, 2;
    return { status => 0, error => 'no response', body => '' } unless $head;
    my ($status_line, @lines) = split /\r\n/, $head;
    my ($status) = $status_line =~ m{^HTTP/\d\.\d (\d{3})};
    my %h = map { my ($k, $v) = split /:\s*/, $_, 2; (lc $k, $v) } @lines;
    if (($h{'transfer-encoding'} // '') =~ /chunked/i) {
        my $out = '';
        while ($body =~ s/^([0-9a-fA-F]+)\r\n//) {
            my $len = hex $1;
            last if $len == 0;
            $out .= substr($body, 0, $len, '');
            $body =~ s/^\r\n//;
        }
        $body = $out;
    }
    return { status => $status // 0, headers => \%h, body => $body // '' };
}

sub get {
    my ($self, $host, $path, %o) = @_;
    return $self->request(host => $host, path => $path // '/', %o);
}

# sends $n requests at once on $n connections, then reads all answers
sub concurrent_get {
    my ($self, $host, $n) = @_;
    my @socks;
    for (1 .. $n) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
            PeerPort => $self->{port}, Proto => 'tcp', Timeout => 5)
            or die "connect: $!";
        push @socks, $s;
    }
    print $_ "GET / HTTP/1.1\r\nHost: $host\r\nConnection: close\r\n\r\n"
        for @socks;
    my @res = map { read_response($_, 10) } @socks;
    close $_ for @socks;
    return @res;
}

# --- load -------------------------------------------------------------------

# Starts $o{clients} processes sending GETs on keepalive connections for
# $o{seconds} to random hosts of @{$o{hosts}}. Like real clients, a GET is
# retried once when the server closed an idle connection before answering
# a byte (RFC 9112 9.3.1). Counts per status, in windows of $o{window} s.
sub start_load {
    my ($self, %o) = @_;
    my $file = "$self->{dir}/load-" . int(rand 1e9);
    my @pids;
    for my $c (1 .. ($o{clients} // 2)) {
        my $pid = fork // die;
        if (!$pid) {
            srand($$);
            my %count;
            my (@win, @slowest);
            my $t0 = time;
            my $s;
            while (time - $t0 < $o{seconds}) {
                my $host = $o{hosts}[rand @{ $o{hosts} }];
                my $resp;
                my $sent = time;
                for my $try (1, 2) {
                    $s ||= IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                        PeerPort => $o{port} // $self->{port}, Proto => 'tcp', Timeout => 5);
                    if (!$s) { $resp = 'connect'; last }
                    print $s "GET / HTTP/1.1\r\nHost: $host\r\n\r\n";
                    $resp = read_keepalive($s);
                    last if $resp ne 'closed';
                    close $s;
                    undef $s;
                }
                $count{$resp}++;
                my $w = int((time - $t0) / ($o{window} // 1));
                $win[$w]{$resp}++;
                $slowest[$w] = time - $sent if time - $sent > ($slowest[$w] // 0);
                if ($resp !~ /^\d+$/) { close $s if $s; undef $s }
            }
            open my $fh, '>', "$file.$c" or die;
            print $fh JSON::PP::encode_json({ count => \%count, windows => \@win,
                                             slowest => \@slowest });
            close $fh;
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }
    return { pids => \@pids, file => $file, clients => scalar @pids };
}

# one response on a keepalive connection: its status, or 'closed' when the
# server closed before sending anything, or an error word
sub read_keepalive {
    my ($s) = @_;
    my $buf = '';
    my $sel = '';
    vec($sel, fileno($s), 1) = 1;
    while (1) {
        my $r = $sel;
        return 'timeout' unless select($r, undef, undef, 5);
        my $n = sysread($s, $buf, 65536, length $buf);
        return length $buf ? 'reset' : 'closed' if !$n;
        if ($buf =~ /^HTTP\/1\.1 (\d{3}).*?\r\n\r\n/s) {
            my $status = $1;
            my ($len) = $buf =~ /\r\nContent-Length: (\d+)/i;
            my $head = index($buf, "\r\n\r\n") + 4;
            if (defined $len) {
                next if length($buf) - $head < $len;
            } elsif ($buf =~ /Transfer-Encoding: chunked/i) {
                next unless $buf =~ /\r\n0\r\n\r\n$/;
            }
            return $status;
        }
    }
}

# waits for the load and sums it: {count => {status => n}, windows => [...],
# slowest => [the longest a request took in each window, seconds]}
sub finish_load {
    my ($self, $load) = @_;
    waitpid $_, 0 for @{ $load->{pids} };
    require JSON::PP;
    my (%count, @win, @slowest);
    for my $c (1 .. $load->{clients}) {
        my $r = JSON::PP::decode_json(slurp("$load->{file}.$c"));
        $count{$_} += $r->{count}{$_} for keys %{ $r->{count} };
        for my $i (0 .. $#{ $r->{windows} }) {
            $win[$i]{$_} += $r->{windows}[$i]{$_} for keys %{ $r->{windows}[$i] || {} };
        }
        for my $i (0 .. $#{ $r->{slowest} || [] }) {
            my $v = $r->{slowest}[$i] // 0;
            $slowest[$i] = $v if $v > ($slowest[$i] // 0);
        }
    }
    return { count => \%count, windows => \@win, slowest => \@slowest };
}

# --- helpers --------------------------------------------------------------

sub slurp {
    my ($f) = @_;
    open my $fh, '<', $f or return '';
    local $/;
    return <$fh>;
}

sub write_file {
    my ($f, $data) = @_;
    open my $fh, '>', $f or die "$f: $!";
    print $fh $data;
    close $fh or die "$f: $!";
}

sub trim { my $s = shift // ''; $s =~ s/^\s+|\s+$//g; return $s }

sub percentile {
    my ($p, @v) = @_;
    @v = sort { $a <=> $b } @v;
    return 0 unless @v;
    my $i = int($p / 100 * $#v + 0.5);
    return $v[$i];
}

sub wait_until {
    my ($cond, $timeout, $step) = @_;
    my $deadline = time + ($timeout // 10) * $SLOW;
    while (time < $deadline) {
        return 1 if $cond->();
        sleep($step // 0.05);
    }
    return $cond->() ? 1 : 0;
}

sub cleanup {
    my ($self) = @_;
    return if $self->{cleaned}++;
    $self->stop_nginx;
    $self->stop_provisioner($_) for keys %{ $self->{prov} || {} };
    $self->stop_podman;
    # tenant services are process groups of their own: end them all
    kill 'KILL', map { -$_ } $self->tenant_pids if $self->{state_dir};
    kill 'KILL', $self->stray_processes;
    kill 'KILL', map { (split ' ')[0] } $self->podman_processes;
    $self->{dbh}->disconnect if $self->{dbh};
    $self->stop_pg('immediate');
    $_->() for @{ $self->{on_cleanup} || [] };
    remove_tree($self->{dir}) unless $ENV{TEST_KEEP};
}

# Ends a test file: no nginx of this file may have logged an alert, a
# critical error or an emergency (those the test causes on purpose aside).
sub finish {
    my (%o) = @_;
    my @mine = grep { $_->{owner} == $$ } @instances;
    for my $t (grep { $_->{ngxdir} } @mine) {
        my @bad = grep { !($o{allow} && /$o{allow}/) }
            $t->error_log =~ /^(.*\[(?:alert|crit|emerg)\].*)$/mg;
        is(scalar @bad, 0, 'no alert, crit or emerg in the nginx error log')
            or diag(join "\n", @bad[0 .. ($#bad > 9 ? 9 : $#bad)]);
    }
    for my $t (grep { $_->{prov} } @mine) {
        my $logs = join '', map { slurp($_->{log}) } values %{ $t->{prov} };
        unlike($logs, qr/(AddressSanitizer|LeakSanitizer|runtime error:)/,
               'no sanitizer report in the provisioner log');
    }
    if ($VALGRIND) {
        # reports are written at exit: stop everything first
        for my $t (@mine) {
            $t->stop_nginx;
            $t->stop_provisioner($_) for keys %{ $t->{prov} || {} };
        }
        my @logs = map { glob("$_->{dir}/nginx/logs/valgrind.*"), glob("$_->{dir}/prov/valgrind-*") } @mine;
        my ($errors, $lost) = (0, 0);
        for my $f (@logs) {
            my $v = slurp($f);
            my @e = $v =~ /^==\d+== (Invalid .*|Conditional jump .*|Syscall param .*|Use of uninitialised .*|.*definitely lost in .*)$/mg;
            $errors += scalar @e;
            diag("$f:\n$v") if @e;
        }
        is($errors, 0, 'valgrind: no invalid access and no definite leak in ' . scalar(@logs) . ' processes');
    }
    done_testing();
}

sub on_cleanup { push @{ $_[0]{on_cleanup} }, $_[1] }

END {
    my $rc = $?;
    # forked helpers (concurrent clients) must not tear down the fixtures
    $_->cleanup for grep { $_->{owner} == $$ } reverse @instances;
    $? = $rc;
}

# also SIGPIPE: a reader that goes away (prove | head) must not skip the
# cleanup in END
$SIG{INT} = $SIG{TERM} = $SIG{PIPE} = sub { exit 130 };

1;
