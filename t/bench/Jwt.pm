package Bench::Jwt;

# auto/bench's figures for tenant_jwt: the same load (a random one of N
# tenants a request, each with its own ES256 token) with the check on and
# off, median of 5 alternating rounds; the worker's cycles in the check
# (perf); and, for scale, the check with every token new to the worker
# (tenant_jwt_cache 1 and tokens in turn: one ES256 verification a request).

use strict;
use warnings;
use Time::HiRes qw(time sleep);
use Crypt::JWT qw(encode_jwt);
use Crypt::PK::ECC;
use Tenant::Test;

sub median { my @v = sort { $a <=> $b } @_; return $v[ int($#v / 2) ] }

sub wrk {
    my ($port, $lua, $secs, $conns) = @_;
    my $out = `wrk -t1 -c$conns -d${secs}s -s $lua http://127.0.0.1:$port/ 2>&1`;
    my ($rps) = $out =~ /Requests\/sec:\s+([\d.]+)/;
    die "wrk failed:\n$out" unless $rps;
    my ($non2xx) = $out =~ /Non-2xx or 3xx responses:\s+(\d+)/;
    return { rps => $rps + 0, non2xx => ($non2xx // 0) + 0 };
}

sub conf {
    my (%o) = @_;
    my $jwt = $o{jwt} ? "tenant_jwt on; tenant_jwt_issuer https://id.bench/;" : '';
    my $cache = $o{cache} ? "tenant_jwt_cache $o{cache};" : '';
    return <<"CONF";
    access_log off;
    tenant_registry "%%DB%%";
    tenant_registry_connections 4;
    tenant_cache_zone tenants:16m;
    tenant_cache_ttl 1h;
    tenant_host_pattern "^(?<tenant>[a-z0-9-]+)\\.bench\$";
    $cache
    upstream tenant_backend { tenant_upstream; keepalive 64; }
    server {
        listen 127.0.0.1:%%PORT%%;
        keepalive_requests 1000000;
        location / {
            tenant on;
            $jwt
            proxy_pass http://tenant_backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
CONF
}

sub bench {
    my (%o) = @_;
    my $n = $o{tenants} // 1000;
    my $secs = $o{duration} // 10;
    my %res = (tenants => $n, duration_s => $secs);

    my $t = Tenant::Test->new->start_pg;
    $t->migrate;
    my $dir = $t->dir;

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

    my $key = Crypt::PK::ECC->new;
    $key->generate_key('secp256r1');
    my $der = unpack 'H*', $key->export_key_der('public');
    $t->psql("INSERT INTO jwt_keys (kid, alg, der, source) VALUES ('bench', 'ES256', '\\x$der', 'upload')");

    # one token per tenant, a list in Lua
    my $exp = int(time) + 86400;
    my @tokens = map {
        encode_jwt(payload => { iss => 'https://id.bench/', sub => "user$_", exp => $exp, tenant_id => "shop$_" },
                   key => $key, alg => 'ES256', extra_headers => { kid => 'bench' })
    } 1 .. $n;
    $res{token_bytes} = length $tokens[0];
    my $list = join(",\n", map { "\"$_\"" } @tokens);
    my $lua = sub {
        my ($name, $pick) = @_;
        my $f = "$dir/$name.lua";
        Tenant::Test::write_file($f, "local tokens = {\n$list\n}\nlocal i = 0\n"
            . "math.randomseed(os.time())\nrequest = function()\n  i = i + 1\n  local k = $pick\n"
            . "  return wrk.format('GET', '/', {Host = 'shop' .. k .. '.bench', Authorization = 'Bearer ' .. tokens[k]})\nend\n");
        return $f;
    };
    my $random = $lua->('random', "math.random(1, $n)");
    my $turn = $lua->('turn', "((i - 1) % $n) + 1");

    my $start = sub {
        my (%c) = @_;
        $t->stop_nginx;
        $t->start_nginx(workers => 1, log_level => 'error', http => conf(%c));
        Tenant::Test::wait_until(sub {
            $t->get('shop1.bench', '/', headers => { Authorization => "Bearer $tokens[0]" })->{status} == 200
        }, 10);
        wrk($t->{port}, $turn, 3, 16);    # every tenant cached, every token seen
    };

    my (@on, @off, $bad);
    for my $round (1 .. 5) {
        $start->(jwt => 1);
        my $w = wrk($t->{port}, $random, $secs, 32);
        $bad += $w->{non2xx};
        push @on, $w->{rps};
        $start->();
        push @off, wrk($t->{port}, $random, $secs, 32)->{rps};
    }
    $res{non2xx} = $bad;
    $res{rps_on} = median(@on);
    $res{rps_off} = median(@off);
    $res{spread} = sprintf '%.0f-%.0f on, %.0f-%.0f off', (sort { $a <=> $b } @on)[0, -1],
        (sort { $a <=> $b } @off)[0, -1];
    $res{overhead_pct} = 100 * (1 - $res{rps_on} / $res{rps_off});

    # the worker's own cycles: wrk's req/s swings between runs on 2 cores
    if (`which perf 2>/dev/null`) {
        $start->(jwt => 1);
        my ($w) = $t->nginx_worker_pids;
        my $data = "$dir/perf.data";
        my $pid = fork // die;
        if (!$pid) {
            open STDOUT, '>', '/dev/null';
            open STDERR, '>&', \*STDOUT;
            exec 'perf', 'record', '-o', $data, '-p', $w, '--', 'sleep', $secs - 1 or die;
        }
        wrk($t->{port}, $random, $secs, 32);
        waitpid $pid, 0;
        my $rep = `perf report -i $data --no-children --sort symbol -g none 2>/dev/null`;
        my ($share, $module) = (0, 0);
        $share += $1 while $rep =~ /^\s+([\d.]+)%.*(?:ngx_http_tenant_jwt_\w+|ngx_murmur_hash2)\s*$/mg;
        # the whole module, to show perf resolves its symbols at all
        $module += $1 while $rep =~ /^\s+([\d.]+)%.*\sngx_http_tenant_\w+\s*$/mg;
        $res{perf_share_pct} = $share;
        $res{perf_module_pct} = $module;
    }

    # every request a token the worker has not verified
    $start->(jwt => 1, cache => 1);
    $res{uncached} = wrk($t->{port}, $turn, $secs, 32);

    $be->cleanup;
    $t->cleanup;
    return \%res;
}

sub report {
    my ($r) = @_;
    my $out = sprintf "tenant_jwt, ES256, %d tenants each with its own token (%d bytes), a random one a request:\n",
        $r->{tenants}, $r->{token_bytes};
    $out .= sprintf "- median of 5: %.0f req/s checked, %.0f without the check (%.1f%%; runs %s); %d non-2xx\n",
        @{$r}{qw(rps_on rps_off overhead_pct spread non2xx)};
    $out .= sprintf "- the worker's cycles in the check's own functions (perf): %.2f%% (the whole module: %.1f%%)\n",
        $r->{perf_share_pct}, $r->{perf_module_pct} if defined $r->{perf_share_pct};
    $out .= sprintf "- every token new to the worker (one ES256 verification a request): %.0f req/s\n",
        $r->{uncached}{rps};
    return $out;
}

1;
