# Renewal of automatic certificates, against Pebble issuing 30-second
# certificates: each is renewed at 2/3 of its life (less jitter) and the
# edges switch to the new one; a failing renewal says why in the expiry
# list (API and CLI) while the old certificate is still served; a deleted
# domain's certificate is never renewed. The platform here trusts its
# tenants (domain verification off): a domain is ordered as it is added.
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

my $life = 30;
my $t = Tenant::Test->new->start_pg;
$t->migrate;
my $tls = Tenant::Tls->new($t->dir);
my $default = $tls->leaf('platform-default', ['localhost'], by_root => 1);
my $key_file = $tls->seal_key_file;
my $sport = Tenant::Test::free_port();
$t->start_nginx(backends => ['b1'], http => Tenant::Conf::http(ssl => {
    port => $sport, cert => $default->{cert}, key => $default->{key}, key_file => $key_file }));
$t->add_tenant('shop1', site => ["127.0.0.1:$t->{backend}{b1}"]);

my $pb = $t->start_pebble(http_port => $t->{port}, tls => $tls, validity => $life);
my $dns = $t->{mock_dns};
$t->start_provisioner(extra => [
    "dns_resolver = 127.0.0.1:$dns->{dns}", "certificate_key = $key_file",
    "acme_directory = $pb->{directory}", "acme_ca_file = $pb->{ca_file}",
    'acme_timeout = 10', 'domain_verification = off', "acme_edges = 127.0.0.1:$t->{port}"]);
$t->{api_key} = $t->create_api_key('renew');

sub serial {
    my ($sni) = @_;
    my ($rc, $out) = Tenant::Test::run_cmd('sh', '-c',
        "openssl s_client -connect 127.0.0.1:$sport -servername $sni </dev/null 2>/dev/null"
        . " | openssl x509 -noout -serial -issuer 2>/dev/null");
    my ($serial) = $out =~ /serial=(\w+)/;
    return $out =~ /Pebble/ ? $serial : undef;
}
sub orders_of { $t->psql("SELECT count(*) FROM acme_orders WHERE host = '$_[0]'") }

for my $h (qw(renew.example.com gone.example.com)) {
    is($t->api(POST => 'tenants/shop1/domains', { host => $h })->{status}, 201,
       "$h added (verification off: routes at once)");
}
my $t0 = time;
ok(Tenant::Test::wait_until(sub { serial('renew.example.com') && serial('gone.example.com') }, 20, 0.1),
   'both are ordered as they are added, and served');
my $first = serial('renew.example.com');

# renewal is due at 2/3 of the life, less up to 1/12 of jitter
my $due = $t->psql("SELECT extract(epoch FROM a.renew_after - c.not_before)"
                   . "  / extract(epoch FROM c.not_after - c.not_before)"
                   . "  FROM acme_names a JOIN certificates c USING (host)"
                   . " WHERE host = 'renew.example.com'");
ok($due >= 2 / 3 - 1 / 12 - 0.001 && $due <= 2 / 3 + 0.001,
   sprintf('renewal is due at %.3f of the life (2/3 less up to 1/12)', $due));

# a deleted domain: its certificate goes with it and is never renewed
is($t->api(DELETE => 'tenants/shop1/domains/gone.example.com')->{status}, 200, 'gone.example.com is removed');
is($t->psql("SELECT count(*) FROM certificates WHERE host = 'gone.example.com'"), 0, '... its certificate with it');

ok(Tenant::Test::wait_until(sub { my $s = serial('renew.example.com'); $s && $s ne $first }, $life + 10, 0.2),
   'before the certificate expires, a renewed one is served');
diag(sprintf 'renewed after %.1f s of a %d s life', time - $t0, $life);
is(orders_of('renew.example.com'), 2, 'two orders for it: the first, the renewal');
is($t->psql("SELECT count(*) FROM audit_log WHERE action = 'certificate.issued'"
            . " AND detail->>'host' = 'renew.example.com'"), 2, 'both issues audited');

# --- a renewal that fails: the old certificate stays, the list says why ---------------------
my $second = serial('renew.example.com');
$t->request(port => $dns->{mgmt}, method => 'POST', path => '/add-a', host => 'localhost',
            body => encode_json({ host => 'renew.example.com.', addresses => ['127.0.0.2'] }));
ok(Tenant::Test::wait_until(sub {
    ($t->psql("SELECT failures FROM acme_names WHERE host = 'renew.example.com'") // 0) >= 1 }, $life + 10, 0.2),
   'the CA can no longer reach the domain: the renewal fails');
is(serial('renew.example.com'), $second, '... and the current certificate is still served');
my $r = $t->api(GET => 'certificates?within_days=1');
my ($listed) = grep { $_->{host} eq 'renew.example.com' } @{ $r->{json}{certificates} || [] };
ok($listed && $listed->{not_after} && $listed->{renewal}{last_error} =~ /127\.0\.0\.2/
   && $listed->{renewal}{failures} >= 1 && $listed->{renewal}{next_try_at},
   'GET certificates?within_days=1 lists it expiring, with why the renewal failed and the next try');
my ($rc, $out) = $t->cli('certs', 'expiring', '--days', '1');
like($out, qr/renew\.example\.com.*"last_error": ?"[^\n]*127\.0\.0\.2/s, 'CLI certs expiring says so too');

# by now gone.example.com's renewal was long due: it was never ordered again
is(orders_of('gone.example.com'), 1, 'the deleted domain was ordered once, never renewed');
is($t->psql("SELECT count(*) FROM acme_names WHERE host = 'gone.example.com'"), 0, '... and is no longer a wanted name');

$t->stop_provisioner;
Tenant::Test::finish();
