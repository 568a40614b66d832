# Automatic certificates against a real ACME CA (Pebble) and its mock DNS
# (pebble-challtestsrv), both from Debian and started here: a custom domain
# gets a certificate only once it is verified, through HTTP-01 answered by
# the edges from the registry; it is then served by two edges. The
# platform's wildcard comes through DNS-01 and the operator's hook. Names
# not registered and verified are never ordered; a provisioner killed mid-
# order leaves one order and one certificate; the hourly cap holds orders
# back.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use Time::HiRes qw(time sleep);
use Tenant::Test;
use Tenant::Conf;
use Tenant::Tls;

my $t = Tenant::Test->new->start_pg;
$t->migrate;
my $tls = Tenant::Tls->new($t->dir);
my $default = $tls->leaf('platform-default', ['localhost'], by_root => 1);
my $key_file = $tls->seal_key_file;

# two edges on one registry, each with HTTP and HTTPS
my @sport = (Tenant::Test::free_port(), Tenant::Test::free_port());
my %ssl = (cert => $default->{cert}, key => $default->{key}, key_file => $key_file, redirect => 1);
$t->start_nginx(backends => ['b1', 'b2'],
                http => Tenant::Conf::http(verify_domains => 1, ssl => { %ssl, port => $sport[0] }));
my $t2 = Tenant::Test->new->share_pg($t);
$t2->start_nginx(http => Tenant::Conf::http(verify_domains => 1, ssl => { %ssl, port => $sport[1] }));
$t->add_tenant('shop1', site => ["127.0.0.1:$t->{backend}{b1}"]);
$t->add_tenant('brand', site => ["127.0.0.1:$t->{backend}{b2}"]);

# Pebble's validation reaches the second edge: the provisioner talks to none
my $pb = $t->start_pebble(http_port => $t2->{port}, tls => $tls);
my $dns = $t->{mock_dns};
my $hook_log = $t->dir . '/hook.log';
my @acme = ("dns_resolver = 127.0.0.1:$dns->{dns}", "certificate_key = $key_file",
            "acme_directory = $pb->{directory}", "acme_ca_file = $pb->{ca_file}",
            'acme_email = ops@example.com', 'acme_timeout = 20', 'base_domain = shops.test',
            "acme_edges = 127.0.0.1:$t->{port} 127.0.0.1:$t2->{port}",
            "acme_dns_hook = $Tenant::Test::TOP/t/bin/acme-dns-hook");
my %env = (ACME_TEST_DNS_MGMT => $dns->{mgmt}, ACME_TEST_HOOK_LOG => $hook_log);
$t->{api_key} = $t->create_api_key('acme');
$t->start_provisioner(extra => \@acme, env => \%env);

sub cert_row {
    my ($host) = @_;
    my $row = $t->psql("SELECT source || ' ' || issuer FROM certificates WHERE host = '$host'");
    return $row // '';
}
sub orders_of { $t->psql("SELECT count(*) FROM acme_orders WHERE host = '$_[0]'") }

# what an edge serves for a TLS name: the leaf's serial and issuer, and
# whether the chain verifies against Pebble's root for this run
my $root = $t->dir . '/pebble-root.pem';
sub served {
    my ($port, $sni) = @_;
    my ($rc, $out) = Tenant::Test::run_cmd('sh', '-c',
        "openssl s_client -connect 127.0.0.1:$port -servername $sni -CAfile $root"
        . " -verify_return_error </dev/null 2>&1");
    my ($pem) = $out =~ /(-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----)/s;
    return {} unless $pem;
    my $f = $t->dir . "/served-$port.pem";
    Tenant::Test::write_file($f, "$pem\n");
    my (undef, $info) = Tenant::Test::run_cmd('openssl', 'x509', '-in', $f, '-noout', '-serial', '-issuer', '-ext', 'subjectAltName');
    my ($serial) = $info =~ /serial=(\w+)/;
    my ($issuer) = $info =~ /issuer=(.*)/;
    return { serial => $serial, issuer => $issuer, verified => $out =~ /Verify return code: 0 \(ok\)/ ? 1 : 0,
             names => join(',', $info =~ /DNS:([^,\s]+)/g) };
}

# --- the wildcard, through DNS-01 and the operator's hook ----------------------------
ok(Tenant::Test::wait_until(sub { cert_row('*.shops.test') =~ /^automatic .*Pebble Intermediate/ }, 30, 0.1),
   'the platform wildcard *.shops.test is issued by the CA (DNS-01)');
Tenant::Test::write_file($root, $t->pebble_root);
my $hooked = Tenant::Test::slurp($hook_log);
like($hooked, qr/^set _acme-challenge\.shops\.test [A-Za-z0-9_-]{43}$/m,
     'the hook set the TXT record _acme-challenge.shops.test');
like($hooked, qr/^clear _acme-challenge\.shops\.test [A-Za-z0-9_-]{43}$/m, '... and cleared it after');
for my $i (0, 1) {
    my $s = served($sport[$i], 'anything.shops.test');
    ok($s->{verified} && $s->{names} eq '*.shops.test',
       "edge " . ($i + 1) . " serves the wildcard for anything.shops.test, its chain verifying to Pebble's root");
}

# --- a domain: pending, then proven, then a certificate -------------------------------
my $base_orders = $t->pebble_orders;
my $r = $t->api(POST => 'tenants/shop1/domains', { host => 'shop.bigbrand.com' });
is($r->{status}, 202, 'shop1 claims shop.bigbrand.com: pending');
my $token = $r->{json}{domain}{token};
$r = $t->api(POST => 'tenants/brand/domains', { host => 'wrong.example.org' });
is($r->{status}, 202, 'brand claims wrong.example.org');
$t->set_txt('_ngx-tenant.wrong.example.org', 'ngx-tenant-verify=not-the-token');
ok(Tenant::Test::wait_until(sub {
    ($t->psql("SELECT last_check FROM domain_claims WHERE host = 'wrong.example.org'") // '') =~ /other values/ }, 15, 0.2),
   'the wrong TXT record was looked at');
sleep 2;    # two more scheduling passes
is(orders_of('shop.bigbrand.com') + orders_of('wrong.example.org'), 0, 'pending domains are never ordered');
is($t->pebble_orders, $base_orders, '... the CA saw no order');
is($t->psql("SELECT status FROM domain_claims WHERE host = 'wrong.example.org'"), 'pending',
   'a wrong TXT record leaves the claim pending');

my $t0 = time;
$t->set_txt('_ngx-tenant.shop.bigbrand.com', $token);
ok(Tenant::Test::wait_until(sub {
    my $s = served($sport[0], 'shop.bigbrand.com');
    $s->{verified} && $s->{names} eq 'shop.bigbrand.com' }, 30, 0.1),
   'TXT published: the domain is verified, ordered through HTTP-01 and served');
diag(sprintf 'TXT set -> certificate served: %.1f s', time - $t0);
my $s1 = served($sport[0], 'shop.bigbrand.com');
my $s2 = served($sport[1], 'shop.bigbrand.com');
ok($s2->{verified} && $s2->{serial} eq $s1->{serial}, 'the second edge serves the same certificate');
like($s1->{issuer}, qr/Pebble Intermediate/, '... issued by the CA');
like(cert_row('shop.bigbrand.com'), qr/^automatic /, 'stored as automatic');
is(orders_of('shop.bigbrand.com'), 1, 'one order for it');
is($t->pebble_orders, $base_orders + 1, '... and one at the CA');
is($t->psql("SELECT count(*) FROM acme_challenges"), 0, 'no challenge answer is left in the registry');
is($t->psql("SELECT count(*) FROM audit_log WHERE action = 'certificate.issued'"
            . " AND detail->>'host' = 'shop.bigbrand.com'"), 1, 'the issue is audited');
my $r2 = $t->request(port => $t->{port}, path => '/', host => 'shop.bigbrand.com');
is($r2->{status}, 301, 'plain HTTP to the domain now goes to HTTPS');
unlike($t->provisioner_log, qr/(?<!known )shop\.bigbrand\.com.*\b(failed|error)\b/i, 'no failure on the way');

# --- names that are not registered and verified are never ordered ----------------------
$base_orders = $t->pebble_orders;
# a domain inserted by hand, routing only, never proven (verification is on)
$t->psql("INSERT INTO tenant_hosts (host, tenant_id) VALUES ('hand.example.net', 'brand')");
# jobs queued by hand for it and for a name nobody has
for my $h (qw(hand.example.net evil.example.com wrong.example.org)) {
    $t->psql("INSERT INTO jobs (tenant_id, kind, payload) VALUES ('brand', 'certificate',"
             . " jsonb_build_object('host', '$h'))");
}
ok(Tenant::Test::wait_until(sub {
    $t->psql("SELECT count(*) FROM jobs WHERE kind = 'certificate' AND status = 'done'"
             . " AND result->>'skipped' = 'not a registered and verified name'") == 3 }, 15, 0.2),
   'jobs for an unverified, an unregistered and a pending name end skipped');
sleep 2;
is($t->pebble_orders, $base_orders, '... and the CA saw no order for any of them');
is(orders_of('hand.example.net') + orders_of('evil.example.com') + orders_of('wrong.example.org'), 0,
   '... nor did the registry record one');

# --- killed between the CA's order and our record of it: the order is found again ----------
$t->stop_provisioner;
$t->start_provisioner(extra => \@acme, env => { %env, PROVISIONER_FAILPOINT => 'certificate:ordered' });
$base_orders = $t->pebble_orders;
is($t->api(POST => 'tenants/brand/domains', { host => 'kill.example.com' })->{status}, 202, 'brand claims kill.example.com');
is($t->api(POST => 'tenants/brand/domains/kill.example.com/verify')->{status}, 200, 'the operator verifies it by hand');
ok(Tenant::Test::wait_until(sub { $t->provisioner_exited }, 30, 0.1),
   'the provisioner is killed right after the CA created the order');
is($t->psql("SELECT status || ' ' || coalesce(url, 'no url') FROM acme_orders WHERE host = 'kill.example.com'"),
   'creating no url', '... before it recorded the order');
is($t->pebble_orders, $base_orders + 1, '... which the CA has');
$t->start_provisioner(extra => \@acme, env => \%env);
ok(Tenant::Test::wait_until(sub { served($sport[1], 'kill.example.com')->{verified} }, 30, 0.1),
   'restarted: the certificate is issued and served');
like($t->provisioner_log, qr/kill\.example\.com: order \S+ found at the CA, continued/, '... from the order it found at the CA');
is($t->pebble_orders, $base_orders + 1, 'the CA saw one order for it, not two');
is(orders_of('kill.example.com'), 1, '... and the registry recorded one');
is($t->psql("SELECT count(*) FROM audit_log WHERE action = 'certificate.issued'"
            . " AND detail->>'host' = 'kill.example.com'"), 1, 'one certificate issued');

# killed after the challenge: the same order is continued
$t->stop_provisioner;
$t->start_provisioner(extra => \@acme, env => { %env, PROVISIONER_FAILPOINT => 'certificate:authorized' });
$base_orders = $t->pebble_orders;
is($t->api(POST => 'tenants/brand/domains', { host => 'kill2.example.com' })->{status}, 202, 'brand claims kill2.example.com');
is($t->api(POST => 'tenants/brand/domains/kill2.example.com/verify')->{status}, 200, '... verified');
ok(Tenant::Test::wait_until(sub { $t->provisioner_exited }, 30, 0.1), 'the provisioner is killed after the challenge');
$t->start_provisioner(extra => \@acme, env => \%env);
ok(Tenant::Test::wait_until(sub { served($sport[0], 'kill2.example.com')->{verified} }, 30, 0.1),
   'restarted: issued and served');
is($t->pebble_orders - $base_orders, 1, '... from the one order');
is(orders_of('kill2.example.com'), 1, '... recorded once');

# --- the hourly cap holds new orders back ------------------------------------------------
my $in_hour = $t->psql("SELECT count(*) FROM acme_orders WHERE created_at > now() - interval '1 hour'");
$t->stop_provisioner;
$t->start_provisioner(extra => [@acme, "acme_orders_per_hour = $in_hour"], env => \%env);
$base_orders = $t->pebble_orders;
is($t->api(POST => 'tenants/brand/domains', { host => 'capped.example.com' })->{status}, 202, 'brand claims capped.example.com');
is($t->api(POST => 'tenants/brand/domains/capped.example.com/verify')->{status}, 200, '... verified');
ok(Tenant::Test::wait_until(sub { $t->provisioner_log =~ /acme_orders_per_hour\): next one in \d+ s/ }, 15, 0.1),
   "at the cap ($in_hour an hour), the order waits");
my $job = $t->psql("SELECT status || ' ' || (run_after > now() + interval '50 minutes')::text FROM jobs"
                   . " WHERE kind = 'certificate' AND payload->>'host' = 'capped.example.com'");
is($job, 'queued true', '... its job queued until the hour has room');
is($t->pebble_orders, $base_orders, '... and the CA saw nothing');

# --- a failure is recorded on the name, with a backoff ----------------------------------------
$t->stop_provisioner;
$t->start_provisioner(extra => \@acme, env => \%env);
# the CA is told the name is elsewhere: its HTTP-01 cannot reach an edge
$t->request(port => $dns->{mgmt}, method => 'POST', path => '/add-a', host => 'localhost',
            body => encode_json({ host => 'unreachable.example.com.', addresses => ['127.0.0.2'] }));
is($t->api(POST => 'tenants/brand/domains', { host => 'unreachable.example.com' })->{status}, 202, 'brand claims unreachable.example.com');
is($t->api(POST => 'tenants/brand/domains/unreachable.example.com/verify')->{status}, 200, '... verified');
ok(Tenant::Test::wait_until(sub {
    ($t->psql("SELECT failures FROM acme_names WHERE host = 'unreachable.example.com'") // 0) >= 1 }, 30, 0.2),
   'a challenge the CA cannot reach fails');
my $why = $t->psql("SELECT last_error || ' | ' || (next_try_at > now() + interval '4 minutes')::text"
                   . " FROM acme_names WHERE host = 'unreachable.example.com'");
like($why, qr/unreachable\.example\.com.*127\.0\.0\.2.* \| true$/, '... the name says why, and waits minutes before the next try');
is(cert_row('unreachable.example.com'), '', '... no certificate');
$r = $t->api(GET => 'certificates?within_days=30');
my ($listed) = grep { $_->{host} eq 'unreachable.example.com' } @{ $r->{json}{certificates} || [] };
ok($listed && !defined $listed->{not_after} && $listed->{renewal}{failures} >= 1
   && $listed->{renewal}{last_error} =~ /127\.0\.0\.2/,
   'GET certificates?within_days lists the name whose order fails, and why');
my ($crc, $cout) = $t->cli('certs', 'expiring', '--days', '30');
like($cout, qr/"host": ?"unreachable\.example\.com".*127\.0\.0\.2/s, '... as does the CLI');

# --- the configuration says what it needs ------------------------------------------------------
my $bad = $t->dir . '/bad.conf';
Tenant::Test::write_file($bad, "acme_directory = http://insecure.example/dir\n");
my ($rc, $out) = Tenant::Test::run_cmd($Tenant::Test::PROVISIONER, '-c', $bad, 'run');
isnt($rc, 0, 'an http:// ACME directory is refused');
like($out, qr/acme_directory must be an https:\/\/ URL/, '... saying so');
Tenant::Test::write_file($bad, "acme_dns_hook = /bin/true\nbase_domain = localhost\n");
($rc, $out) = Tenant::Test::run_cmd($Tenant::Test::PROVISIONER, '-c', $bad, 'run');
like($out, qr/orders \*\.localhost, which no CA issues/, 'a wildcard no CA issues is refused at start');

$t->stop_provisioner;
Tenant::Test::finish();
