# A flood of random hosts costs the registry nothing: the set of every
# routable host (tenant_host_filter, a Bloom filter in shared memory,
# loaded in chunks by the listener worker and kept current by LISTEN)
# answers "certainly not a tenant" without a query. No tenant is lost by
# it: hosts made after the load route at once.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Tenant::Test;
use Tenant::Conf;

my $t = Tenant::Test->new->start_pg;
$t->migrate;
$t->psql("INSERT INTO tenants (id, blueprint, status) SELECT 'known' || g, 'static', 'active' FROM generate_series(1, 12000) g");
$t->start_nginx(backends => ['b1'], workers => 2, http => Tenant::Conf::http(filter => '64k'));
my $b1 = "127.0.0.1:$t->{backend}{b1}";
$t->psql("INSERT INTO tenant_endpoints (tenant_id, role, address) SELECT 'known' || g, 'site', '$b1' FROM generate_series(1, 12000) g");
$t->add_tenant('custom', site => [$b1], hosts => ['www.custom-shop.test']);

ok(Tenant::Test::wait_until(sub { ($t->cache_api(GET => 'stats')->{json}{host_filter}{ready} // 0) }, 20),
   'the host filter is loaded');
my $hf = $t->cache_api(GET => 'stats')->{json}{host_filter};
cmp_ok($hf->{keys}, '>=', 12000, "the load took every tenant ($hf->{keys} keys, in chunks of 5000; later ones come by NOTIFY)");
diag(sprintf 'host filter: %d keys in %d bytes: %.2f bytes per host', $hf->{keys}, $hf->{bytes}, $hf->{bytes} / $hf->{keys});

# a flood of random hosts: pattern hosts with unknown tenants, and domains
$t->reset_query_stats;
my @flood = ((map { 'nobody' . int(rand 1e9) . '.localhost' } 1 .. 1000),
             (map { 'www.random' . int(rand 1e9) . '.test' } 1 .. 1000));
my $unknown = grep { $t->get($_)->{status} == 404 } @flood;
is($unknown, 2000, '2000 random hosts: all 404');
my $queries = $t->lookup_queries;
cmp_ok($queries, '<=', 20, "... and $queries of them reached the registry (at most 1%)");

# no false negatives: every known host routes
my $ok = grep { $t->get("known$_.localhost")->{status} == 200 } map { 1 + int rand 12000 } 1 .. 200;
is($ok, 200, '200 random known tenants route');
is($t->get('www.custom-shop.test')->{status}, 200, 'the custom domain routes');

# made after the load: added by its notification, routed at once
$t->add_tenant('latecomer', site => [$b1]);
ok(Tenant::Test::wait_until(sub { $t->get('latecomer.localhost')->{status} == 200 }, 5), 'a tenant made after the load routes');
$t->psql("INSERT INTO tenant_hosts (host, tenant_id, role) VALUES ('shop.late-domain.test', 'latecomer', 'site')");
ok(Tenant::Test::wait_until(sub { $t->get('shop.late-domain.test')->{status} == 200 }, 5), 'and so does a custom domain added after it');

# a reconnect may have missed changes: the filter is loaded again
my $loads = $t->cache_api(GET => 'stats')->{json}{host_filter}{loads};
$t->restart_pg;
ok(Tenant::Test::wait_until(sub { ($t->cache_api(GET => 'stats')->{json}{host_filter}{loads} // 0) > $loads }, 20),
   'after the registry comes back the filter is loaded anew');
is($t->get('known77.localhost')->{status}, 200, 'and still knows its tenants');

Tenant::Test::finish();
