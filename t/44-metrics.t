# tenant_metrics: per-tenant counts exact (by status class, per tenant,
# the least recent tenants in "_other"), kept across a reload and given back
# when a worker dies holding requests; the exposition passes promtool, and a
# real Prometheus scraping the edge answers a tenant's request rate.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(time sleep);
use JSON::PP qw(decode_json);
use Tenant::Test;
use Tenant::Conf;

my $t = Tenant::Test->new->start_pg;
$t->migrate;
$t->start_nginx(backends => [qw(b1 b2)], workers => 2,
                http => Tenant::Conf::http(traffic => 'traffic:1m series=4'));
my $b = $t->{backend};

# a stack that takes requests and never answers: requests stay in flight
my $hold = IO::Socket::INET->new(Listen => 64, LocalAddr => '127.0.0.1',
                                 LocalPort => 0, Proto => 'tcp', ReuseAddr => 1) or die;
my $dead = Tenant::Test::free_port();

$t->add_tenant('acme', site => ["127.0.0.1:$b->{b1}"]);
$t->add_tenant('globex', site => ["127.0.0.1:$b->{b2}"]);
$t->add_tenant('dead', site => ["127.0.0.1:$dead"]);
$t->add_tenant('slow', site => ['127.0.0.1:' . $hold->sockport]);
$t->add_tenant('paused', site => ["127.0.0.1:$b->{b1}"], status => 'suspended');
$t->add_tenant('late', site => ["127.0.0.1:$b->{b2}"]);

sub scrape {
    my $r = $t->request(host => 'localhost', path => '/metrics');
    die "scrape: $r->{status}" unless $r->{status} == 200;
    my %m;
    for (split /\n/, $r->{body}) {
        next if /^#/ || !/\S/;
        my ($k, $v) = /^(\S+) (\S+)$/ or die "not a sample line: $_";
        $m{$k} = $v;
    }
    return wantarray ? (\%m, $r) : \%m;
}

sub n { my ($m, $k) = @_; $m->{$k} // 0 }

my %sent;
sub send_n {
    my ($host, $n, $want) = @_;
    my $ok = 0;
    for (1 .. $n) {
        my $r = $t->get($host);
        $ok++ if $r->{status} == $want;
    }
    is($ok, $n, "$n requests to $host: $want");
}

my ($m0) = scrape();
is(n($m0, 'ngx_tenant_requests_total{tenant="acme",class="2xx"}'), 0, 'nothing counted before traffic');

send_n('acme.localhost', 37, 200);
send_n('admin.acme.localhost', 3, 503);   # acme has no admin endpoint: still acme's
send_n('globex.localhost', 11, 200);
send_n('dead.localhost', 5, 502);
send_n('paused.localhost', 4, 503);
send_n('late.localhost', 6, 200);          # the fifth tenant: series=4, so "_other"
send_n('nobody.localhost', 2, 404);        # no tenant: edge-wide only

my ($m, $raw) = scrape();
is(n($m, 'ngx_tenant_requests_total{tenant="acme",class="2xx"}'), 37, 'acme: 37 2xx');
is(n($m, 'ngx_tenant_requests_total{tenant="acme",class="5xx"}'), 3, 'acme: 3 5xx (its admin host)');
is(n($m, 'ngx_tenant_requests_total{tenant="globex",class="2xx"}'), 11, 'globex: 11 2xx');
is(n($m, 'ngx_tenant_requests_total{tenant="dead",class="5xx"}'), 5, 'dead: 5 5xx');
is(n($m, 'ngx_tenant_requests_total{tenant="dead",class="2xx"}'), 0, 'dead: no 2xx');
is(n($m, 'ngx_tenant_requests_total{tenant="paused",class="5xx"}'), 4, 'paused: 4 503s');
is(n($m, 'ngx_tenant_requests_total{tenant="_other",class="2xx"}'), 6, 'late is past series=4: its 6 200s in _other');
ok(!exists $m->{'ngx_tenant_requests_total{tenant="late",class="2xx"}'}, 'no series of its own for the tenant past series=');
is(n($m, 'ngx_tenant_routed_total{tenant="acme",cache="miss"}') + n($m, 'ngx_tenant_routed_total{tenant="acme",cache="hit"}'),
   40, 'acme: every request has its routing cache status');
ok(n($m, 'ngx_tenant_routed_total{tenant="acme",cache="hit"}') >= 36, 'most of acme\'s hit the cache');
is(n($m, 'ngx_tenant_upstream_response_seconds_count{tenant="acme"}'), 37, 'acme: 37 upstream responses in the histogram');
is(n($m, 'ngx_tenant_upstream_response_seconds_bucket{tenant="acme",le="+Inf"}'), 37, '... +Inf bucket = count');
ok(n($m, 'ngx_tenant_sent_bytes_total{tenant="acme"}') > 37 * 100, 'acme: bytes sent counted');
ok(n($m, 'ngx_tenant_received_bytes_total{tenant="acme"}') > 40 * 30, 'acme: bytes received counted');
is(n($m, 'ngx_tenant_active_requests{tenant="acme"}'), 0, 'acme: none in flight');
is(n($m, 'ngx_tenant_edge_requests_total{cache="negative"}') + n($m, 'ngx_tenant_edge_requests_total{cache="miss"}')
   + n($m, 'ngx_tenant_edge_requests_total{cache="hit"}'), 68, 'edge-wide: all 68 routed requests, the unknown host too');
is(n($m, 'ngx_tenant_traffic_tenants'), 5, 'five tenants in the traffic zone');
ok(n($m, 'ngx_tenant_cache_misses_total') >= 7, 'cache misses counted');
ok(n($m, 'ngx_tenant_cache_hits_total') >= 55, 'cache hits counted');
ok(n($m, 'ngx_tenant_registry_query_seconds_count') >= 7, 'registry look-ups in their histogram');
is(n($m, 'ngx_tenant_registry_errors_total'), 0, 'no registry errors');
is(n($m, 'ngx_tenant_listener_up'), 1, 'the listener is up');
ok(n($m, 'ngx_tenant_listener_connects_total') >= 1, 'listener connects counted');

# propagation lag: the listener's own probes through the registry
my $pm;
ok(Tenant::Test::wait_until(sub { ($pm) = scrape(); n($pm, 'ngx_tenant_propagation_seconds_count') >= 1 }, 20),
   'a propagation probe went through the registry and back');
my $lag = n($pm, 'ngx_tenant_propagation_last_seconds');
ok($lag > 0 && $lag < 1, "its lag: $lag s, above 0 and under 1 on loopback");
ok(n($pm, 'ngx_tenant_propagation_seconds_sum') >= $lag, '... in the histogram\'s sum');
is(n($pm, 'ngx_tenant_propagation_seconds_bucket{le="+Inf"}'), n($pm, 'ngx_tenant_propagation_seconds_count'),
   '... +Inf bucket = count');
ok(n($pm, 'ngx_tenant_propagation_probes_total') >= n($pm, 'ngx_tenant_propagation_seconds_count'),
   'probes sent: at least those that came back');
# sent in 1970, were it timed: the lag would be 56 years
my $host = Tenant::Test::trim(`hostname`);
$t->psql("SELECT pg_notify('tenant_changed', 'probe:another-edge/1/5'),"
         . " pg_notify('tenant_changed', 'probe:$host/1/5')");
sleep 0.3;
my ($pm2) = scrape();
ok(n($pm2, 'ngx_tenant_propagation_last_seconds') < 1
   && n($pm2, 'ngx_tenant_propagation_seconds_bucket{le="1"}') == n($pm2, 'ngx_tenant_propagation_seconds_count'),
   'other edges\' probes (another host, or this host\'s other nginx) are not timed here');
is(n($pm2, 'ngx_tenant_cache_notifications_total'), n($pm, 'ngx_tenant_cache_notifications_total'),
   '... nor counted as a change');
is($raw->{headers}{'content-length'}, length $raw->{body}, 'Content-Length is the body\'s');
like($raw->{headers}{'content-type'}, qr{^text/plain; version=0\.0\.4}, 'Prometheus text format');

# the exposition as Prometheus reads it
Tenant::Test::write_file($t->dir . '/metrics.txt', $raw->{body});
my ($rc, $out) = Tenant::Test::run_cmd('sh', '-c', 'promtool check metrics < ' . $t->dir . '/metrics.txt');
is($rc, 0, 'promtool check metrics: clean') or diag($out);

# kept across a reload
$t->nginx_signal('reload');
Tenant::Test::wait_until(sub {
    my @w = $t->nginx_worker_pids;
    $t->error_log =~ /gracefully shutting down/ && @w == 2;
}, 20);
send_n('acme.localhost', 10, 200);
($m) = scrape();
is(n($m, 'ngx_tenant_requests_total{tenant="acme",class="2xx"}'), 47, 'after a reload: 37 + 10 counted');

# requests held when their worker is killed: active goes back to zero
my @held;
for (1 .. 6) {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $t->{port}) or die;
    print $s "GET / HTTP/1.1\r\nHost: slow.localhost\r\n\r\n";
    push @held, $s;
}
ok(Tenant::Test::wait_until(sub { n(scalar scrape(), 'ngx_tenant_active_requests{tenant="_other"}') == 6 }, 10),
   'six requests of slow (in _other) in flight');
($m) = scrape();
is(n($m, 'ngx_tenant_edge_active_requests'), 6, 'edge-wide: six in flight');
my @before = $t->nginx_worker_pids;
kill 'KILL', @before;
ok(Tenant::Test::wait_until(sub {
    my @now = $t->nginx_worker_pids;
    @now == 2 && !grep { my $p = $_; grep { $_ == $p } @before } @now;
}, 20), 'both workers killed and replaced');
ok(Tenant::Test::wait_until(sub { n(scalar scrape(), 'ngx_tenant_active_requests{tenant="_other"}') == 0 }, 10),
   'the killed workers\' requests are no longer active');
($m) = scrape();
is(n($m, 'ngx_tenant_edge_active_requests'), 0, 'edge-wide: none in flight');
is(n($m, 'ngx_tenant_requests_total{tenant="acme",class="2xx"}'), 47,
   'acme\'s counts survive the killed workers');
like($t->error_log, qr/giving back the requests process \d+ held when it died/, 'the new workers say so');
close $_ for @held;

# a real Prometheus scrapes the edge; its query API answers acme's rate
my $pport = Tenant::Test::free_port();
my $pdir = $t->dir . '/prometheus';
mkdir $pdir;
Tenant::Test::write_file("$pdir/prometheus.yml", <<"YML");
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: edge
    metrics_path: /metrics
    static_configs:
      - targets: ['127.0.0.1:$t->{port}']
YML
my $ppid = fork // die;
if (!$ppid) {
    open STDOUT, '>>', "$pdir/log";
    open STDERR, '>&', \*STDOUT;
    exec 'prometheus', "--config.file=$pdir/prometheus.yml", "--storage.tsdb.path=$pdir/data",
         "--web.listen-address=127.0.0.1:$pport" or die;
}
$t->on_cleanup(sub { kill 'TERM', $ppid; waitpid $ppid, 0 });
$t->wait_port($pport, 30);

sub pquery {
    my ($q) = @_;
    my ($rc, $out) = Tenant::Test::run_cmd('curl', '-sf', '--max-time', '5', '--get',
        '--data-urlencode', "query=$q", "http://127.0.0.1:$pport/api/v1/query");
    return undef if $rc;
    my $j = eval { decode_json($out) } or return undef;
    my $v = $j->{data}{result}[0]{value}[1];
    return $v;
}

# about 20 requests a second to acme for a few scrapes
my $t0 = time;
my $got;
my $sent = 0;
while (time - $t0 < 40) {
    for (1 .. 10) { $t->get('acme.localhost'); $sent++; sleep 0.05 }
    $got = pquery('sum(rate(ngx_tenant_requests_total{tenant="acme",class="2xx"}[5s]))');
    last if defined $got && $got > 5 && time - $t0 > 6;
}
ok(defined $got && $got > 5 && $got < 60, "Prometheus: acme's request rate " . ($got // 'none') . '/s (about 20 sent)');
my $up = pquery(q{up{job="edge"}});
is($up, 1, 'Prometheus: the edge target is up');

# a zone too small for its tenants: the least recently seen go, their
# counts folded into _other, so the sums still add up
$t->psql("INSERT INTO tenants (id, blueprint, status) SELECT 'many' || i, 'static', 'active'"
    . " FROM generate_series(1, 400) i; INSERT INTO tenant_endpoints (tenant_id, role, address, weight)"
    . " SELECT 'many' || i, 'site', '127.0.0.1:$b->{b1}', 1 FROM generate_series(1, 400) i");
my $t3 = Tenant::Test->new->share_pg($t);
$t3->start_nginx(workers => 1, http => Tenant::Conf::http(traffic => 'small:32k series=50'));
my $fine = 0;
for my $round (1, 2) {
    for my $i (1 .. 400) { $fine++ if $t3->get("many$i.localhost")->{status} == 200 }
}
is($fine, 800, '800 requests to 400 tenants through a 32 KB zone');
my $r = $t3->request(host => 'localhost', path => '/metrics');
my $sum = 0;
$sum += $1 while $r->{body} =~ /^ngx_tenant_requests_total\{[^}]*\} (\d+)$/mg;
is($sum, 800, 'the series and _other add up to all 800');
my ($ev) = $r->{body} =~ /^ngx_tenant_traffic_evictions_total (\d+)$/m;
ok($ev > 400, "tenants evicted for room ($ev), each coming back as new");
my ($kept) = $r->{body} =~ /^ngx_tenant_traffic_tenants (\d+)$/m;
ok($kept < 400, "the zone holds $kept at a time");
my $own = () = $r->{body} =~ /^ngx_tenant_active_requests\{tenant="many/mg;
ok($own <= 50, "no more than series=50 series of their own ($own)");

# the same zone under two workers and four clients at once: nodes go and
# are made again for other tenants while workers count themselves in them
# without the lock; every request is still counted once, and none is
# left in flight
my $t5 = Tenant::Test->new->share_pg($t);
$t5->start_nginx(workers => 2, http => Tenant::Conf::http(traffic => 'race:32k series=50'));
my @kids;
for my $k (0 .. 3) {
    my $pid = fork // die;
    if (!$pid) {
        my $bad = 0;
        for my $n (1 .. 500) {
            my $i = 1 + ($n * 7 + $k * 101) % 400;
            $bad++ if $t5->get("many$i.localhost")->{status} != 200;
        }
        POSIX::_exit($bad ? 1 : 0);
    }
    push @kids, $pid;
}
my $kids_ok = 0;
for (@kids) { waitpid $_, 0; $kids_ok++ if $? == 0 }
is($kids_ok, 4, 'two workers, four clients: 2000 requests to 400 tenants, all 200');
$r = $t5->request(host => 'localhost', path => '/metrics');
my $counted = 0;
$counted += $1 while $r->{body} =~ /^ngx_tenant_requests_total\{tenant="(?:many\d+|_other)",class="2xx"\} (\d+)$/mg;
is($counted, 2000, 'each counted once, in its series or _other');
my $inflight = 0;
$inflight += $1 while $r->{body} =~ /^ngx_tenant_active_requests\{[^}]*\} (\d+)$/mg;
is($inflight, 0, 'none left in flight per tenant');
like($r->{body}, qr/^ngx_tenant_edge_active_requests 0$/m, 'nor at the edge');
($ev) = $r->{body} =~ /^ngx_tenant_traffic_evictions_total (\d+)$/m;
ok($ev > 100, "nodes dropped and made again meanwhile ($ev)");
$t5->stop_nginx;

# series follow the busy: a tenant idle for series_idle= gives its series
# to one seen without a series; its counts go on in _other
my $t4 = Tenant::Test->new->share_pg($t);
$t4->start_nginx(workers => 1, http => Tenant::Conf::http(traffic => 'busy:1m series=2 series_idle=1s'));
my $count = sub {
    my ($body, $tenant) = @_;
    my $n = 0;
    $n += $1 while $body =~ /^ngx_tenant_requests_total\{tenant="\Q$tenant\E",class="\dxx"\} (\d+)$/mg;
    return $n;
};
$t4->get("many$_.localhost") for (1) x 3, (2) x 3, (3) x 3;
$r = $t4->request(host => 'localhost', path => '/metrics');
is_deeply([ map { $count->($r->{body}, $_) } qw(many1 many2 many3 _other) ], [ 3, 3, 0, 3 ],
          'series=2: many1 and many2 have theirs, many3 counts in _other');
sleep 1.3;
$t4->get('many2.localhost');   # seen again: many1 is the one idle now
sleep 1.1;                     # many3 is counted at most once a second
$t4->get('many3.localhost') for 1 .. 2;
$r = $t4->request(host => 'localhost', path => '/metrics');
is_deeply([ map { $count->($r->{body}, $_) } qw(many1 many2 many3 _other) ], [ 0, 4, 2, 6 ],
          'many1 idle past series_idle=1s: its series went to many3, its counts to _other');

# a series given on one worker reaches the other at once: a tenant that
# worker remembers as counted in _other (for up to series_idle/6) is counted
# in its new series from the next request on
my $t6 = Tenant::Test->new->share_pg($t);
$t6->start_nginx(workers => 2, http => Tenant::Conf::http(traffic => 'given:1m series=1 series_idle=3s',
                                                          extra => "        add_header X-Worker \$pid always;"));
my %workers;
my $visit = sub { my $r = $t6->get('many2.localhost'); $workers{ $r->{headers}{'x-worker'} // '' }++; $r };
$t6->get('many1.localhost');    # many1 has the series, many2 counts in _other
my $given = Tenant::Test::wait_until(sub {
    $visit->() for 1 .. 2;
    $count->($t6->request(host => 'localhost', path => '/metrics')->{body}, 'many2') > 0;
}, 20, 0.1);
ok($given, 'many1 idle past series_idle=3s: its series went to many2');
$r = $t6->request(host => 'localhost', path => '/metrics');
my ($mine, $rest) = map { $count->($r->{body}, $_) } qw(many2 _other);
$visit->() for 1 .. 30;
$r = $t6->request(host => 'localhost', path => '/metrics');
is_deeply([ map { $count->($r->{body}, $_) } qw(many2 _other) ], [ $mine + 30, $rest ],
          'the next 30 requests all in many2\'s new series, on either worker');
is(scalar(grep { /^\d+$/ } keys %workers), 2, 'both workers served many2');
$t6->stop_nginx;

Tenant::Test::finish(allow => qr/exited on signal 9/);
