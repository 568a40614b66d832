# tenant_cache_api: look-up, stats, purges; restricted by allow/deny; a
# location without the directive exposes nothing. Two nginx instances on one
# registry both follow every change.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Tenant::Test;
use Tenant::Conf;

my $t = Tenant::Test->new->start_pg;
$t->migrate;
$t->start_nginx(backends => ['b1', 'b2'], http => Tenant::Conf::http(ttl => '600s'));
my $b = $t->{backend};
$t->add_tenant('acme', site => [["127.0.0.1:$b->{b1}", 3]], admin => ["127.0.0.1:$b->{b2}"]);
$t->add_tenant('globex', site => ["127.0.0.1:$b->{b2}"]);
$t->settle_notifications;
$t->get($_) for qw(acme.localhost admin.acme.localhost globex.localhost nobody.localhost);

my $r = $t->cache_api(GET => 'hosts/acme.localhost');
is($r->{status}, 200, 'look-up of a cached host');
is($r->{headers}{'content-type'}, 'application/json', 'JSON');
is($r->{json}{tenant}, 'acme', 'tenant');
is($r->{json}{role}, 'site', 'role');
is($r->{json}{status}, 'active', 'status');
is_deeply($r->{json}{endpoints}, [{ address => "127.0.0.1:$b->{b1}", weight => 3 }], 'endpoints');
ok($r->{json}{valid}, 'valid');
cmp_ok($r->{json}{expires_in}, '>', 500, 'expires in about the TTL');

$r = $t->cache_api(GET => 'hosts/ADMIN.acme.localhost.');
is($r->{json}{role}, 'admin', 'host in the path is normalised; admin entry');
$r = $t->cache_api(GET => 'hosts/nobody.localhost');
is($r->{json}{status}, 'unknown', 'negative entry shown as unknown');
$r = $t->cache_api(GET => 'hosts/never.localhost');
is($r->{status}, 404, 'uncached host: 404');
is($r->{json}{error}{code}, 'not_cached', 'with a JSON error');
$r = $t->cache_api(GET => 'hosts/bad..host');
is($r->{status}, 400, 'malformed host: 400');

$r = $t->cache_api(GET => 'stats');
is($r->{status}, 200, 'stats');
my $s = $r->{json};
is($s->{entries}, 4, 'entries counted');
ok($s->{bytes}{size} > 0 && $s->{bytes}{used} > 0 && $s->{bytes}{free} > 0, 'bytes size/used/free');
ok($s->{misses} >= 4, 'misses counted');
ok(exists $s->{hits} && exists $s->{stale} && exists $s->{evictions}, 'hits, stale, evictions');
ok($s->{registry}{connections} == 2, 'registry connections of the answering worker');
ok($s->{listener}{listening}, 'listener state');

my $hits = $s->{hits};
$t->get('acme.localhost') for 1 .. 5;
is($t->cache_api(GET => 'stats')->{json}{hits}, $hits + 5, 'hits increase by 5');

# purge one host
$r = $t->cache_api(DELETE => 'hosts/globex.localhost');
is($r->{status}, 200, 'purge one host');
is($t->cache_api(GET => 'hosts/globex.localhost')->{status}, 404, 'host gone');
is($t->cache_api(GET => 'hosts/acme.localhost')->{status}, 200, 'others kept');
is($t->cache_api(DELETE => 'hosts/globex.localhost')->{status}, 404, 'purging it again: 404');
is($t->get('globex.localhost')->{headers}{'x-tenant-cache'}, 'MISS', 'next request misses');

# purge one tenant: both of acme's hosts, not globex
$r = $t->cache_api(DELETE => 'tenants/acme');
is($r->{status}, 200, 'purge one tenant');
ok(!$t->cache_api(GET => 'hosts/acme.localhost')->{json}{valid}, 'acme site entry invalid');
ok(!$t->cache_api(GET => 'hosts/admin.acme.localhost')->{json}{valid}, 'acme admin entry invalid');
ok($t->cache_api(GET => 'hosts/globex.localhost')->{json}{valid}, 'globex entry still valid');
is($t->get('acme.localhost')->{headers}{'x-tenant-cache'}, 'EXPIRED', 'acme refreshed on its next request');

# purge everything
is($t->cache_api(DELETE => 'all')->{status}, 200, 'purge all');
ok(!$t->cache_api(GET => 'hosts/globex.localhost')->{json}{valid}, 'every entry invalid');

is($t->cache_api(POST => 'stats')->{status}, 405, 'wrong method: 405');
is($t->cache_api(GET => 'nothing-here')->{status}, 404, 'unknown resource: 404');

# a location without the directive exposes nothing
$r = $t->request(host => 'localhost', path => '/not-the-api/stats');
is($r->{status}, 404, 'location without tenant_cache_api: nothing exposed');
unlike($r->{body}, qr/entries|hits/, '... no stats in the body');

# allow/deny: only loopback allowed in the example; deny all with another conf
# is exercised by nginx's own access module, check the answer is 403
$t->stop_nginx;
$t->start_nginx(backends => ['b1', 'b2'], http => Tenant::Conf::http(ttl => '600s') =~ s/allow 127\.0\.0\.1;//r);
is($t->cache_api(GET => 'stats')->{status}, 403, 'deny all: 403 from the access module');

# two instances on one registry both follow every change
$t->stop_nginx;
$t->start_nginx(backends => ['b1', 'b2'], http => Tenant::Conf::http(ttl => '600s'));
my $t2 = Tenant::Test->new->share_pg($t);
$t2->{backend} = { %$b };
$t2->start_nginx(http => Tenant::Conf::http(ttl => '600s'));
ok(Tenant::Test::wait_until(sub { $t->listeners == 2 }, 5), 'two instances: two listeners, one each');
like($t->get('acme.localhost')->{body}, qr/^b1 /, 'instance 1: acme on b1');
like($t2->get('acme.localhost')->{body}, qr/^b1 /, 'instance 2: acme on b1');
$t->psql("UPDATE tenant_endpoints SET address = '127.0.0.1:$b->{b2}' WHERE tenant_id = 'acme' AND role = 'site'");
ok(Tenant::Test::wait_until(sub { $t->get('acme.localhost')->{body} =~ /^b2 / }, 2), 'instance 1 follows the change');
ok(Tenant::Test::wait_until(sub { $t2->get('acme.localhost')->{body} =~ /^b2 / }, 2), 'instance 2 follows the change');
$t->psql("UPDATE tenants SET status = 'suspended' WHERE id = 'globex'");
ok(Tenant::Test::wait_until(sub { $t->get('globex.localhost')->{status} == 503 && $t2->get('globex.localhost')->{status} == 503 }, 2),
   'both instances see the suspension');

Tenant::Test::finish();
