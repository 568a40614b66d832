package Tenant::Test;

# Tenant::Test, nginx: the distro nginx with the built module, its config
# written into the test's dir, signalled, its workers and error log read,
# and its cache API.

use strict;
use warnings;
use File::Path qw(make_path remove_tree);
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);
use Test::More;

# set in Tenant/Test.pm
our ($BUILD, $SLOW, $VALGRIND);

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

1;
