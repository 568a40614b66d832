# A hostile tenant and a hostile client against a running platform: host
# takeover, HTML and config-line injection, tenant code as root, the cache
# API without its token, idempotency under concurrency, and reads through
# jobs that cannot pile up. Two attacks need an edge of their own and have
# a file each: a frozen registry (t/16-breaker.t) and a flood of random
# hosts (t/17-host-filter.t; auto/bench reports its figure).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use POSIX ();
use Tenant::Test;
use Tenant::Conf;
use Tenant::Blueprints;

my $t = Tenant::Test->new->start_pg;
$t->migrate;
$t->start_nginx(http => Tenant::Conf::http(), workers => 2);
my $bps = Tenant::Blueprints::make($t);
$t->start_provisioner(blueprints => $bps);
$t->{api_key} = $t->create_api_key('hostile');

my $evil = q{<script>alert(1)</script>"'&<img src=x onerror=alert(2)>};
for my $n (qw(alpha bravo)) {
    my $r = $t->api(POST => 'tenants?wait=30', { name => $n, blueprint => 'static', display_name => $evil });
    is($r->{json}{job}{status}, 'done', "$n created with a hostile display name");
}

# --- 1. no host of another tenant, of the platform, or an IP literal -----------------
for my $host ('foo.bravo.localhost', 'login.admin.bravo.localhost', 'bravo.localhost',
              'admin.bravo.localhost', 'deep.er.localhost', 'localhost.localhost') {
    my $r = $t->api(POST => 'tenants/alpha/domains', { host => $host });
    is($r->{status}, 422, "alpha cannot take $host");
    is($r->{json}{error}{field}, 'host', '... naming the field');
}
for my $ip ('0x7f.0.0.1', '127.1', '0177.0.0.1', '10.0.0.0x1', '1.2.3.4', '192.168.000.001', 'foo.0x7f') {
    my $r = $t->api(POST => 'tenants/alpha/domains', { host => $ip });
    is($r->{status}, 422, "$ip (an address as inet_aton reads it) is refused");
    like($r->{json}{error}{message}, qr/not an IP address/, '... as an address');
}
is($t->psql("SELECT count(*) FROM tenant_hosts"), 0, 'none of them was written');
is($t->api(POST => 'tenants/alpha/domains', { host => 'shop.alpha-store.test' })->{status}, 201,
   'a domain of its own is fine');
is($t->get('0x7f.0.0.1')->{status}, 404, 'an address as Host is never a tenant');

# --- 2. every rendered template escapes what the tenant supplied ----------------------
my @files = grep { -f } map { glob("$t->{state_dir}/$_/home/{,*/}*.html") } qw(alpha bravo);
ok(@files >= 4, scalar(@files) . ' rendered HTML files');
for my $f (@files) {
    my $html = Tenant::Test::slurp($f);
    unlike($html, qr/<script>alert|<img src=x/, "$f: no markup from the display name");
    like($html, qr/&lt;script&gt;alert\(1\)&lt;\/script&gt;&quot;&#39;&amp;/, "$f: it is there, escaped");
}
like($t->get('alpha.localhost')->{body}, qr/&lt;script&gt;/, 'the storefront serves it escaped');
my $sh = $t->api(POST => 'tenants?wait=60', { name => 'charlie', blueprint => 'static', mode => 'shared', display_name => $evil });
is($sh->{json}{job}{status}, 'done', 'a shared tenant with the same name');
my $body = $t->get('charlie.localhost')->{body};
ok($body =~ /&lt;script&gt;/ && $body !~ /<script>alert/, '... served escaped by the shared runtime');

# --- 3. values that go into login files are what they claim to be --------------------
for my $email ('a:b@c.d', "a\@b.c\n/:x:y", 'a,b@c.d', 'x@y.z;rm') {
    my $r = $t->api(POST => 'tenants/alpha/seed-admin', { email => $email, password => 'Long-enough-pass-1' });
    is($r->{status}, 422, 'seed-admin email ' . ($email =~ s/\n/\\n/r) . ': 422');
    is($r->{json}{error}{field}, 'email', '... naming the field');
}
my $login = Tenant::Test::slurp("$t->{state_dir}/alpha/home/admin-httpd.conf");
is(scalar(() = $login =~ /^\//mg), 1, 'the login file still has exactly one login line');

# --- 4. tenant code runs as a user of its own, and cannot read what is not its own ----
my %uid = map { split /=/ } split /,/, $t->psql("SELECT string_agg(tenant_id || '=' || uid, ',') FROM tenant_uids");
ok($uid{alpha} && $uid{bravo} && $uid{alpha} != $uid{bravo}, "alpha and bravo have users of their own ($uid{alpha}, $uid{bravo})");
my @procs = ($t->tenant_pids, map { $_ } grep { (readlink("/proc/$_/cwd") // '') =~ m{^\Q$t->{state_dir}\E/} } map { s{/proc/}{}r } glob '/proc/[0-9]*');
my @as_root = grep { (Tenant::Test::slurp("/proc/$_/status") =~ /^Uid:\s+(\d+)/m)[0] == 0 } @procs;
ok(@procs >= 4, scalar(@procs) . ' tenant processes');
is(scalar @as_root, 0, 'none of them runs as root') or diag "@as_root";
my ($alpha_web) = $t->tenant_pids('alpha');
my ($ruid) = Tenant::Test::slurp("/proc/$alpha_web/status") =~ /^Uid:\s+(\d+)/m;
is($ruid, $uid{alpha}, "alpha's service runs as alpha's user");
like(Tenant::Test::slurp("/proc/$alpha_web/status"), qr/^NoNewPrivs:\s+1$/m, '... with no way to gain privileges');
my @st = stat "$t->{state_dir}/alpha/home";
is(sprintf('%o %d', $st[2] & 07777, $st[4]), "700 $uid{alpha}", "alpha's home: 0700, its own");
for my $secret ("$t->{state_dir}/bravo/home/site/index.html", "$t->{state_dir}/bravo/home/admin-httpd.conf",
                "$t->{dir}/prov/secret-key", $t->provisioner_conf, "$t->{state_dir}/bravo/logs/web.log",
                "$t->{state_dir}/alpha/run/web.pid") {
    ok(-e $secret, "$secret exists (so a refusal means something)");
    open my $null, '>', '/dev/null';
    local *STDERR = $null;
    isnt(system('setpriv', "--reuid=$uid{alpha}", "--regid=$uid{alpha}", '--clear-groups',
                'sh', '-c', "cat '$secret' >/dev/null 2>&1"), 0, "alpha's user cannot read $secret");
}
is(system('setpriv', "--reuid=$uid{alpha}", "--regid=$uid{alpha}", '--clear-groups',
          'sh', '-c', "cat '$t->{state_dir}/alpha/home/site/index.html' >/dev/null"), 0,
   '... and can read its own files (the check can pass)');

# --- 5. the cache API needs its token, from loopback too ----------------------------
for my $req ([GET => 'stats'], [DELETE => 'all'], [DELETE => 'tenants/alpha'], [GET => 'hosts/alpha.localhost']) {
    my $r = $t->request(method => $req->[0], host => 'localhost', path => "/tenant-cache/$req->[1]");
    is($r->{status}, 401, "$req->[0] /tenant-cache/$req->[1] without the token: 401");
    $r = $t->request(method => $req->[0], host => 'localhost', path => "/tenant-cache/$req->[1]",
                     headers => { Authorization => 'Bearer ' . ('0' x length $t->{cache_token}) });
    is($r->{status}, 401, '... and with a wrong one');
}
is($t->cache_api(GET => 'stats')->{status}, 200, 'with the token: 200');
is($t->api(GET => 'tenants', undef)->{status}, 200, 'the admin API key is not the cache API token');
my $r = $t->request(host => 'localhost', path => '/tenant-cache/stats',
                    headers => { Authorization => "Bearer $t->{api_key}" });
is($r->{status}, 401, 'an admin API key does not open the cache API');

# --- 6. one Idempotency-Key, six at once: one job ------------------------------------
my @kids;
for my $i (1 .. 6) {
    my $pid = fork // die;
    if (!$pid) {
        my $x = $t->api(POST => 'tenants', { name => 'twin', blueprint => 'static' },
                        headers => { 'Idempotency-Key' => 'same-key-1' });
        Tenant::Test::write_file("$t->{dir}/twin$i", "$x->{status} " . ($x->{json}{job}{id} // '-'));
        POSIX::_exit(0);
    }
    push @kids, $pid;
}
waitpid $_, 0 for @kids;
my @answers = map { Tenant::Test::slurp("$t->{dir}/twin$_") } 1 .. 6;
is(scalar(grep { /^20[02] \d+$/ } @answers), 6, 'six concurrent creates with one key: six 202s') or diag "@answers";
my %ids = map { (split ' ')[1] => 1 } @answers;
is(scalar keys %ids, 1, '... all with the same job');
is($t->psql("SELECT count(*) FROM jobs WHERE tenant_id = 'twin' AND kind = 'create'"), 1, 'one create job');

# --- 9. reads through jobs are coalesced and limited -----------------------------------
$t->stop_provisioner;
@kids = ();
for my $i (1 .. 20) {
    my $pid = fork // die;
    if (!$pid) { $t->api(GET => 'tenants/alpha/logs?wait=0'); POSIX::_exit(0) }
    push @kids, $pid;
}
waitpid $_, 0 for @kids;
is($t->psql("SELECT count(*) FROM jobs WHERE tenant_id = 'alpha' AND kind = 'logs'"), 1,
   '20 concurrent log reads of one tenant: one job row');
$t->start_provisioner(blueprints => $bps);
my %codes;
for my $i (1 .. 70) {
    my $x = $t->api(GET => 'tenants/bravo/logs?wait=5');
    $codes{$x->{status}}++;
    if ($x->{status} == 429) {
        like($x->{headers}{'retry-after'} // '', qr/^\d+$/, 'the 429 has Retry-After');
        last;
    }
}
is($codes{429}, 1, 'a key that keeps asking for logs is limited (' . join(', ', map { "$_: $codes{$_}" } sort keys %codes) . ')');
cmp_ok($t->psql("SELECT count(*) FROM jobs WHERE kind = 'logs' AND tenant_id = 'bravo'"), '<=', 60,
       'at most 60 log jobs a minute for it');

Tenant::Test::finish();
