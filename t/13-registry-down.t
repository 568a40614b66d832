# The registry stopped or frozen: cached tenants keep routing (stale entries
# too, up to max_stale), uncached hosts get 503 + Retry-After quickly, and
# routing recovers on its own when the registry returns.
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
$t->start_nginx(backends => ['b1', 'b2'],
    http => Tenant::Conf::http(ttl => '2s', timeout => '1s', retry => '300ms'));
my $b = $t->{backend};

$t->add_tenant("up$_", site => ["127.0.0.1:$b->{b1}"]) for 1 .. 5;
$t->add_tenant('later', site => ["127.0.0.1:$b->{b2}"]);
is($t->get("up$_.localhost")->{status}, 200, "up$_ cached") for 1 .. 5;

# --- stopped ---------------------------------------------------------------
$t->stop_pg('fast');

my $fails = grep { $t->get("up$_.localhost")->{status} != 200 } 1 .. 5;
is($fails, 0, 'registry stopped: cached tenants still routed');

my $r = $t->get('later.localhost');
is($r->{status}, 503, 'registry stopped: uncached host gets 503');
ok($r->{headers}{'retry-after'}, '... with Retry-After');
is($r->{headers}{'x-tenant-cache'}, 'ERROR', '... and cache status ERROR');
cmp_ok($r->{time}, '<', 1.5 * $Tenant::Test::SLOW, sprintf('... answered within the query timeout (%.3fs)', $r->{time}));

sleep 2.2;    # past the TTL: entries are now stale
$r = $t->get('up1.localhost');
is($r->{status}, 200, 'expired entry still routes while the registry is down');
is($r->{headers}{'x-tenant-cache'}, 'STALE', '... served STALE');

$t->pg_ctl_start;
ok(Tenant::Test::wait_until(sub { $t->get('later.localhost')->{status} == 200 }, 10),
   'registry back: uncached host routed again, with no reload');
ok(Tenant::Test::wait_until(sub { $t->get('up1.localhost')->{headers}{'x-tenant-cache'} =~ /HIT|EXPIRED/ }, 5),
   'stale entries refreshed from the registry');

# --- frozen ----------------------------------------------------------------
# fresh entries: give them a long life so the freeze tests hits only
$t->add_tenant("fz$_", site => ["127.0.0.1:$b->{b1}"]) for 1 .. 3;
$t->stop_nginx;
$t->start_nginx(backends => ['b1', 'b2'],
    http => Tenant::Conf::http(ttl => '120s', timeout => '1s', retry => '300ms'));
is($t->get("fz$_.localhost")->{status}, 200, "fz$_ cached") for 1 .. 3;

my $measure = sub {
    my ($n) = @_;
    my ($max, $bad) = (0, 0);
    my $t0 = time;
    for my $i (1 .. $n) {
        my $r = $t->get('fz' . (1 + $i % 3) . '.localhost');
        $bad++ if $r->{status} != 200;
        $max = $r->{time} if $r->{time} > $max;
    }
    return ($n / (time - $t0), $max, $bad);
};
my ($rate0) = $measure->(300);

$t->pg_freeze;
# an uncached look-up now hangs on the frozen registry in some worker
my $pid = fork // die;
if (!$pid) {
    my $r = $t->get('stuck.localhost', '/', timeout => 10);
    POSIX::_exit($r->{status} == 503 ? 0 : 1);
}
sleep 0.2;
my ($rate1, $max1, $bad1) = $measure->(300);
waitpid $pid, 0;
my $stuck_rc = $? >> 8;
$t->pg_cont;

is($bad1, 0, 'registry frozen: 300 requests for cached tenants all routed');
cmp_ok($max1, '<', 0.5 * $Tenant::Test::SLOW, sprintf('no request waited on the frozen registry (slowest %.1f ms)', $max1 * 1000));
diag(sprintf('cached requests/s, sequential: %.0f normal, %.0f with the registry frozen', $rate0, $rate1));
is($stuck_rc, 0, 'the uncached host got 503 while the registry was frozen');

ok(Tenant::Test::wait_until(sub { $t->get('later.localhost')->{status} == 200 }, 10),
   'registry thawed: routing works');

Tenant::Test::finish();
