# Custom domains are proven before they route: a claim holds a token the
# owner publishes as TXT _ngx-tenant.{domain}; the provisioner looks it up
# (here in pebble-challtestsrv's mock DNS, started by the test) and the
# first claim whose token it finds gets the domain. A tenant that asks
# first cannot take a domain it cannot prove; a wrong TXT stays pending; an
# operator may verify by hand (audited); claims expire.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Socket::INET;
use JSON::PP;
use Time::HiRes qw(time sleep);
use Tenant::Test;
use Tenant::Conf;

my $t = Tenant::Test->new->start_pg;
$t->migrate;

# the mock DNS (pebble-challtestsrv), on loopback ports of the test's own
my $dns = $t->start_mock_dns->{dns};
sub set_txt { $t->set_txt("_ngx-tenant.$_[0]", $_[1]) }
sub clear_txt { $t->clear_txt("_ngx-tenant.$_[0]") }

$t->start_nginx(backends => ['b1', 'b2'], http => Tenant::Conf::http(verify_domains => 1));
$t->add_tenant('shop1', site => ["127.0.0.1:$t->{backend}{b1}"]);
$t->add_tenant('brand', site => ["127.0.0.1:$t->{backend}{b2}"]);
$t->start_provisioner(extra => ["dns_resolver = 127.0.0.1:$dns", 'domain_claim_ttl = 600']);
$t->{api_key} = $t->create_api_key('verify');

# --- a claim: pending, with its token and what to publish -------------------------
my $r = $t->api(POST => 'tenants/shop1/domains', { host => 'shop.bigbrand.com' });
is($r->{status}, 202, 'a custom domain is a claim: 202');
my $c1 = $r->{json}{domain};
is($c1->{status}, 'pending', '... pending');
like($c1->{token}, qr/^ngx-tenant-verify=[0-9a-f-]{36}$/, '... with a token');
is($c1->{txt_record}, '_ngx-tenant.shop.bigbrand.com', '... and the TXT record to publish it in');
is($t->get('shop.bigbrand.com')->{status}, 404, 'a pending domain does not route');

# another tenant may claim the same domain: asking first takes nothing
$r = $t->api(POST => 'tenants/brand/domains', { host => 'shop.bigbrand.com' });
is($r->{status}, 202, "the owner's own claim on it is not blocked: 202");
my $c2 = $r->{json}{domain};
isnt($c2->{token}, $c1->{token}, '... with a token of its own');

# certificates only for proven domains
$r = $t->api(PUT => 'tenants/shop1/domains/shop.bigbrand.com/certificate',
             { certificate => 'x', key => 'y' });
like($r->{status}, qr/^(404|503)$/, 'no certificate for a pending domain');

# --- nothing published: the provisioner says so (the mock DNS answers
# SERVFAIL for names it has nothing for, a real one NXDOMAIN) ----------------------
ok(Tenant::Test::wait_until(sub {
    ($t->psql("SELECT last_check FROM domain_claims WHERE tenant_id = 'shop1'") // '') =~ /no TXT record|lookup failure/ }, 15),
   'a look without a TXT record: the check says so');
$r = $t->api(GET => 'tenants/shop1');
my ($shown) = grep { $_->{host} eq q(shop.bigbrand.com) } @{ $r->{json}{tenant}{domain_claims} || [] };
ok($shown && $shown->{status} eq 'pending' && $shown->{last_check} =~ /no TXT record|lookup failure/,
   'GET tenants/shop1 shows the claim, its status and the last check');
ok($shown && $shown->{next_check_at}, '... and when it looks again');

# --- the owner publishes its token: its claim wins --------------------------------------
set_txt('shop.bigbrand.com', $c2->{token});
ok(Tenant::Test::wait_until(sub { $t->get('shop.bigbrand.com')->{body} =~ /^b2 / }, 30, 0.2),
   'the owner publishes its token: the domain routes to the owner');
is($t->psql("SELECT tenant_id FROM tenant_hosts WHERE host = 'shop.bigbrand.com'"), 'brand',
   'the domain is the owner\'s in the registry');
is($t->psql("SELECT status FROM domain_claims WHERE tenant_id = 'brand'"), 'verified', "the owner's claim: verified");
like($t->provisioner_log, qr/domain shop\.bigbrand\.com verified for brand/, 'the provisioner logs it');

# the other tenant's claim cannot win now, even with the owner's TXT
ok(Tenant::Test::wait_until(sub {
    ($t->psql("SELECT last_check FROM domain_claims WHERE tenant_id = 'shop1'") // '') =~ /holds other values/ }, 40, 0.2),
   "shop1's claim: the TXT holds other values");
is($t->psql("SELECT status FROM domain_claims WHERE tenant_id = 'shop1'"), 'pending', '... and stays pending');

# --- a wrong TXT stays pending -------------------------------------------------------------
$r = $t->api(POST => 'tenants/shop1/domains', { host => 'wrong.example.org' });
set_txt('wrong.example.org', 'ngx-tenant-verify=not-the-token');
ok(Tenant::Test::wait_until(sub {
    ($t->psql("SELECT last_check FROM domain_claims WHERE host = 'wrong.example.org'") // '') =~ /other values: "ngx-tenant-verify=not-the-token"/ }, 15, 0.2),
   'a wrong TXT: the check says what it found');
is($t->get('wrong.example.org')->{status}, 404, '... and the domain does not route');

# --- an operator verifies by hand ------------------------------------------------------------
$r = $t->api(POST => 'tenants/shop1/domains/wrong.example.org/verify');
is($r->{status}, 200, 'POST .../verify by an operator: 200');
is($r->{json}{domain}{host}, 'wrong.example.org', '... the domain');
ok(Tenant::Test::wait_until(sub { $t->get('wrong.example.org')->{body} =~ /^b1 / }, 10, 0.1), '... routes at once');
like($t->psql("SELECT detail->>'how' FROM audit_log WHERE action = 'domain.verified' AND tenant_id = 'shop1'"),
     qr/verified by hand by key:/, 'audited with the key that did it');
is($t->api(POST => 'tenants/shop1/domains/wrong.example.org/verify')->{status}, 409, 'again: 409 (not pending)');
is($t->api(POST => 'tenants/shop1/domains/shop.bigbrand.com/verify')->{status}, 409,
   "shop1's claim on the owner's domain: 409 (another tenant has it)");
is($t->api(POST => 'tenants/shop1/domains/never.example.org/verify')->{status}, 404, 'no claim: 404');

# --- expiry ---------------------------------------------------------------------------------------
$t->api(POST => 'tenants/shop1/domains', { host => 'late.example.org' });
$t->psql("UPDATE domain_claims SET created_at = now() - interval '1 hour' WHERE host = 'late.example.org'");
ok(Tenant::Test::wait_until(sub {
    ($t->psql("SELECT status FROM domain_claims WHERE host = 'late.example.org'") // '') eq 'expired' }, 15, 0.2),
   'a claim older than domain_claim_ttl expires');
$r = $t->api(POST => 'tenants/shop1/domains', { host => 'late.example.org' });
is($r->{json}{domain}{status}, 'pending', 'asking again renews it');

# --- removing a claim ----------------------------------------------------------------------------
is($t->api(DELETE => 'tenants/shop1/domains/late.example.org')->{status}, 200, 'a claim can be withdrawn');
is($t->psql("SELECT count(*) FROM domain_claims WHERE host = 'late.example.org'"), 0, '... and is gone');

Tenant::Test::finish();
