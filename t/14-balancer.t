# tenant_upstream: weighted round robin, failover with max_fails, keepalive
# reuse, unix-socket endpoints, 502 when every endpoint is down.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Tenant::Test;
use Tenant::Conf;

my $t = Tenant::Test->new->start_pg;
$t->migrate;
$t->start_nginx(backends => ['b1', 'b2', 'b3'], unix_backends => ['u1'],
    http => Tenant::Conf::http());
my $b = $t->{backend};
my $dead = Tenant::Test::free_port();    # nothing listens there

$t->add_tenant('weighted', site => [["127.0.0.1:$b->{b1}", 3], ["127.0.0.1:$b->{b2}", 1]]);
my %n;
for (1 .. 400) {
    my ($who) = $t->get('weighted.localhost')->{body} =~ /^(b\d)/;
    $n{$who // 'none'}++;
}
diag("weights 3:1 -> b1 $n{b1}, b2 " . ($n{b2} // 0));
ok(($n{b1} // 0) >= 285 && ($n{b1} // 0) <= 315, 'weight 3 endpoint gets ~75% of 400 requests');
ok(($n{b2} // 0) >= 85 && ($n{b2} // 0) <= 115, 'weight 1 endpoint gets ~25%');
ok(!$n{none}, 'every request answered');

$t->add_tenant('even', site => ["127.0.0.1:$b->{b1}", "127.0.0.1:$b->{b2}", "127.0.0.1:$b->{b3}"]);
%n = ();
for (1 .. 300) {
    my ($who) = $t->get('even.localhost')->{body} =~ /^(b\d)/;
    $n{$who // 'none'}++;
}
is_deeply([ map { $n{$_} // 0 } qw(b1 b2 b3) ], [100, 100, 100], 'equal weights: exact rotation over 3 endpoints');

# failover: first endpoint refuses connections
$t->add_tenant('failover', site => ["127.0.0.1:$dead", "127.0.0.1:$b->{b3}"]);
my $ok = 0;
for (1 .. 50) {
    my $r = $t->get('failover.localhost');
    $ok++ if $r->{status} == 200 && $r->{body} =~ /^b3 /;
}
is($ok, 50, 'dead first endpoint: all 50 requests served by the second');
my $refused = () = $t->error_log =~ /connect\(\) failed .*127\.0\.0\.1:$dead/g;
ok($refused >= 1 && $refused <= 4, "dead endpoint marked failed after max_fails: tried $refused times, not 50");

# every endpoint marked failed at once: the marks are cleared for quick
# recovery, as in nginx's round robin, instead of fail_timeout (10 s) of 502s
my $be = Tenant::Test->new;
$be->start_nginx(backends => ['f1', 'f2'], workers => 1,
                 http => 'server { listen 127.0.0.1:%%PORT%%; return 204; }');
$t->add_tenant('flaky', site => ["127.0.0.1:$be->{backend}{f1}", "127.0.0.1:$be->{backend}{f2}"]);
is($t->get('flaky.localhost')->{status}, 200, 'flaky routed');
$be->stop_nginx;
is($t->get('flaky.localhost')->{status}, 502, 'its backend down: 502, both endpoints now marked failed');
$be->start_nginx(backends => ['f1', 'f2'], workers => 1,
                 http => 'server { listen 127.0.0.1:%%PORT%%; return 204; }');
is($t->get('flaky.localhost')->{status}, 200, 'back up: 200 at once, not after fail_timeout');

# keepalive: connections to the endpoint are reused
$t->add_tenant('keep', site => ["127.0.0.1:$b->{b1}"]);
my %conns;
for (1 .. 40) {
    my ($c) = $t->get('keep.localhost')->{body} =~ /conn=(\d+)/;
    $conns{$c}++;
}
my $distinct = keys %conns;
ok($distinct <= 4, "40 requests over $distinct upstream connections (keepalive reuse)");

# unix-socket endpoint
$t->add_tenant('unixy', site => [$b->{u1}]);
my $r = $t->get('unixy.localhost');
is($r->{status}, 200, 'unix: endpoint routed');
like($r->{body}, qr/^u1 /, '... to the unix-socket backend');

# no endpoint answers: 502 for that tenant only
$t->add_tenant('down', site => ["127.0.0.1:$dead"]);
is($t->get('down.localhost')->{status}, 502, 'only endpoint down: 502');
is($t->get('keep.localhost')->{status}, 200, 'other tenants unaffected');

Tenant::Test::finish();
