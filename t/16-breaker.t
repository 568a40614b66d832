# A registry that stops answering (SIGSTOP: connections hang, nothing is
# refused) costs the edge one look-up's timeout, not one per expired entry:
# after the first failure, expired entries are served at once (STALE) and a
# single probe at a time tests the registry; its answer closes the breaker.
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
$t->start_nginx(backends => ['b1'], workers => 1,
                http => Tenant::Conf::http(ttl => '1s', timeout => '1s'));
$t->add_tenant("frozen$_", site => ["127.0.0.1:$t->{backend}{b1}"]) for 1 .. 40;
is(scalar(grep { $t->get("frozen$_.localhost")->{status} == 200 } 1 .. 40), 40, '40 tenants cached');

$t->pg_freeze;
sleep 1.5;    # every entry is past its TTL now

# the first expired look-up waits out the timeout and opens the breaker
my $first = $t->get('frozen1.localhost', '/', timeout => 5);
is($first->{status}, 200, 'the first request after the freeze is served');
is($first->{headers}{'x-tenant-cache'}, 'STALE', '... stale, once its look-up timed out');

my ($slowest, %status, %cache) = (0);
for my $round (1 .. 3) {
    for my $i (1 .. 40) {
        my $r = $t->get("frozen$i.localhost");
        $status{$r->{status}}++;
        $cache{$r->{headers}{'x-tenant-cache'} // '-'}++;
        $slowest = $r->{time} if $r->{time} > $slowest;
    }
}
is($status{200}, 120, '120 requests over 40 expired tenants while frozen: all 200');
is($cache{STALE}, 120, '... all STALE');
# without the breaker each expired host waited the 1 s registry timeout
cmp_ok($slowest, '<', 0.5, sprintf 'none waited for the registry (slowest %.3f s, timeout 1 s)', $slowest);
like($t->error_log, qr/registry not answering: serving cached entries without waiting/, 'the breaker opened, and said so');
my $timeouts = () = $t->error_log =~ /registry query timed out|tenant: registry (?:query|cannot)/g;
diag("registry errors logged while frozen: $timeouts");

$t->pg_cont;
ok(Tenant::Test::wait_until(sub {
    ($t->get('frozen7.localhost')->{headers}{'x-tenant-cache'} // '') =~ /^(EXPIRED|HIT)$/
}, 10), 'the registry back: entries refreshed again');
like($t->error_log, qr/registry answering again/, 'the breaker closed');

Tenant::Test::finish();
