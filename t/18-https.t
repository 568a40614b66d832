# HTTPS at the edge: the SNI name picks the certificate from the registry
# (exact, then wildcard, then the server's default), live, without reloads;
# uploads are checked; a Host of another tenant gets 421; hostile names get
# the default; the registry down keeps serving; HTTP goes to HTTPS for hosts
# with a certificate; HSTS per tenant; a reload under HTTPS load loses no
# handshake.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Socket::SSL;
use Time::HiRes qw(time sleep);
use Tenant::Test;
use Tenant::Conf;
use Tenant::Tls;

my $t = Tenant::Test->new->start_pg;
$t->migrate;
my $tls = Tenant::Tls->new($t->dir);
# OpenSSL (curl) takes no wildcard of a single-label parent like *.localhost:
# the tenants' own names are in it too
my $default = $tls->leaf('platform-default', ['*.localhost', 'localhost', 'shop1.localhost', 'shop2.localhost'], by_root => 1);
my $key_file = $tls->seal_key_file;
my $sport = Tenant::Test::free_port();

$t->start_nginx(backends => ['b1', 'b2'], http => Tenant::Conf::http(ssl => {
    port => $sport, cert => $default->{cert}, key => $default->{key},
    key_file => $key_file, redirect => 1 }));
$t->add_tenant('shop1', site => ["127.0.0.1:$t->{backend}{b1}"]);
$t->add_tenant('shop2', site => ["127.0.0.1:$t->{backend}{b2}"]);
$t->{api_key} = $t->create_api_key('tls');
is($t->api(POST => 'tenants/shop1/domains', { host => 'shop.example.com' })->{status}, 201, 'shop1 has shop.example.com');
is($t->api(POST => 'tenants/shop2/domains', { host => 'other.example.org' })->{status}, 201, 'shop2 has other.example.org');

sub cn { Tenant::Tls::served_cn($sport, $_[0]) }
sub put_cert {
    my ($tenant, $host, $leaf, %o) = @_;
    return $t->api(PUT => "tenants/$tenant/domains/$host/certificate",
                   { certificate => $o{pem} // $leaf->{chain}, key => $o{key} // $leaf->{key_pem} });
}
sub curl_tls {
    my ($host, @extra) = @_;
    my ($rc, $out) = Tenant::Test::run_cmd('curl', '-s', '-o', '/dev/null', '-w', '%{http_code}',
        '--max-time', '5', '--cacert', $tls->ca, '--resolve', "$host:$sport:127.0.0.1",
        @extra, "https://$host:$sport/");
    return $out;
}

# --- the default, before any certificate is in the registry ------------------
is(cn('shop1.localhost'), 'platform-default', 'a tenant host: the default wildcard');
is(cn(''), 'platform-default', 'no SNI: the default');
is(curl_tls('shop1.localhost'), '200', 'curl verifies the default for shop1.localhost and gets 200');

# --- upload, served live -------------------------------------------------------
my @workers = $t->nginx_worker_pids;
my $v1 = $tls->leaf('shop-v1', ['shop.example.com']);
my $r = put_cert('shop1', 'shop.example.com', $v1);
is($r->{status}, 200, 'upload: 200') or diag $r->{body};
is($r->{json}{certificate}{host}, 'shop.example.com', '... for the host');
like($r->{json}{certificate}{issuer}, qr/Test Intermediate/, '... its issuer');
is_deeply($r->{json}{certificate}{names}, ['shop.example.com'], '... its names');
is($r->{json}{certificate}{key_type}, 'ECDSA P-256', '... its key type');
ok($r->{json}{certificate}{not_after}, '... its expiry');
unlike($r->{body}, qr/PRIVATE KEY|key_sealed|BEGIN/, '... and never the key');
my $t0 = time;
ok(Tenant::Test::wait_until(sub { (cn('shop.example.com') // '') eq 'shop-v1' }, 5, 0.01),
   'the new certificate is served for its host');
diag(sprintf 'commit to served: %.0f ms (including an openssl run per try)', (time - $t0) * 1000);
is(curl_tls('shop.example.com'), '200', 'curl verifies the chain and the name: 200');
is(cn('shop1.localhost'), 'platform-default', 'other names keep the default');
is_deeply([$t->nginx_worker_pids], \@workers, 'no reload: the same workers');

$r = $t->api(GET => 'tenants/shop1/domains/shop.example.com/certificate');
is($r->{json}{certificate}{host}, 'shop.example.com', 'GET shows it');
unlike($r->{body}, qr/PRIVATE|BEGIN/, '... without the key');
unlike($t->psql("SELECT encode(key_sealed, 'escape') FROM certificates"), qr/PRIVATE|BEGIN/,
       'the registry holds the key sealed');

# --- replaced while serving ---------------------------------------------------
my $v2 = $tls->leaf('shop-v2', ['shop.example.com', 'www.shop.example.com']);
is(put_cert('shop1', 'shop.example.com', $v2)->{status}, 200, 'a replacement: 200');
ok(Tenant::Test::wait_until(sub { (cn('shop.example.com') // '') eq 'shop-v2' }, 5, 0.01),
   'the replacement is served, no reload');
is_deeply([$t->nginx_worker_pids], \@workers, 'still the same workers');

# --- a wildcard of the platform's own, written straight to the registry -------
# (what the ACME issue's DNS-01 order will write; here the operator did)

# --- refused uploads ------------------------------------------------------------
my $other = $tls->leaf('not-shop', ['elsewhere.example.net']);
$r = put_cert('shop1', 'shop.example.com', $other);
is($r->{status}, 422, 'a certificate for another name: 422');
like($r->{json}{error}{message}, qr/does not cover shop\.example\.com \(it covers: elsewhere\.example\.net\)/, '... saying what it covers');
is($r->{json}{error}{field}, 'certificate', '... naming the field');
$r = put_cert('shop1', 'shop.example.com', $v2, key => $v1->{key_pem});
is($r->{status}, 422, 'a key of another certificate: 422');
is($r->{json}{error}{field}, 'key', '... naming the key');
like($r->{json}{error}{message}, qr/does not match/, '... saying why');
my $old = $tls->leaf('shop-old', ['shop.example.com'], expired => 1);
$r = put_cert('shop1', 'shop.example.com', $old);
is($r->{status}, 422, 'an expired certificate: 422');
like($r->{json}{error}{message}, qr/expired/, '... saying so');
$r = put_cert('shop1', 'shop.example.com', $v2, pem => $tls->{inter}{pem} . $v2->{pem});
is($r->{status}, 422, 'a chain out of order: 422');
like($r->{json}{error}{message}, qr/leaf|out of order/, '... saying how it must be');
my $weak = $tls->leaf('weak', ['shop.example.com'], type => 'rsa', bits => 1024);
$r = put_cert('shop1', 'shop.example.com', $weak);
is($r->{status}, 422, 'RSA 1024: 422');
like($r->{json}{error}{message}, qr/ECDSA P-256 or RSA of 2048/, '... naming what is accepted');
$r = put_cert('shop1', 'shop.example.com', $v2, pem => "not a certificate");
is($r->{status}, 422, 'not PEM: 422');
$r = put_cert('shop2', 'shop.example.com', $v2);
is($r->{status}, 404, "another tenant's domain: 404");
is($r->{json}{error}{code}, 'no_such_domain', '... no_such_domain');
$r = put_cert('nobody', 'shop.example.com', $v2);
is($r->{status}, 404, 'no such tenant: 404');
$r = $t->api(PUT => 'tenants/shop1/domains/shop.example.com/certificate', { certificate => $v2->{chain}, key => $v2->{key_pem}, extra => 1 });
is($r->{status}, 422, 'an unknown field: 422');
is((cn('shop.example.com') // ''), 'shop-v2', 'none of them changed what is served');
is($t->psql("SELECT count(*) FROM certificates"), 1, 'one row in the registry');

# --- 421 across tenants ----------------------------------------------------------
is(curl_tls('shop.example.com', '-H', 'Host: shop2.localhost'), '421',
   "shop2's Host on shop1's TLS name: 421");
is(curl_tls('shop.example.com', '-H', 'Host: shop1.localhost'), '200',
   "shop1's other host on its own TLS name: 200");
is(curl_tls('shop1.localhost', '-H', 'Host: shop2.localhost'), '421',
   'a pattern host of shop1 carrying Host shop2: 421');

# --- hostile names ---------------------------------------------------------------
for my $case (['127.0.0.1', 'an IP literal'], ['x' x 250 . '.localhost', 'an over-long name'],
              ["\xd1\x88op.example.com", 'a non-ASCII name'], ['-bad-.example.com', 'a malformed name'],
              ['SHOP.EXAMPLE.COM', 'upper case (normalised)']) {
    my ($sni, $what) = @$case;
    my $s = IO::Socket::SSL->new(PeerAddr => '127.0.0.1', PeerPort => $sport, SSL_hostname => $sni,
                                 SSL_verify_mode => SSL_VERIFY_NONE, Timeout => 5);
    my $cn = $s ? ($s->peer_certificate('subject') =~ /CN\s*=\s*([^\/,]+)/)[0] : undef;
    ok(!$s || defined $cn, "$what: a handshake or an alert, nothing else");
    if ($sni =~ /^SHOP/) {
        is($cn, 'shop-v2', "$what: its certificate");
    } elsif ($s) {
        is($cn, 'platform-default', "$what: the default certificate");
    } else {
        pass("$what: refused by the handshake");
    }
}
is(curl_tls('shop1.localhost'), '200', 'and the edge serves on');

# --- a corrupt row is skipped, logged, the others load ----------------------------
$t->psql("INSERT INTO certificates (host, chain, key_nonce, key_sealed, names, issuer, key_type,"
       . " not_before, not_after, source) SELECT 'broken.example.com', chain, key_nonce, key_sealed,"
       . " names, issuer, key_type, not_before, not_after, 'uploaded' FROM certificates"
       . " WHERE host = 'shop.example.com'");
ok(Tenant::Test::wait_until(sub { $t->error_log =~ /certificate "broken\.example\.com" does not open/ }, 5),
   'a key sealed for another host does not open: logged');
is(cn('broken.example.com'), 'platform-default', '... and not served');
is(cn('shop.example.com'), 'shop-v2', 'the others still are');

# --- expiring -------------------------------------------------------------------------
$r = $t->api(GET => 'certificates?within_days=60');
is($r->{status}, 200, 'GET certificates?within_days=60: 200');
ok((grep { $_->{host} eq 'shop.example.com' } @{ $r->{json}{certificates} }), '... lists the 30-day certificate');
$r = $t->api(GET => 'certificates?within_days=5');
ok(!(grep { $_->{host} eq 'shop.example.com' } @{ $r->{json}{certificates} }), 'within 5 days: not listed');
is($t->api(GET => 'certificates?within_days=x')->{status}, 400, 'a bad within_days: 400');

# --- HTTP to HTTPS, HSTS -----------------------------------------------------------------
$r = $t->request(host => 'shop.example.com', path => '/cart?x=1');
is($r->{status}, 301, 'plain HTTP to a host with a certificate: 301');
is($r->{headers}{location}, "https://shop.example.com:$sport/cart?x=1", '... to HTTPS, path and query kept');
is($t->request(host => 'other.example.org')->{status}, 200, 'a host without one stays on HTTP');
my ($rc, $hdr) = Tenant::Test::run_cmd('curl', '-s', '-D', '-', '-o', '/dev/null', '--cacert', $tls->ca,
    '--resolve', "shop.example.com:$sport:127.0.0.1", "https://shop.example.com:$sport/");
unlike($hdr, qr/Strict-Transport-Security/i, 'no HSTS before the tenant asks');
$r = $t->api(PUT => 'tenants/shop1/hsts', { enabled => JSON::PP::true });
is($r->{status}, 200, 'PUT tenants/shop1/hsts: 200');
is($t->api(PUT => 'tenants/shop1/hsts', { enabled => 'yes' })->{status}, 422, 'a non-boolean: 422');
ok(Tenant::Test::wait_until(sub {
    (undef, $hdr) = Tenant::Test::run_cmd('curl', '-s', '-D', '-', '-o', '/dev/null', '--cacert', $tls->ca,
        '--resolve', "shop.example.com:$sport:127.0.0.1", "https://shop.example.com:$sport/");
    $hdr =~ /Strict-Transport-Security: max-age=31536000/i }, 5), 'then HSTS on its HTTPS answers');

# --- the registry down: loaded certificates keep serving ---------------------------------
$t->stop_pg;
is(cn('shop.example.com'), 'shop-v2', 'registry stopped: the certificate is still served');
is(curl_tls('shop.example.com'), '200', '... and the tenant answers (from the cache)');
$t->pg_ctl_start;

# --- delete -------------------------------------------------------------------------------
ok(Tenant::Test::wait_until(sub {
    $t->api(DELETE => 'tenants/shop1/domains/shop.example.com/certificate')->{status} == 200 }, 15),
   'DELETE the certificate: 200');
ok(Tenant::Test::wait_until(sub { (cn('shop.example.com') // '') eq 'platform-default' }, 10, 0.02),
   'the default answers for the host again');
is($t->api(GET => 'tenants/shop1/domains/shop.example.com/certificate')->{status}, 404, 'GET: 404');

# --- a domain removed takes its certificate with it --------------------------------------
is(put_cert('shop2', 'other.example.org', $tls->leaf('other-v1', ['other.example.org']))->{status}, 200,
   "shop2's certificate uploaded");
ok(Tenant::Test::wait_until(sub { (cn('other.example.org') // '') eq 'other-v1' }, 5, 0.01), '... and served');
is($t->api(DELETE => 'tenants/shop2/domains/other.example.org')->{status}, 200, 'the domain removed');
ok(Tenant::Test::wait_until(sub { (cn('other.example.org') // '') eq 'platform-default' }, 5, 0.01),
   '... and its certificate with it');

# --- the CLI, as the API -------------------------------------------------------------------
my $pconf = $t->dir . '/cli.conf';
Tenant::Test::write_file($pconf, "db = " . $t->conninfo . "\ncertificate_key = $key_file\n");
sub pcli { Tenant::Test::run_cmd($Tenant::Test::PROVISIONER, '-c', $pconf, 'certs', @_) }
is($t->api(POST => 'tenants/shop2/domains', { host => 'other.example.org' })->{status}, 201, 'shop2 has its domain again');
my $c3 = $tls->leaf('other-cli', ['other.example.org']);
my ($crc, $cout) = pcli('upload', 'shop2', 'other.example.org', '--cert', $c3->{cert}, '--key', $c3->{key});
is($crc, 0, 'CLI certs upload: exit 0') or diag $cout;
like($cout, qr/"host" : "other\.example\.org"|"host":"other\.example\.org"/, '... prints the certificate');
ok(Tenant::Test::wait_until(sub { (cn('other.example.org') // '') eq 'other-cli' }, 5, 0.01),
   'a certificate uploaded by the CLI is served by the edge');
($crc, $cout) = pcli('upload', 'shop2', 'other.example.org', '--cert', $c3->{cert}, '--key', $v1->{key});
is($crc, 2, 'CLI upload with a key of another certificate: exit 2');
like($cout, qr/--key: key: does not match/, '... naming --key and why');
($crc, $cout) = pcli('show', 'shop2', 'other.example.org');
is($crc, 0, 'CLI certs show: exit 0');
unlike($cout, qr/PRIVATE|BEGIN/, '... without the key');
($crc, $cout) = pcli('expiring', '--days', '60');
like($cout, qr/other\.example\.org/, 'CLI certs expiring --days 60 lists it');
($crc, $cout) = pcli('delete', 'shop2', 'other.example.org');
is($crc, 0, 'CLI certs delete: exit 0');
($crc, $cout) = pcli('show', 'shop2', 'other.example.org');
is($crc, 3, '... then show: exit 3 (not found)');
($crc, $cout) = pcli('frobnicate');
is($crc, 2, 'an unknown certs command: exit 2');
like($cout, qr/frobnicate: must be upload, platform, show, delete or expiring/, '... naming it');

# a wildcard of the platform's own covers every name one label under it
my $wild = $tls->leaf('wild-platform', ['*.wild.example.net']);
($crc, $cout) = pcli('platform', '*.wild.example.net', '--cert', $wild->{cert}, '--key', $wild->{key});
is($crc, 0, 'CLI certs platform *.wild.example.net: exit 0') or diag $cout;
like($cout, qr/"source"\s*:\s*"wildcard"/, '... stored as a wildcard');
ok(Tenant::Test::wait_until(sub { (cn('a.wild.example.net') // '') eq 'wild-platform' }, 5, 0.01),
   'a.wild.example.net: the wildcard from the registry');
is(cn('b.a.wild.example.net'), 'platform-default', 'two labels under it: not covered, the default');
is(cn('wild.example.net'), 'platform-default', 'the parent itself: the default');
($crc, $cout) = pcli('platform', '*.other.example.net', '--cert', $wild->{cert}, '--key', $wild->{key});
is($crc, 2, 'a wildcard certificate for another parent: exit 2');
like($cout, qr/does not cover \*\.other\.example\.net/, '... saying so');

# RSA works too
my $rsa = $tls->leaf('rsa-shop', ['rsa.example.com'], type => 'rsa', bits => 2048);
is($t->api(POST => 'tenants/shop1/domains', { host => 'rsa.example.com' })->{status}, 201, 'shop1 adds rsa.example.com');
$r = put_cert('shop1', 'rsa.example.com', $rsa);
is($r->{json}{certificate}{key_type}, 'RSA 2048', 'an RSA 2048 certificate is accepted');
ok(Tenant::Test::wait_until(sub { (cn('rsa.example.com') // '') eq 'rsa-shop' }, 5, 0.01), '... and served');

# --- ACME HTTP-01 answers, from the registry, before tenant routing --------------------------
my $tok = 'Tok3n_abc-DEF';
$t->psql("INSERT INTO acme_challenges (host, token, key_authorization)"
       . " VALUES ('shop.example.com', '$tok', '$tok.thumbprint_123')");
my $a0 = time;
ok(Tenant::Test::wait_until(sub {
    my $x = $t->request(host => 'shop.example.com', path => "/.well-known/acme-challenge/$tok");
    $x->{status} == 200 && $x->{body} eq "$tok.thumbprint_123" }, 5, 0.005),
   'the edge answers the challenge from the registry (on plain HTTP, before the redirect)');
diag(sprintf 'challenge row committed -> answered: %.1f ms', (time - $a0) * 1000);
$r = $t->request(host => 'shop.example.com', path => "/.well-known/acme-challenge/$tok");
is($r->{headers}{'content-type'}, 'text/plain', '... as text/plain');
$t->psql("INSERT INTO acme_challenges (host, token, key_authorization)"
       . " VALUES ('nobody.example.net', 't1', 't1.x')");
ok(Tenant::Test::wait_until(sub {
    $t->request(host => 'nobody.example.net', path => '/.well-known/acme-challenge/t1')->{body} eq 't1.x' }, 5, 0.005),
   'for a host no tenant has yet too (a domain being set up)');
like($t->request(host => 'shop.example.com', path => '/.well-known/acme-challenge/other')->{body}, qr/^b1 /,
     'another token is not the edge\'s: it goes to the tenant');
is($t->request(host => 'other.example.org', path => "/.well-known/acme-challenge/$tok")->{body} =~ /thumbprint/ ? 1 : 0, 0,
   'nor the same token for another host');
$t->psql("DELETE FROM acme_challenges WHERE host = 'shop.example.com'");
ok(Tenant::Test::wait_until(sub {
    $t->request(host => 'shop.example.com', path => "/.well-known/acme-challenge/$tok")->{body} !~ /thumbprint/ }, 5, 0.005),
   'a challenge deleted is no longer answered');

# --- a reload under HTTPS load: every handshake succeeds -----------------------------------
is(put_cert('shop1', 'shop.example.com', $v2)->{status}, 200, 'shop1 has its certificate again');
ok(Tenant::Test::wait_until(sub { (cn('shop.example.com') // '') eq 'shop-v2' }, 5, 0.01), '... served');
my $out = $t->dir . '/handshakes';
my $pid = fork // die;
if (!$pid) {
    my ($ok, $bad) = (0, 0);
    my $until = time + 4;
    while (time < $until) {
        my $s = IO::Socket::SSL->new(PeerAddr => '127.0.0.1', PeerPort => $sport,
                                     SSL_hostname => 'shop.example.com', SSL_ca_file => $tls->ca,
                                     SSL_verifycn_name => 'shop.example.com', SSL_verifycn_scheme => 'http',
                                     SSL_session_cache_size => 0, Timeout => 5);
        if ($s && $s->peer_certificate('subject') =~ /shop-v2/) { $ok++ } else { $bad++ }
        close $s if $s;
    }
    Tenant::Test::write_file($out, "$ok $bad");
    POSIX::_exit(0);
}
sleep 0.5;
for (1 .. 3) { $t->nginx_signal('reload'); sleep 0.8 }
waitpid $pid, 0;
my ($ok, $bad) = split ' ', Tenant::Test::slurp($out);
ok($ok > 50, "full handshakes during 3 reloads: $ok");
is($bad, 0, '... none failed or got another certificate');

Tenant::Test::finish();
