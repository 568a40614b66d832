# auto/run starts the platform once, a second run starts no second copy,
# and auto/run stop leaves no process and no listening port behind.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Socket::INET;
use POSIX ();
use Tenant::Test;

my $t = Tenant::Test->new;
my $var = $t->dir . '/var';
my $http = Tenant::Test::free_port();
my $pg = Tenant::Test::free_port();
local $ENV{TENANT_VAR_DIR} = $var;
local $ENV{TENANT_HTTP_PORT} = $http;
my $https = Tenant::Test::free_port();
local $ENV{TENANT_HTTPS_PORT} = $https;
local $ENV{TENANT_PG_PORT} = $pg;
my $ports = Tenant::Test::port_block();
local $ENV{TENANT_SERVICE_PORTS} = "$ports-" . ($ports + 99);
my $run = "$Tenant::Test::TOP/auto/run";

# whatever happens, stop what auto/run started
$t->on_cleanup(sub { system("$run stop >/dev/null 2>&1") });

my ($rc, $out) = Tenant::Test::run_cmd($run);
is($rc, 0, 'auto/run succeeds') or diag $out;
like($out, qr/medusa: installed (?:in .*, )?at /, '... with the npm runtimes installed (once per machine): medusa');
like($out, qr/directus: installed (?:in .*, )?at /, '... and directus');
like($out, qr/the platform is running/, 'prints what runs');
like($out, qr/127\.0\.0\.1:$http/, 'says where nginx listens');

my %pids = pids();
ok($pids{nginx} && $pids{postgres} && $pids{provisioner}, 'nginx, PostgreSQL and the provisioner run');

my $r = $t->request(port => $http, host => 'nobody.localhost');
is($r->{status}, 404, 'nginx with the module answers on the configured port');

my $key = Tenant::Test::slurp("$var/admin-api-key");
like($key, qr/^tk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}\n$/, 'admin API key created');
is((stat "$var/admin-api-key")[2] & 07777, 0600, 'admin API key file is mode 0600');

# the registry works and routes a tenant, through auto/run's own nginx
my $db = `sed -n 's/^db = //p' $var/provisioner.conf`;
chomp $db;
system('psql', '-X', '-q', '-d', $db, '-c',
    "INSERT INTO tenants (id, blueprint, status) VALUES ('handmade', 'static', 'suspended')") == 0
    or BAIL_OUT('cannot write to the registry');
$r = $t->request(port => $http, host => 'handmade.localhost');
is($r->{status}, 503, 'a tenant in the registry is routed by auto/run\'s nginx (suspended: 503)');

# a tenant inserted by hand is routing-only: the provisioner says so once
# and leaves it alone
system('psql', '-X', '-q', '-d', $db, '-c',
    "UPDATE tenants SET status = 'active' WHERE id = 'handmade'") == 0 or die;
my $plog = "$var/log/provisioner.log";
ok(Tenant::Test::wait_until(sub { Tenant::Test::slurp($plog) =~ /handmade is routing-only/ }, 15),
   'the provisioner calls the hand-made tenant routing-only');
sleep 6;    # a reconcile pass or more (every 5 s)
my $said = () = Tenant::Test::slurp($plog) =~ /handmade is routing-only/g;
is($said, 1, '... once');
unlike(Tenant::Test::slurp($plog), qr/handmade.*has no value here|reconcile handmade/, 'and does not try to run it');

# the edge tells tenant stacks who the client is, and does not pass on
# what the client claims
my $echo_port = Tenant::Test::free_port();
my $echo = IO::Socket::INET->new(Listen => 5, LocalAddr => '127.0.0.1', LocalPort => $echo_port, ReuseAddr => 1)
    or die "echo: $!";
my $echo_pid = fork // die;
if (!$echo_pid) {
    while (my $c = $echo->accept) {
        my $head = '';
        while (my $l = <$c>) { last if $l eq "\r\n"; $head .= $l }
        print $c "HTTP/1.1 200 OK\r\nContent-Length: " . length($head) . "\r\nConnection: close\r\n\r\n$head";
        close $c;
    }
    POSIX::_exit(0);
}
$t->on_cleanup(sub { kill 'KILL', $echo_pid; waitpid $echo_pid, 0 });
system('psql', '-X', '-q', '-d', $db, '-c',
    "INSERT INTO tenant_endpoints (tenant_id, role, address) VALUES ('handmade', 'site', '127.0.0.1:$echo_port')") == 0 or die;
$r = $t->request(port => $http, host => 'handmade.localhost', path => '/who',
                 headers => { 'X-Forwarded-For' => '6.6.6.6', 'X-Real-IP' => '6.6.6.6' });
is($r->{status}, 200, 'a routing-only tenant reaches its own backend');
like($r->{body}, qr/^X-Real-IP: 127\.0\.0\.1\r$/mi, 'X-Real-IP: the client\'s address');
like($r->{body}, qr/^X-Forwarded-For: 127\.0\.0\.1\r$/mi, 'X-Forwarded-For: the client\'s address, not what it claimed');
unlike($r->{body}, qr/6\.6\.6\.6/, 'the spoofed address is not passed on');
like($r->{body}, qr/^X-Forwarded-Proto: http\r$/mi, 'X-Forwarded-Proto');
like($r->{body}, qr/^X-Forwarded-Host: handmade\.localhost\r$/mi, 'X-Forwarded-Host');
like($r->{body}, qr/^X-Tenant-ID: handmade\r$/mi, 'X-Tenant-ID');

# HTTPS: the platform's *.localhost certificate auto/run made, the tenant
# behind it, and its stack told the scheme
is((stat "$var/cert-key")[2] & 07777, 0600, 'the certificate key file is mode 0600');
my ($rc2, $cn) = Tenant::Test::run_cmd('sh', '-c', "openssl s_client -connect 127.0.0.1:$https"
    . " -servername handmade.localhost </dev/null 2>/dev/null | openssl x509 -noout -subject");
like($cn, qr/CN\s*=\s*\*\.localhost/, 'HTTPS: the platform wildcard is served for a tenant host');
my ($rc3, $body) = Tenant::Test::run_cmd('curl', '-s', '--max-time', '5', '--cacert', "$var/tls/ca.crt",
    '-k', '--resolve', "handmade.localhost:$https:127.0.0.1", "https://handmade.localhost:$https/who");
like($body, qr/^X-Forwarded-Proto: https\r$/mi, 'HTTPS reaches the tenant, which is told the scheme');

# a real tenant, then the platform's own paths against a tenant's
my $prov = "$Tenant::Test::TOP/build/provisioner";
($rc, $out) = Tenant::Test::run_cmd($prov, '-c', "$var/provisioner.conf",
    'create', 'shop1', '--blueprint', 'static', '--wait', '30');
is($rc, 0, 'a static tenant is created') or diag $out;
is($t->request(port => $http, host => 'shop1.localhost')->{status}, 200, 'and served');

$r = $t->request(port => $http, host => 'localhost', path => '/api/health');
is($r->{status}, 200, 'the admin API answers on the platform host');
like($r->{body}, qr/"registry"/, '... with the platform\'s health');
$r = $t->request(port => $http, host => 'localhost', path => '/metrics');
is($r->{status}, 200, 'metrics on the platform host');
like($r->{body}, qr/^ngx_tenant_requests_total\{tenant="shop1",class="2xx"\} [1-9]/m, '... counting shop1\'s requests');
ok(Tenant::Test::wait_until(sub {
    $t->request(port => $http, host => 'localhost', path => '/metrics/provisioner')->{body}
        =~ /^ngx_tenant_check_status\{check="disk"\} [012]$/m }, 15),
   'the provisioner\'s metrics on the platform host');
$r = $t->request(port => $http, host => 'localhost', path => '/api/health?deep');
like($r->{body}, qr/"checks":\[\{/, 'GET /api/health?deep: the provisioner\'s checks');
$r = $t->request(port => $http, host => 'localhost', path => '/dashboard/');
is($r->{status}, 200, 'the dashboard on the platform host');
like($r->{headers}{'content-security-policy'} // '', qr/script-src 'self'/, '... with its CSP');
is($t->request(port => $http, host => 'localhost', path => '/dashboard/app.js')->{headers}{'content-type'},
   'application/javascript; charset=utf-8', '... its script as JavaScript');
for my $path ('/api/health', '/tenant-cache/stats', '/api/tenants', '/metrics', '/metrics/provisioner', '/dashboard/') {
    for my $host ('shop1.localhost', 'admin.shop1.localhost') {
        $r = $t->request(port => $http, host => $host, path => $path);
        unlike($r->{body}, qr/"registry"|"entries"|"tenants"|"error"|ngx_tenant_|app\.js/, "$host$path goes to the tenant, not the platform");
    }
}
like($t->request(port => $http, host => 'shop1.localhost', path => '/api/health')->{status}, qr/^40[14]$/,
     'shop1.localhost/api/health: the tenant\'s own 404 (busybox has no such file)');
$r = $t->request(port => $http, host => 'localhost', path => '/');
is($r->{status}, 404, 'the platform host\'s / is not a tenant');
like($r->{body}, qr{/api/}, '... and says where the API is');

# tenant services: listed, stopped with everything, back with auto/run
($rc, $out) = Tenant::Test::run_cmd($run, 'status');
like($out, qr{shop1/web running}, 'auto/run status lists the tenant\'s services');
like($out, qr{shop1/admin running}, '... both of them');
my @svc = tenant_processes();
ok(@svc >= 2, 'tenant processes run (' . scalar(@svc) . ')');

($rc, $out) = Tenant::Test::run_cmd($run, 'stop');
is($rc, 0, 'auto/run stop succeeds') or diag $out;
ok(Tenant::Test::wait_until(sub { !grep { $_ } values %{ { pids() } } }, 10),
   'no process left behind');
my $listening = `ss -Hltn '( sport = :$http or sport = :$https or sport = :$pg )'`;
is($listening, '', 'no listening port left behind');
ok(Tenant::Test::wait_until(sub { !tenant_processes() }, 10), 'no tenant process left behind')
    or diag(join ' ', tenant_processes());
$listening = `ss -Hltn '( sport >= :$ports and sport <= :@{[$ports + 99]} )'`;
is($listening, '', 'no tenant port left listening');
($rc, $out) = Tenant::Test::run_cmd($run, 'status');
like($out, qr{shop1/web stopped|no tenant services}, 'status: the tenant\'s services are not running');

# auto/run again: the reconciler brings the tenant back
($rc, $out) = Tenant::Test::run_cmd($run);
is($rc, 0, 'auto/run after stop succeeds') or diag $out;
ok(Tenant::Test::wait_until(sub { $t->request(port => $http, host => 'shop1.localhost')->{status} == 200 }, 30),
   'the tenant is served again (started by the reconciler)');
($rc, $out) = Tenant::Test::run_cmd($run, 'stop');
is($rc, 0, 'stopped again');
ok(Tenant::Test::wait_until(sub { !tenant_processes() }, 10), 'and its processes with it');

sub tenant_processes {
    return grep { (readlink("/proc/$_/cwd") // '') =~ m{^\Q$var\E/tenants/} }
           map { s{/proc/}{}r } glob '/proc/[0-9]*';
}

sub pids {
    my %p;
    for my $line (split /\n/, `ps -eo pid=,args=`) {
        my ($pid, $args) = $line =~ /^\s*(\d+)\s+(.*)$/ or next;
        next unless index($args, $var) >= 0;
        $p{nginx} = $pid if $args =~ /^nginx: master/;
        $p{postgres} = $pid if $args =~ m{/postgres -D};
        $p{provisioner} = $pid if $args =~ m{provisioner .* run$};
    }
    return %p;
}

done_testing();
