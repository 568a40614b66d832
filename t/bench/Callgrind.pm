package Bench::Callgrind;

# Instructions per request, the figure auto/bench trusts where wrk's req/s
# swings between runs (wrk, the worker and the backend share two cores):
# nginx under callgrind as one process, sent 500 and then 2500 requests on
# one keepalive connection; the difference of the two totals over 2000
# (start-up and warm-up cancel out).

use strict;
use warnings;
use File::Path qw(make_path);
use IO::Socket::INET;
use Tenant::Test;

# %o: dir (where to run), http (the http block, %%PORT%% and %%DB%% in it),
# db (conninfo), request (sub: request number -> the raw request), ready
# (sub: port -> true once nginx answers as the counted requests need)
sub per_request {
    my (%o) = @_;
    my %ir;
    for my $reqs (500, 2500) {
        my $port = Tenant::Test::free_port();
        my $ngx = "$o{dir}/cg-$o{name}-$reqs";
        my $cg = "$ngx/callgrind.out";
        make_path("$ngx/logs", "$ngx/tmp");
        (my $http = $o{http}) =~ s/%%PORT%%/$port/g;
        $http =~ s/%%DB%%/$o{db} \/\/ ''/ge;
        $http =~ s/ reuseport//g;
        Tenant::Test::write_file("$ngx/nginx.conf", <<"CONF");
load_module $Tenant::Test::BUILD/ngx_http_tenant_module.so;
daemon off;
master_process off;
error_log $ngx/logs/error.log error;
pid $ngx/nginx.pid;
events { worker_connections 1024; }
http {
    client_body_temp_path $ngx/tmp;
    proxy_temp_path $ngx/tmp;
$http
}
CONF
        my $pid = fork // die;
        if (!$pid) {
            open STDOUT, '>', "$ngx/valgrind.out";
            open STDERR, '>&', \*STDOUT;
            exec 'valgrind', '--tool=callgrind', "--callgrind-out-file=$cg", '/usr/sbin/nginx', '-p', $ngx,
                 '-c', "$ngx/nginx.conf" or die;
        }
        Tenant::Test::wait_until(sub { IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port) }, 60)
            or die "nginx under callgrind did not start\n";
        if ($o{ready}) {
            Tenant::Test::wait_until(sub { $o{ready}->($port) }, 60)
                or die "callgrind: nginx never became ready\n";
        }
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port) or die;
        for my $i (1 .. $reqs) {
            print $s $o{request}->($i);
            my $buf = '';
            # one whole answer: its head, then Content-Length bytes
            while (1) {
                if ($buf =~ /\A(.*?\r\n\r\n)/s) {
                    my $head = $1;
                    my ($cl) = $head =~ /^Content-Length:\s*(\d+)/mi;
                    last if length($buf) >= length($head) + ($cl // 0);
                }
                sysread($s, $buf, 4096, length $buf) or die "callgrind: connection closed\n";
            }
            die "callgrind: not 200: $buf" unless $buf =~ m{\AHTTP/1.1 200};
        }
        close $s;
        kill 'QUIT', $pid;
        waitpid $pid, 0;
        my ($total) = Tenant::Test::slurp($cg) =~ /^(?:summary|totals):\s+(\d+)/m;
        $ir{$reqs} = $total;
    }
    return int(($ir{2500} - $ir{500}) / 2000);
}

1;
