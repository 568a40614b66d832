# Per-tenant limits, live: set through the admin API (and the CLI), they
# reach two edges through the registry; a noisy tenant is held to its rate
# while another is not; over the limit is 429 with Retry-After, over a
# monthly quota the configured status; every refusal is counted. Bad input
# is refused with the field named and changes nothing.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(time sleep);
use Tenant::Test;
use Tenant::Conf;

my $traffic = "traffic:1m series=100 sync=200ms;\n    tenant_quota_status 402";
my $t = Tenant::Test->new->start_pg;
$t->migrate;
$t->start_nginx(backends => [qw(b1 b2)], workers => 2,
                http => Tenant::Conf::http(traffic => $traffic));
my $b = $t->{backend};
my $t2 = Tenant::Test->new->share_pg($t);
$t2->{backend} = { %$b };
$t2->start_nginx(workers => 1, http => Tenant::Conf::http(traffic => $traffic));
ok(Tenant::Test::wait_until(sub { $t->listeners == 2 }, 10), 'two edges on one registry');

my $hold = IO::Socket::INET->new(Listen => 64, LocalAddr => '127.0.0.1',
                                 LocalPort => 0, Proto => 'tcp', ReuseAddr => 1) or die;
$t->add_tenant('noisy', site => ["127.0.0.1:$b->{b1}"]);
$t->add_tenant('quiet', site => ["127.0.0.1:$b->{b2}"]);
$t->add_tenant('slow', site => ['127.0.0.1:' . $hold->sockport]);
$t->add_tenant('metered', site => ["127.0.0.1:$b->{b1}"]);
$t->{api_key} = $t->create_api_key('limits');

sub metric {
    my ($edge, $key) = @_;
    my $r = $edge->request(host => 'localhost', path => '/metrics');
    return $r->{body} =~ /^\Q$key\E (\S+)$/m ? $1 : 0;
}

# --- bad input: 422 naming the field, nothing changed ----------------------
my $audit = $t->psql("SELECT count(*) FROM audit_log");
for my $case (
    [ { rate => 0 }, 'rate' ], [ { rate => 'fast' }, 'rate' ], [ { rate => 0.0001 }, 'rate' ],
    [ { rate => 2000000 }, 'rate' ], [ { burst => -1 }, 'burst' ], [ { burst => 1.5 }, 'burst' ],
    [ { connections => 0 }, 'connections' ], [ { monthly_requests => 0 }, 'monthly_requests' ],
    [ { monthly_bytes => 'lots' }, 'monthly_bytes' ], [ { plan => 'Not A Plan' }, 'plan' ],
    [ { plan => 7 }, 'plan' ], [ { speed => 5 }, 'speed' ],
) {
    my ($body, $field) = @$case;
    my $r = $t->api(PUT => 'tenants/noisy/limits', $body);
    is($r->{status}, 422, "PUT limits " . JSON::PP->new->canonical->encode($body) . ": 422");
    is($r->{json}{error}{field}, $field, "... naming $field");
}
my $r = $t->api(PUT => 'tenants/noisy/limits', { plan => 'gold' });
is($r->{status}, 422, 'a plan that does not exist: 422');
is($r->{json}{error}{code}, 'no_such_plan', '... no_such_plan');
like($r->{json}{error}{message}, qr{PUT /api/plans}, '... saying how to make one');
is($t->api(PUT => 'tenants/nobody/limits', { rate => 5 })->{status}, 404, 'no such tenant: 404');
is($t->api(PUT => 'tenants/noisy/limits', '[1]')->{status}, 400, 'not a JSON object: 400');
is($t->psql("SELECT count(*) FROM audit_log"), $audit, 'nothing refused was written (audit log)');
is($t->psql("SELECT count(*) FROM tenants WHERE rate_limit IS NOT NULL OR plan IS NOT NULL"), 0,
   '... and no tenant has limits');
my ($rc, $out) = $t->provisioner('limits', 'noisy', 'set', '--rate', 'fast');
is($rc, 2, 'CLI: a bad --rate exits 2');
like($out, qr/--rate: must be a number of requests per second/, '... naming --rate and what is valid');
($rc, $out) = $t->provisioner('limits', 'noisy', 'set', '--plan', 'gold');
is($rc, 3, 'CLI: an unknown plan exits 3');
like($out, qr/--plan: no plan has this name/, '... naming --plan');
($rc, $out) = $t->provisioner('limits', 'nobody', 'set', '--rate', '5');
is($rc, 3, 'CLI: an unknown tenant exits 3');

# --- a rate set through the API reaches both edges -------------------------
for my $e ($t, $t2) { is($e->get('noisy.localhost')->{status}, 200, 'noisy answers on an edge') }
$r = $t->api(PUT => 'tenants/noisy/limits', { rate => 20, burst => 5 });
is($r->{status}, 200, 'PUT tenants/noisy/limits {rate 20, burst 5}: 200');
is($r->{json}{effective}{rate} + 0, 20, '... effective rate 20');
my $set = time;
for my $e ([$t, 'edge 1'], [$t2, 'edge 2']) {
    my $seen;
    ok(Tenant::Test::wait_until(sub {
        my @s = map { $e->[0]->get('noisy.localhost')->{status} } 1 .. 10;
        $seen = time - $set if grep { $_ == 429 } @s;
        defined $seen;
    }, 10, 0), "$e->[1] enforces it");
    diag(sprintf "%s: limit enforced %.0f ms after the API answered", $e->[1], 1000 * ($seen // 0));
}
$r = $t->get('noisy.localhost');
$r = $t->get('noisy.localhost') for grep { $r->{status} != 429 } 1 .. 20;
is($r->{status}, 429, 'over the rate: 429');
like($r->{headers}{'retry-after'} // '', qr/^[1-9]\d*$/, '... with Retry-After (' . ($r->{headers}{'retry-after'} // '-') . ')');

# --- noisy flooded, quiet served -------------------------------------------
sleep 1;    # noisy's bucket empties
my $t0 = time;
my $secs = 3;
my @kids;
for my $k (1 .. 3) {
    my $pid = fork // die;
    if (!$pid) {
        my ($ok, $no, $other) = (0, 0, 0);
        while (time - $t0 < $secs) {
            my $s = $t->get('noisy.localhost')->{status};
            $s == 200 ? $ok++ : $s == 429 ? $no++ : $other++;
        }
        open my $fh, '>', $t->dir . "/flood.$k" or die;
        print $fh "$ok $no $other\n";
        close $fh;
        POSIX::_exit(0);
    }
    push @kids, $pid;
}
my @quiet;
while (time - $t0 < $secs) { push @quiet, $t->get('quiet.localhost')->{status}; sleep 0.02 }
waitpid $_, 0 for @kids;
my ($ok, $no, $other) = (0, 0, 0);
for my $k (1 .. 3) {
    my @v = split ' ', Tenant::Test::slurp($t->dir . "/flood.$k");
    $ok += $v[0]; $no += $v[1]; $other += $v[2];
}
my $elapsed = time - $t0;
diag(sprintf "noisy flooded %.1f s: %d admitted, %d refused (rate 20/s, burst 5: about %d)",
             $elapsed, $ok, $no, 20 * $elapsed + 5);
ok($ok >= 20 * $secs * 0.8 && $ok <= 20 * $elapsed + 5 + 2, "noisy held to its rate: $ok admitted in ${secs} s");
ok($no > $ok, "... the rest refused ($no)");
is($other, 0, '... nothing else');
is(scalar(grep { $_ != 200 } @quiet), 0, 'quiet, beside it: all ' . scalar(@quiet) . ' requests 200');
my $refused = metric($t, 'ngx_tenant_refused_total{tenant="noisy",limit="rate"}');
ok($refused >= $no, "refusals counted ($refused, the flood's $no among them)");
is(metric($t, 'ngx_tenant_refused_total{tenant="quiet",limit="rate"}'), 0, 'none for quiet');

# --- concurrent requests ---------------------------------------------------
is($t->api(PUT => 'tenants/slow/limits', { connections => 2 })->{status}, 200, 'slow: 2 requests at once');
ok(Tenant::Test::wait_until(sub {
    $t->psql("SELECT max_connections FROM tenants WHERE id = 'slow'") == 2 }, 5), 'in the registry');
$t->settle_notifications;
my @held;
for (1 .. 2) {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $t->{port}) or die;
    print $s "GET / HTTP/1.1\r\nHost: slow.localhost\r\n\r\n";
    push @held, $s;
}
ok(Tenant::Test::wait_until(sub { metric($t, 'ngx_tenant_active_requests{tenant="slow"}') == 2 }, 10),
   'two of slow in flight');
$r = $t->get('slow.localhost');
is($r->{status}, 429, 'a third at once: 429');
is($r->{headers}{'retry-after'}, 1, '... Retry-After: 1');
is(metric($t, 'ngx_tenant_refused_total{tenant="slow",limit="connections"}'), 1, 'counted as connections');
close $_ for @held;
ok(Tenant::Test::wait_until(sub { metric($t, 'ngx_tenant_active_requests{tenant="slow"}') == 0 }, 10),
   'clients gone: none in flight');

# --- a monthly quota: the configured status, summed over both edges -------
($rc, $out) = $t->provisioner('limits', 'metered', 'set', '--monthly-requests', '10');
is($rc, 0, 'CLI: limits metered set --monthly-requests 10') or diag($out);
like($out, qr/"monthly_requests": 10/, '... shows the effective limit');
$t->settle_notifications;
sub used { $t->psql("SELECT coalesce(sum(requests), 0) FROM tenant_usage WHERE tenant_id = 'metered'") }
sub syncs { metric($_[0], 'ngx_tenant_quota_syncs_total') }
my @m = map { $t->get('metered.localhost')->{status} } 1 .. 6;
is_deeply(\@m, [ (200) x 6 ], 'edge 1: six requests of ten');
ok(Tenant::Test::wait_until(sub { used() == 6 }, 10), 'edge 1 adds its six to the registry');
my $s0 = syncs($t2);
is($t2->get('metered.localhost')->{status}, 200, 'edge 2: a seventh');
ok(Tenant::Test::wait_until(sub { used() == 7 && syncs($t2) > $s0 }, 10),
   'edge 2 adds it, and takes back the total');
@m = map { $t2->get('metered.localhost')->{status} } 1 .. 5;
is_deeply(\@m, [ (200) x 3, 402, 402 ], 'edge 2 knew of edge 1\'s six: three more, then tenant_quota_status 402');
$r = $t2->get('metered.localhost');
ok(($r->{headers}{'retry-after'} // 0) > 0 && $r->{headers}{'retry-after'} <= 31 * 86400,
   'Retry-After: the rest of the month (' . ($r->{headers}{'retry-after'} // '-') . ' s)');
is(metric($t2, 'ngx_tenant_refused_total{tenant="metered",limit="quota"}'), 3, 'counted as quota');
ok(Tenant::Test::wait_until(sub { used() == 10 }, 10), 'edge 2 adds its three: 10 in the registry');
# edge 1 last heard a total of 6 or, if its last sync came after edge 2's
# requests, 10: until its next sync it may let one more through
$s0 = syncs($t);
my $first = $t->get('metered.localhost')->{status};
ok($first == 200 || $first == 402, "edge 1, before its next sync: $first");
my $extra = $first == 200 ? 1 : 0;
ok(Tenant::Test::wait_until(sub { syncs($t) > $s0 }, 10), 'edge 1 syncs');
@m = map { $t->get('metered.localhost')->{status} } 1 .. 3;
is_deeply(\@m, [ (402) x 3 ], 'edge 1 then holds the quota both edges used');
ok(Tenant::Test::wait_until(sub { used() == 10 + $extra }, 10), 'the registry counts ' . (10 + $extra));
$r = $t->api(GET => 'tenants/metered/limits');
is($r->{json}{usage}{requests}, 10 + $extra, 'GET tenants/metered/limits: this month\'s use');
like($r->{json}{usage}{month}, qr/^\d{4}-\d\d$/, '... and the month');

# a restarted edge has lost its zone: the registry gives the month back
$t2->stop_nginx;
$t2->start_nginx(workers => 1, http => Tenant::Conf::http(traffic => $traffic));
$s0 = syncs($t2);
is($t2->get('metered.localhost')->{status}, 200,
   'edge 2 restarted: its first request goes through before its first sync');
ok(Tenant::Test::wait_until(sub { syncs($t2) > $s0 }, 10), '... which takes back the total');
is($t2->get('metered.localhost')->{status}, 402, '... then the quota holds across the restart');

# --- plans ------------------------------------------------------------------
$r = $t->api(PUT => 'plans/basic', { rate => 2, burst => 1 });
is($r->{status}, 200, 'PUT plans/basic {rate 2, burst 1}');
$r = $t->api(PUT => 'tenants/quiet/limits', { plan => 'basic' });
is($r->{json}{effective}{rate} + 0, 2, 'quiet on plan basic: effective rate 2');
ok(Tenant::Test::wait_until(sub { grep { $_ == 429 } map { $t2->get('quiet.localhost')->{status} } 1 .. 5 }, 10, 0),
   'edge 2 holds quiet to its plan');
($rc, $out) = $t->provisioner('plans', 'set', 'basic', '--rate', '1000', '--burst', '100');
is($rc, 0, 'CLI: plans set basic --rate 1000 --burst 100') or diag($out);
ok(Tenant::Test::wait_until(sub { !grep { $_ == 429 } map { $t2->get('quiet.localhost')->{status} } 1 .. 5 }, 10, 0),
   'a plan\'s change reaches its tenants on edge 2');
$r = $t->api(GET => 'plans');
is($r->{json}{plans}[0]{tenants}, 1, 'GET plans: basic has one tenant');
$r = $t->api(GET => 'tenants/quiet/limits');
is($r->{json}{plan}, 'basic', 'GET tenants/quiet/limits: the plan');
is($r->{json}{own}{rate}, undef, '... no rate of its own');
is($r->{json}{effective}{rate} + 0, 1000, '... the plan\'s rate in effect');
is($t->psql("SELECT count(*) FROM audit_log WHERE action IN ('tenant.limits', 'plan.set')"), 6,
   'each change in the audit log');

# --- none again ---------------------------------------------------------------
is($t->api(PUT => 'tenants/noisy/limits', {})->{status}, 200, 'PUT {}: no limits');
$t->settle_notifications;
sleep 0.2;
is(scalar(grep { $_ != 200 } map { $t->get('noisy.localhost')->{status} } 1 .. 40), 0,
   'noisy unlimited again: 40 requests at once, all 200');

Tenant::Test::finish();
