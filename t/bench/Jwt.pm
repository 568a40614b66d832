package Bench::Jwt;

# auto/bench's figures for tenant_jwt: the same load (a random one of N
# tenants a request, each with its own ES256 token) with the check on and
# off, median of 5 alternating rounds; the same in instructions per
# request (callgrind: wrk's req/s swings by a fifth between runs on two
# shared cores, instruction counts do not); and, for scale, the check with
# every token new to the worker (tenant_jwt_cache 1: one ES256
# verification a request).

use strict;
use warnings;
use Time::HiRes qw(time sleep);
use Crypt::JWT qw(encode_jwt);
use Crypt::PK::ECC;
use FindBin;
use Tenant::Test;

# the same wrk run and median as the traffic figures
require "$FindBin::Bin/../t/bench/Traffic.pm";
require "$FindBin::Bin/../t/bench/Callgrind.pm";
*median = \&Bench::Traffic::median;
*wrk = \&Bench::Traffic::wrk;

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

# instructions per request, 100 tenants' tokens in turn (each verified
# before the counted requests; until the keys are loaded the check answers
# 503, which ready waits out)
sub callgrind {
    my ($t, $tokens, %c) = @_;
    my $req = sub {
        my $k = 1 + ($_[0] % 100);
        return "GET / HTTP/1.1\r\nHost: shop$k.bench\r\nAuthorization: Bearer $tokens->[$k - 1]\r\n\r\n";
    };
    return Bench::Callgrind::per_request(
        dir => $t->dir, name => join('-', map { "$_$c{$_}" } sort keys %c) || 'off',
        db => $t->conninfo, http => conf(%c), request => $req,
        ready => sub {
            `curl -s -o /dev/null -w '%{http_code}' -H 'Host: shop1.bench' -H 'Authorization: Bearer $tokens->[0]' http://127.0.0.1:$_[0]/` eq '200'
        });
}

sub bench {
    my (%o) = @_;
    my $n = $o{tenants} // 1000;
    my $secs = $o{duration} // 10;
    my %res = (tenants => $n, duration_s => $secs);

    my ($t, $be) = Bench::Traffic::stack($n);
    my $dir = $t->dir;

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

    $res{ir_off} = callgrind($t, \@tokens);
    $res{ir_on} = callgrind($t, \@tokens, jwt => 1);
    $res{ir_uncached} = callgrind($t, \@tokens, jwt => 1, cache => 1);
    $res{ir_pct} = 100 * ($res{ir_on} / $res{ir_off} - 1);

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
    $out .= sprintf "- instructions per request (callgrind): %d checked, %d without (%+.1f%%); every token new to the worker: %d\n",
        @{$r}{qw(ir_on ir_off ir_pct ir_uncached)};
    $out .= sprintf "- every token new to the worker (one ES256 verification a request): %.0f req/s\n",
        $r->{uncached}{rps};
    return $out;
}

1;
