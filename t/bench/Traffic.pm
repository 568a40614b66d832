package Bench::Traffic;

# auto/bench's figures for per-tenant traffic (tenant_traffic_zone,
# tenant_metrics): with N tenants all seen, what a scrape costs (time and
# size, at series=1000 and series=N); what counting costs in throughput
# (the same load with and without the zone, in req/s and in instructions
# per request); a tenant flooded at 50x its
# rate limit beside the others (their p99 without and with the flood) and
# how close its admitted requests come to the limit; every tenant with a
# monthly quota, synced to the registry every 10 s: what the syncs cost,
# whether the registry's sum matches what was served, and the edge's
# measured propagation lag.

use strict;
use warnings;
use POSIX ();
use Time::HiRes qw(time sleep);
use Tenant::Test;

sub median {
    my @v = sort { $a <=> $b } @_;
    return $v[ int($#v / 2) ];
}

sub to_ms {
    my ($v, $unit) = @_;
    return $v / 1000 if $unit eq 'us';
    return $v if $unit eq 'ms';
    return $v * 1000;
}

sub wrk {
    my ($port, $lua, $secs, $conns, @args) = @_;
    my $out = `wrk -t1 -c$conns -d${secs}s --latency -s $lua http://127.0.0.1:$port/ -- @args 2>&1`;
    my ($rps) = $out =~ /Requests\/sec:\s+([\d.]+)/;
    die "wrk failed:\n$out" unless $rps;
    my %p;
    while ($out =~ /^\s+(50|90|99)%\s+([\d.]+)(us|ms|s)\s*$/mg) {
        $p{$1} = to_ms($2, $3);
    }
    my ($non2xx) = $out =~ /Non-2xx or 3xx responses:\s+(\d+)/;
    my ($reqs) = $out =~ /^\s*(\d+) requests in/m;
    return { rps => $rps + 0, p50_ms => $p{50}, p99_ms => $p{99}, non2xx => ($non2xx // 0) + 0,
             requests => ($reqs // 0) + 0 };
}

sub conf {
    my (%o) = @_;
    my $sync = $o{sync} ? " sync=$o{sync}" : '';
    my $traffic = $o{series} ? "tenant_traffic_zone traffic$o{series}:16m series=$o{series}$sync;" : '';
    return <<"CONF";
    access_log off;
    tenant_registry "%%DB%%";
    tenant_registry_connections 4;
    tenant_cache_zone tenants:16m;
    tenant_cache_ttl 1h;
    tenant_host_pattern "^(?<tenant>[a-z0-9-]+)\\.bench\$";
    $traffic
    upstream tenant_backend { tenant_upstream; keepalive 64; }
    server {
        listen 127.0.0.1:%%PORT%%;
        keepalive_requests 1000000;
        location / {
            tenant on;
            proxy_pass http://tenant_backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
        location = /metrics { tenant_metrics; }
    }
CONF
}

# a registry with n tenants shop1..shopN, all routed to one backend that
# answers "ok": the registry's instance and the backend's
sub stack {
    my ($n) = @_;
    my $t = Tenant::Test->new->start_pg;
    $t->migrate;

    my $be = Tenant::Test->new;
    $be->{port} = Tenant::Test::free_port();
    $be->start_nginx(workers => 1, log_level => 'error', http => <<"CONF");
    access_log off;
    keepalive_requests 1000000;
    server { listen 127.0.0.1:$be->{port}; location / { return 200 "ok\\n"; } }
CONF
    $t->psql("INSERT INTO tenants (id, blueprint, status)"
        . " SELECT 'shop' || i, 'static', 'active' FROM generate_series(1, $n) i;"
        . " INSERT INTO tenant_endpoints (tenant_id, role, address, weight)"
        . " SELECT 'shop' || i, 'site', '127.0.0.1:$be->{port}', 1 FROM generate_series(1, $n) i;");
    return ($t, $be);
}

sub bench {
    my (%o) = @_;
    my $n = $o{tenants} // 10000;
    my $secs = $o{duration} // 10;
    my %res = (tenants => $n, duration_s => $secs);

    my ($t, $be) = stack($n);
    my $dir = $t->dir;

    # every tenant in turn (so all N are seen), or a random one of 2..N
    my $all = "$dir/all.lua";
    Tenant::Test::write_file($all, "local i = 0\nrequest = function()\n  i = i + 1\n"
        . "  return wrk.format('GET', '/', {Host = 'shop' .. (((i - 1) % $n) + 1) .. '.bench'})\nend\n");
    my $others = "$dir/others.lua";
    Tenant::Test::write_file($others, "math.randomseed(os.time())\nrequest = function()\n"
        . "  return wrk.format('GET', '/', {Host = 'shop' .. math.random(2, $n) .. '.bench'})\nend\n");
    # shop1 alone, each connection pausing 1 ms between requests
    my $flood = "$dir/flood.lua";
    Tenant::Test::write_file($flood, "request = function()\n"
        . "  return wrk.format('GET', '/', {Host = 'shop1.bench'})\nend\n"
        . "delay = function() return 1 end\n");

    my $metric = sub {
        my ($key) = @_;
        my $m = `curl -s http://127.0.0.1:$t->{port}/metrics`;
        return $m =~ /^\Q$key\E (\S+)$/m ? $1 : 0;
    };
    my $start = sub {
        my (%c) = @_;
        $t->stop_nginx;
        $t->start_nginx(workers => 1, log_level => 'error', http => conf(%c));
        # shop1 (the one flooded) first, so it has a series of its own:
        # series go to the first tenants seen
        Tenant::Test::wait_until(sub { $t->get('shop1.bench')->{status} == 200 }, 10);
        # warm: every tenant cached and (with the zone) seen
        for (1 .. 10) {
            wrk($t->{port}, $all, 3, 16);
            last if !$c{series} || $metric->('ngx_tenant_traffic_tenants') >= $n;
        }
    };
    my $scrape = sub {
        my @runs;
        for (1 .. 5) {
            my $out = `curl -s -o /dev/null -w '%{time_total} %{size_download}' http://127.0.0.1:$t->{port}/metrics`;
            my ($s, $bytes) = split ' ', $out;
            push @runs, [ $s * 1000, $bytes ];
        }
        my ($ms) = median(map { $_->[0] } @runs);
        return { ms => $ms, bytes => $runs[-1][1] };
    };

    # --- a scrape, all N tenants seen -----------------------------------------
    for my $series (1000, $n) {
        $start->(series => $series);
        my $body = `curl -s http://127.0.0.1:$t->{port}/metrics`;
        my $s = $scrape->();
        $res{scrape}{$series} = { %$s, series => scalar(() = $body =~ /^ngx_tenant_active_requests\{/mg) };
    }

    # --- what counting costs -----------------------------------------------------
    # wrk's req/s here swings by 2x from run to run (wrk, the worker and the
    # backend share two cores), so the cost is also taken from the worker's
    # own cycles: perf's share of them in the traffic zone's functions
    my (@with, @without);
    for my $round (1 .. 5) {
        $start->(series => 1000);
        push @with, wrk($t->{port}, $others, $secs, 32)->{rps};
        $start->();
        push @without, wrk($t->{port}, $others, $secs, 32)->{rps};
    }
    $res{rps_with} = median(@with);
    $res{rps_without} = median(@without);
    $res{rps_spread} = sprintf '%.0f-%.0f with, %.0f-%.0f without',
        (sort { $a <=> $b } @with)[0, -1], (sort { $a <=> $b } @without)[0, -1];
    $res{overhead_pct} = 100 * (1 - $res{rps_with} / $res{rps_without});
    if (`which perf 2>/dev/null`) {
        $start->(series => 1000);
        my ($w) = $t->nginx_worker_pids;
        my $data = "$dir/perf.data";
        my $pid = fork // die;
        if (!$pid) {
            open STDOUT, '>', '/dev/null';
            open STDERR, '>&', \*STDOUT;
            exec 'perf', 'record', '-o', $data, '-p', $w, '--', 'sleep', $secs - 1 or die;
        }
        wrk($t->{port}, $others, $secs, 32);
        waitpid $pid, 0;
        my $rep = `perf report -i $data --no-children --sort symbol -g none 2>/dev/null`;
        my $share = 0;
        $share += $1 while $rep =~ /^\s+([\d.]+)%.*ngx_http_tenant_traffic_\w+/mg;
        $res{perf_share_pct} = $share;
    }

    # the same in instructions per request, which do not swing
    require "$Tenant::Test::TOP/t/bench/Callgrind.pm";
    my $req = sub { "GET / HTTP/1.1\r\nHost: shop" . (1 + ($_[0] % 100)) . ".bench\r\n\r\n" };
    for my $with (1, 0) {
        $res{$with ? 'ir_with' : 'ir_without'} = Bench::Callgrind::per_request(
            dir => $dir, name => $with ? 'counted' : 'plain', db => $t->conninfo,
            http => conf($with ? (series => 1000) : ()), request => $req);
    }
    $res{ir_pct} = 100 * ($res{ir_with} / $res{ir_without} - 1);

    # --- shop1 flooded at 50x its limit ------------------------------------------
    my $rate = 70;
    $start->(series => 1000);
    # the burst left to its default, one second of the rate: the bucket is
    # full (the tenant idle) when the flood starts
    $t->psql("UPDATE tenants SET rate_limit = $rate WHERE id = 'shop1'");
    sleep 1;
    $res{quiet_alone} = wrk($t->{port}, $others, $secs, 8);
    my $admitted = sub { $metric->('ngx_tenant_requests_total{tenant="shop1",class="2xx"}') };
    my $before = $admitted->();
    my $pid = fork // die;
    if (!$pid) {
        my $w = wrk($t->{port}, $flood, $secs, 6);
        Tenant::Test::write_file("$dir/flood.out", "$w->{rps} $w->{non2xx} $w->{requests}\n");
        POSIX::_exit(0);
    }
    my $t0 = time;
    $res{quiet_flood} = wrk($t->{port}, $others, $secs, 8);
    waitpid $pid, 0;
    my $elapsed = time - $t0;
    my ($frps, $fnon, $freqs) = split ' ', Tenant::Test::slurp("$dir/flood.out");
    $res{flood} = { rps => $frps + 0, refused => $fnon + 0, rate => $rate,
                    admitted => $freqs - $fnon, counted => $admitted->() - $before, seconds => $secs };
    $res{flood}{expected} = $rate * $secs + $rate;
    $res{flood}{error_pct} = 100 * ($res{flood}{admitted} - $res{flood}{expected}) / $res{flood}{expected};
    $res{p99_increase_pct} = 100 * ($res{quiet_flood}{p99_ms} / $res{quiet_alone}{p99_ms} - 1);

    # --- every tenant with a monthly quota, synced every 10 s --------------------
    $t->psql("UPDATE tenants SET rate_limit = NULL");
    $start->(series => 1000);
    my @plain = map { wrk($t->{port}, $others, $secs, 32)->{rps} } 1 .. 3;
    $t->psql("UPDATE tenants SET monthly_requests = 1000000000000");
    $start->(series => 1000, sync => '10s');
    my $used = sub { $t->psql("SELECT coalesce(sum(requests), 0) FROM tenant_usage") };
    Tenant::Test::wait_until(sub { my $u = $used->(); sleep 11; $u == $used->() }, 30);
    my $u0 = $used->();
    my $s0 = $metric->('ngx_tenant_quota_syncs_total');
    my @quota = map { wrk($t->{port}, $others, $secs, 32) } 1 .. 3;
    Tenant::Test::wait_until(sub { my $u = $used->(); sleep 11; $u == $used->() }, 30);
    my $served = 0;
    $served += $_->{requests} for @quota;
    $res{quota} = { rps => median(map { $_->{rps} } @quota), rps_plain => median(@plain),
                    served => $served, registry => $used->() - $u0,
                    syncs => $metric->('ngx_tenant_quota_syncs_total') - $s0,
                    errors => $metric->('ngx_tenant_quota_sync_errors_total'),
                    tenants => $t->psql("SELECT count(*) FROM tenant_usage") };
    $res{quota}{cost_pct} = 100 * (1 - $res{quota}{rps} / $res{quota}{rps_plain});
    # one sync's statement, 1000 tenants, timed in the registry
    my $ids = join ',', map { "shop$_" } 1 .. 1000;
    my $ones = join ',', (1) x 1000;
    my $month = $t->psql("SELECT ((extract(year FROM now() AT TIME ZONE 'UTC') - 1970) * 12"
                         . " + extract(month FROM now() AT TIME ZONE 'UTC') - 1)::int");
    my $months = join ',', ($month) x 1000;
    my @ms = map {
        $t->psql("WITH a AS MATERIALIZED (SELECT clock_timestamp() AS t0),"
                 . " b AS MATERIALIZED (SELECT count(*) FROM a,"
                 . " tenant_usage_add('{$ids}', '{$months}', '{$ones}', '{$ones}'))"
                 . " SELECT 1000 * extract(epoch FROM clock_timestamp() - a.t0) FROM a, b")
    } 1 .. 5;
    $res{quota}{statement_ms} = median(@ms);
    my $pm = `curl -s http://127.0.0.1:$t->{port}/metrics`;
    my ($psum) = $pm =~ /^ngx_tenant_propagation_seconds_sum (\S+)$/m;
    my ($pcount) = $pm =~ /^ngx_tenant_propagation_seconds_count (\S+)$/m;
    $res{propagation} = { probes => $pcount // 0,
                          mean_ms => $pcount ? 1000 * $psum / $pcount : undef };

    $t->cleanup;
    $be->cleanup;
    return \%res;
}

sub report {
    my ($r) = @_;
    my $out = sprintf "per-tenant traffic, %d tenants all seen:\n", $r->{tenants};
    for my $s (sort { $a <=> $b } keys %{ $r->{scrape} }) {
        my $x = $r->{scrape}{$s};
        $out .= sprintf "- scrape at series=%d (%d series): %.1f ms, %.2f MB\n",
            $s, $x->{series}, $x->{ms}, $x->{bytes} / 1048576;
    }
    $out .= sprintf "- throughput, a random tenant a request, median of 5: %.0f req/s counted, %.0f without the zone (%.1f%%; runs %s)\n",
        @{$r}{qw(rps_with rps_without overhead_pct rps_spread)};
    $out .= sprintf "- the worker's cycles in the traffic zone's functions (perf): %.1f%%\n", $r->{perf_share_pct}
        if defined $r->{perf_share_pct};
    $out .= sprintf "- instructions per request (callgrind, 100 tenants in turn): %d counted, %d without the zone (%+.1f%%)\n",
        @{$r}{qw(ir_with ir_without ir_pct)};
    $out .= sprintf "- shop1 limited to %d/s (burst: its default, one second), flooded at %.0f req/s (%.0fx) for %d s: %d admitted (%d counted in /metrics), %d expected (%+.1f%%)\n",
        $r->{flood}{rate}, $r->{flood}{rps}, $r->{flood}{rps} / $r->{flood}{rate}, $r->{flood}{seconds},
        $r->{flood}{admitted}, $r->{flood}{counted}, $r->{flood}{expected}, $r->{flood}{error_pct};
    $out .= sprintf "- the other tenants (wrk -c8): p99 %.2f ms alone, %.2f ms beside the flood (%+.1f%%); %.0f vs %.0f req/s\n",
        $r->{quiet_alone}{p99_ms}, $r->{quiet_flood}{p99_ms}, $r->{p99_increase_pct},
        $r->{quiet_alone}{rps}, $r->{quiet_flood}{rps};
    my $q = $r->{quota};
    $out .= sprintf "- every tenant with a monthly quota, sync=10s (the default): %.0f req/s vs %.0f without quotas (%.1f%%); %d requests served, %d in the registry (%d tenants) after %d syncs, %d failed; one 1000-tenant tenant_usage_add in the registry: %.1f ms\n",
        $q->{rps}, $q->{rps_plain}, $q->{cost_pct}, $q->{served}, $q->{registry}, $q->{tenants},
        $q->{syncs}, $q->{errors}, $q->{statement_ms};
    $out .= sprintf "- propagation probes: %d, mean %.2f ms\n", $r->{propagation}{probes}, $r->{propagation}{mean_ms}
        if $r->{propagation}{mean_ms};
    return $out;
}

1;
