package Bench::Tls;

# auto/bench's TLS figures: full handshakes per second with N certificates
# in the registry and random SNI, against stock nginx serving one static
# certificate (the limit); registry queries per handshake; commit ->
# served; start-up and shared memory with many certificates.

use strict;
use warnings;
use IO::Socket::SSL;
use Time::HiRes qw(time sleep);
use Tenant::Test;

my $TOP = $Tenant::Test::TOP;
my $BIN = "$Tenant::Test::BUILD/tls_bench";

sub build {
    my ($rc, $out) = Tenant::Test::run_cmd('cc', '-O2', '-Wall', "-I$TOP/common", '-o', $BIN,
        "$TOP/t/bench/tls_bench.c", "$TOP/common/tenant_seal.c", '-lssl', '-lcrypto');
    die "tls_bench: $out" if $rc;
}

sub run { my ($rc, $out) = Tenant::Test::run_cmd(@_); die "@_: $out" if $rc; $out }

# a CA, the default certificate, the sealing key, in $dir
sub material {
    my ($dir) = @_;
    run('openssl', qw(req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30),
        '-subj', '/CN=Bench CA', '-keyout', "$dir/ca.key", '-out', "$dir/ca.crt",
        '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign');
    run('openssl', qw(req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30),
        '-subj', '/CN=default', '-keyout', "$dir/default.key", '-out', "$dir/default.crt");
    Tenant::Test::write_file("$dir/cert-key", join('', map { sprintf '%02x', int rand 256 } 1 .. 32) . "\n");
    chmod 0600, "$dir/cert-key";
}

sub load_rows {
    my ($p, $n, $file) = @_;
    my $dir = $p->dir;
    my $t0 = time;
    run($BIN, 'gen', $n, "$dir/ca.crt", "$dir/ca.key", "$dir/cert-key", $file);
    my $gen = time - $t0;
    run('psql', '-X', '-q', '-d', $p->conninfo, '-c',
        "\\copy certificates (host, chain, key_nonce, key_sealed, names, issuer, key_type,"
        . " not_before, not_after, source) FROM '$file'");
    return $gen;
}

# the TLS server on $port; with the module, the cache API on the instance's
# own (plain) port for its stats
sub nginx_conf {
    my ($dir, $port, $module, $cache) = @_;
    my $http = $module ? <<"M" : '';
    tenant_registry "%%DB%%";
    tenant_registry_connections 2;
    tenant_cache_zone tenants:1m;
    tenant_ssl_zone certs:${\($module)} key_file=$dir/cert-key cache=$cache;
M
    my $on = $module ? 'tenant_ssl on;' : '';
    return $http . <<"C";
    access_log off;
    server {
        listen 127.0.0.1:$port ssl;
        ssl_certificate $dir/default.crt;
        ssl_certificate_key $dir/default.key;
        ssl_session_cache off;
        ssl_session_tickets off;
        $on
        location / { return 200 "ok\\n"; }
    }
    server { listen 127.0.0.1:%%PORT%%; ${\($module ? 'location /tenant-cache/ { tenant_cache_api %%DIR%%/cache-api-token; }' : '')} }
C
}

sub stats {
    my ($inst) = @_;
    return $inst->cache_api(GET => 'stats')->{json}{certificates} || {};
}

sub handshakes {
    my ($port, $secs, $n) = @_;
    my $out = run($BIN, 'hs', $port, $secs, 2, $n);
    my ($h, $e) = $out =~ /handshakes (\d+) errors (\d+)/ or die "tls_bench hs: $out";
    return { rate => $h / $secs, errors => $e };
}

sub rss_kb {
    my ($inst) = @_;
    my ($w) = $inst->nginx_worker_pids;
    return 0 unless $w;
    my ($kb) = Tenant::Test::slurp("/proc/$w/status") =~ /VmRSS:\s+(\d+)/;
    return $kb;
}

# everything: returns the figures
sub bench {
    my (%o) = @_;
    my $n = $o{certs} // 10000;
    my $secs = $o{duration} // 10;
    my %r;
    build();

    # A: the module, n certificates
    my $p = Tenant::Test->new->start_pg;
    $p->migrate;
    my $dir = $p->dir;
    material($dir);
    $r{gen_s} = load_rows($p, $n, "$dir/rows");
    my $port = Tenant::Test::free_port();
    my $t0 = time;
    $p->start_nginx(workers => 1, log_level => 'error',
                    http => nginx_conf($dir, $port, '64m', $o{cache} // $n));
    Tenant::Test::wait_until(sub { (stats($p)->{count} // 0) >= $n }, 120, 0.05)
        or die "the certificates did not load\n";
    $r{load_s} = time - $t0;
    my $st = stats($p);
    $r{bytes_per_cert} = $st->{zone_used} / $n;
    $r{entry_bytes_per_cert} = $st->{bytes} / $n;

    # steady state: every name parsed once by the worker
    run($BIN, 'warm', $port, $n);
    $r{warm_parsed} = stats($p)->{parsed_by_worker};

    # B: stock nginx, the one static certificate (the module is loaded,
    # unused: no tenant_ssl, no certificate callback). A and B run in
    # turns, a few seconds each, so a busy machine slows both alike.
    my $b = Tenant::Test->new;
    my $bport = Tenant::Test::free_port();
    material($b->dir);
    $b->start_nginx(workers => 1, log_level => 'error',
                    http => nginx_conf($b->dir, $bport, undef));
    handshakes($bport, 1, $n);

    $p->reset_query_stats;
    my ($ah, $bh, $ae, $be) = (0, 0, 0, 0);
    my $rounds = $secs >= 6 ? int($secs / 2) : 3;
    for (1 .. $rounds) {
        my $a = handshakes($port, 2, $n);
        my $bb = handshakes($bport, 2, $n);
        $ah += $a->{rate} * 2;
        $ae += $a->{errors};
        $bh += $bb->{rate} * 2;
        $be += $bb->{errors};
    }
    $b->cleanup;
    $r{module_rate} = $ah / (2 * $rounds);
    $r{stock_rate} = $bh / (2 * $rounds);
    $r{module_errors} = $ae;
    $r{stock_errors} = $be;
    $r{ratio_pct} = 100 * $r{module_rate} / ($r{stock_rate} || 1);
    $r{queries} = $p->psql("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements"
                         . " WHERE query LIKE '%certificates%' AND query NOT LIKE '%pg_stat%'");
    $r{worker_rss_kb} = rss_kb($p);
    $r{parsed} = stats($p)->{parsed_by_worker};

    # commit -> served, on one host, through the registry's notification
    run($BIN, 'gen', 1, "$dir/ca.crt", "$dir/ca.key", "$dir/cert-key", "$dir/alt");
    $p->psql("CREATE TABLE alt (LIKE certificates INCLUDING DEFAULTS)");
    run('psql', '-X', '-q', '-d', $p->conninfo, '-c',
        "\\copy alt (host, chain, key_nonce, key_sealed, names, issuer, key_type, not_before, not_after, source) FROM '$dir/alt'");
    $p->psql("INSERT INTO alt SELECT * FROM certificates WHERE host = 'bench1.tls'");
    my $dbh = $p->dbh;
    my @d;
    for my $i (1 .. ($o{changes} // 30)) {
        # a watcher with the current certificate, then the other of the two
        # certificates for the host committed
        open my $w, '-|', $BIN, 'watch', $port, 'bench1.tls' or die "watch: $!";
        my $ready = <$w>;
        die "tls_bench watch did not start\n" unless $ready && $ready =~ /ready/;
        $dbh->do("UPDATE certificates c SET chain = a.chain, key_nonce = a.key_nonce,"
               . " key_sealed = a.key_sealed FROM (SELECT * FROM alt WHERE chain <>"
               . " (SELECT chain FROM certificates WHERE host = 'bench1.tls') LIMIT 1) a"
               . " WHERE c.host = 'bench1.tls'");
        my $t1 = time;
        my $seen = <$w>;
        close $w;
        push @d, ($seen - $t1) * 1000;
    }
    $r{propagation_p50_ms} = Tenant::Test::percentile(50, @d);
    $r{propagation_p99_ms} = Tenant::Test::percentile(99, @d);
    $p->cleanup;

    # many certificates: start-up and memory
    if (my $big = $o{many}) {
        my $q = Tenant::Test->new->start_pg;
        $q->migrate;
        my $qd = $q->dir;
        material($qd);
        $r{many_gen_s} = load_rows($q, $big, "$qd/rows");
        my $qport = Tenant::Test::free_port();
        my $t2 = time;
        $q->start_nginx(workers => 1, log_level => 'error',
                        http => nginx_conf($qd, $qport, '512m', 1000));
        Tenant::Test::wait_until(sub { handshakes_once($qport) }, 30, 0.01);
        $r{many_serving_s} = time - $t2;
        Tenant::Test::wait_until(sub { (stats($q)->{count} // 0) >= $big }, 300, 0.1)
            or die "$big certificates did not load\n";
        $r{many_loaded_s} = time - $t2;
        my $qs = stats($q);
        $r{many} = $big;
        $r{many_bytes_per_cert} = $qs->{zone_used} / $big;
        $r{many_rss_kb} = rss_kb($q);
        $q->cleanup;
    }
    return \%r;
}

sub handshakes_once {
    my ($port) = @_;
    my $s = IO::Socket::SSL->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                 SSL_hostname => 'bench1.tls', SSL_verify_mode => SSL_VERIFY_NONE,
                                 Timeout => 2);
    return $s ? 1 : 0;
}


1;
