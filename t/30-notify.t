# Changes in the registry reach routing within milliseconds with no reload:
# NOTIFY tenant_changed from triggers, one listener per nginx instance.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use Tenant::Test;
use Tenant::Conf;

my $t = Tenant::Test->new->start_pg;
$t->migrate;
# a long TTL: any change seen below came through a notification
$t->start_nginx(backends => ['b1', 'b2'], http => Tenant::Conf::http(ttl => '600s'));
my $b = $t->{backend};
ok(Tenant::Test::wait_until(sub { $t->listeners == 1 }, 5), 'one listener for the instance');

$t->add_tenant('acme', site => ["127.0.0.1:$b->{b1}"]);
like($t->get('acme.localhost')->{body}, qr/^b1 /, 'acme on b1');

my $dbh = $t->dbh;
$dbh->do("UPDATE tenant_endpoints SET address = '127.0.0.1:$b->{b2}' WHERE tenant_id = 'acme'");
ok(Tenant::Test::wait_until(sub { $t->get('acme.localhost')->{body} =~ /^b2 / }, 2),
   'an UPDATE in SQL moves acme to b2, no reload');

$dbh->do("UPDATE tenants SET status = 'suspended' WHERE id = 'acme'");
my $r = $t->get('acme.localhost');
my $tries = 1;
while ($r->{status} != 503 && $tries < 200) { $r = $t->get('acme.localhost'); $tries++ }
is($r->{status}, 503, "suspended through SQL: 503 (request $tries after the commit)");
$dbh->do("UPDATE tenants SET status = 'active' WHERE id = 'acme'");
ok(Tenant::Test::wait_until(sub { $t->get('acme.localhost')->{status} == 200 }, 2), 'resumed through SQL: 200');

# a custom domain cached as unknown becomes known when it is added
is($t->get('shop.acme.com')->{status}, 404, 'custom domain not yet known');
$dbh->do("INSERT INTO tenant_hosts (host, tenant_id) VALUES ('shop.acme.com', 'acme')");
ok(Tenant::Test::wait_until(sub { $t->get('shop.acme.com')->{status} == 200 }, 2),
   'negative entry dropped when the host is added');
$dbh->do("DELETE FROM tenant_hosts WHERE host = 'shop.acme.com'");
ok(Tenant::Test::wait_until(sub { $t->get('shop.acme.com')->{status} == 404 }, 2),
   'custom domain removed: 404');

# a new tenant cached as unknown appears
is($t->get('fresh.localhost')->{status}, 404, 'fresh unknown');
$t->add_tenant('fresh', site => ["127.0.0.1:$b->{b1}"]);
ok(Tenant::Test::wait_until(sub { $t->get('fresh.localhost')->{status} == 200 }, 2),
   'new tenant routed at once despite the negative entry');
$dbh->do("DELETE FROM tenants WHERE id = 'fresh'");
ok(Tenant::Test::wait_until(sub { $t->get('fresh.localhost')->{status} == 404 }, 2),
   'deleted tenant: 404');

# propagation delay: commit -> changed routing, 100 changes
my @delays;
my $cur = 'b2';
for my $i (1 .. 100) {
    my $next = $cur eq 'b1' ? 'b2' : 'b1';
    $dbh->do("UPDATE tenant_endpoints SET address = '127.0.0.1:$b->{$next}' WHERE tenant_id = 'acme'");
    my $t0 = time;
    my $seen;
    while (time - $t0 < 5) {
        if ($t->get('acme.localhost')->{body} =~ /^$next /) { $seen = time - $t0; last }
    }
    push @delays, $seen // 5;
    $cur = $next;
}
my $missed = grep { $_ >= 5 } @delays;
is($missed, 0, '100 changes all propagated');
diag(sprintf('propagation commit -> routing over 100 changes: p50 %.2f ms, p99 %.2f ms, max %.2f ms',
    map { $_ * 1000 } Tenant::Test::percentile(50, @delays),
    Tenant::Test::percentile(99, @delays), Tenant::Test::percentile(100, @delays)));

# exactly one listener across reloads and a killed worker
for my $round (1 .. 2) {
    my %old = map { $_ => 1 } $t->nginx_worker_pids;
    $t->nginx_signal('reload');
    Tenant::Test::wait_until(sub { my @n = $t->nginx_worker_pids; @n == 2 && !grep { $old{$_} } @n }, 15);
    ok(Tenant::Test::wait_until(sub { $t->listeners == 1 }, 5), "reload $round: still exactly one listener");
}
$t->reset_query_stats;
is($t->get('acme.localhost')->{headers}{'x-tenant-cache'}, 'HIT', 'handover kept the warm cache');
$dbh->do("UPDATE tenant_endpoints SET address = '127.0.0.1:$b->{b1}' WHERE tenant_id = 'acme'");
ok(Tenant::Test::wait_until(sub { $t->get('acme.localhost')->{body} =~ /^b1 / }, 2),
   'changes still propagate after reloads');

my $owner = $t->cache_api(GET => 'stats')->{json}{listener}{pid};
ok($owner, "listener held by worker $owner");
kill 'KILL', $owner;
ok(Tenant::Test::wait_until(sub {
    my $p = $t->cache_api(GET => 'stats')->{json}{listener}{pid} // 0;
    $p && $p != $owner && $t->listeners == 1;
}, 10), 'listener worker killed: another worker takes over, still one listener');
$dbh->do("UPDATE tenant_endpoints SET address = '127.0.0.1:$b->{b2}' WHERE tenant_id = 'acme'");
ok(Tenant::Test::wait_until(sub { $t->get('acme.localhost')->{body} =~ /^b2 / }, 3),
   'changes propagate through the new listener');

# PostgreSQL restart: the listener reconnects and invalidates everything,
# so a change it never heard of (trigger disabled) is picked up too
$t->add_tenant('quiet', site => ["127.0.0.1:$b->{b1}"]);
like($t->get('quiet.localhost')->{body}, qr/^b1 /, 'quiet on b1');
$dbh->do('ALTER TABLE tenant_endpoints DISABLE TRIGGER tenant_endpoints_changed');
$dbh->do("UPDATE tenant_endpoints SET address = '127.0.0.1:$b->{b2}' WHERE tenant_id = 'quiet'");
$dbh->do('ALTER TABLE tenant_endpoints ENABLE TRIGGER tenant_endpoints_changed');
sleep 0.3;
like($t->get('quiet.localhost')->{body}, qr/^b1 /, 'a change without a notification is not seen (cache HIT)');
$dbh->disconnect;
delete $t->{dbh};
my $gen = $t->cache_api(GET => 'stats')->{json}{generation};
$t->restart_pg;
ok(Tenant::Test::wait_until(sub { $t->listeners == 1 }, 10), 'listener reconnected after the restart');
ok(Tenant::Test::wait_until(sub { $t->get('quiet.localhost')->{body} =~ /^b2 / }, 5),
   'after the reconnect the whole cache was invalidated: the unheard change is routed');
cmp_ok($t->cache_api(GET => 'stats')->{json}{generation}, '>', $gen, 'generation counter bumped');
is($t->get('acme.localhost')->{status}, 200, 'other tenants still routed');

Tenant::Test::finish(allow => qr/exited on signal 9/);
