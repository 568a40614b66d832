# The shared-memory cache: hits never query the registry, concurrent misses
# for one host cost one query per worker at most, LRU eviction in a small
# zone, TTL and negative TTL.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep);
use Tenant::Test;
use Tenant::Conf;

my $t = Tenant::Test->new->start_pg;
$t->migrate;
$t->start_nginx(backends => ['b1', 'b2'], workers => 2,
    http => Tenant::Conf::http(zone => '64k', ttl => '2s', negative_ttl => '1s'));
my $b = $t->{backend};

$t->add_tenant('acme', site => ["127.0.0.1:$b->{b1}"]);
$t->reset_query_stats;

is($t->get('acme.localhost')->{headers}{'x-tenant-cache'}, 'MISS', 'first request misses');
is($t->lookup_queries, 1, 'a miss costs one registry query');

my $hits = 0;
for (1 .. 200) {
    $hits++ if $t->get('acme.localhost')->{headers}{'x-tenant-cache'} eq 'HIT';
}
is($hits, 200, '200 further requests are all hits');
is($t->lookup_queries, 1, 'hits cause no registry query');

# concurrent misses for one uncached host: one query per worker at most
$t->add_tenant('crowd', site => ["127.0.0.1:$b->{b2}"]);
$t->reset_query_stats;
my @res = $t->concurrent_get('crowd.localhost', 50);
my $ok = grep { $_->{status} == 200 && $_->{body} =~ /^b2 / } @res;
is($ok, 50, '50 concurrent requests for an uncached host all routed');
my $q = $t->lookup_queries;
ok($q >= 1 && $q <= 2, "they cost $q registry queries (2 workers: at most 2)");

# TTL: an expired entry is looked up again and picks up changes. The change
# is made without its notification, which would make it visible at once.
$t->psql("BEGIN; ALTER TABLE tenant_endpoints DISABLE TRIGGER tenant_endpoints_changed;"
    . " UPDATE tenant_endpoints SET address = '127.0.0.1:$b->{b2}' WHERE tenant_id = 'acme';"
    . " ALTER TABLE tenant_endpoints ENABLE TRIGGER tenant_endpoints_changed; COMMIT");
like($t->get('acme.localhost')->{body}, qr/^b1 /, 'within the TTL the cached endpoint is used');
ok(Tenant::Test::wait_until(sub { $t->get('acme.localhost')->{body} =~ /^b2 / }, 6),
   'after the TTL the new endpoint is used');

# negative entries expire too (again without notifications)
is($t->get('later.localhost')->{status}, 404, 'unknown tenant: 404');
$t->psql("ALTER TABLE tenants DISABLE TRIGGER tenants_changed;"
    . " ALTER TABLE tenant_endpoints DISABLE TRIGGER tenant_endpoints_changed");
$t->add_tenant('later', site => ["127.0.0.1:$b->{b1}"]);
$t->psql("ALTER TABLE tenants ENABLE TRIGGER tenants_changed;"
    . " ALTER TABLE tenant_endpoints ENABLE TRIGGER tenant_endpoints_changed");
is($t->get('later.localhost')->{status}, 404, 'within the negative TTL the negative entry is used');
ok(Tenant::Test::wait_until(sub { $t->get('later.localhost')->{status} == 200 }, 5),
   'negative entry expires after the negative TTL');

# LRU eviction in a deliberately small zone (64k: a few hundred entries)
my $n = 1500;
$t->psql("INSERT INTO tenants (id, blueprint, status) SELECT 'lru' || g, 'static', 'active' FROM generate_series(1, $n) g;"
    . "INSERT INTO tenant_endpoints (tenant_id, role, address) SELECT 'lru' || g, 'site', '127.0.0.1:$b->{b1}' FROM generate_series(1, $n) g");
my $routed = 0;
for my $i (1 .. $n) {
    $routed++ if $t->get("lru$i.localhost")->{status} == 200;
}
is($routed, $n, "$n tenants routed through a 64k zone");
like($t->error_log, qr/./, 'error log readable');
unlike($t->error_log, qr/could not cache/, 'no insert failed: LRU entries were evicted instead');
$t->reset_query_stats;
$t->get("lru$n.localhost");
is($t->lookup_queries, 0, 'the most recent tenant is still cached');
$t->get("lru1.localhost");
is($t->lookup_queries, 1, 'the least recent tenant was evicted');

Tenant::Test::finish();
