package Bench::Acme;

# auto/bench's ACME figures, against Pebble and its mock DNS: N custom
# domains claimed at once and their TXT records published together; each
# timed from its verification (domain_claims.verified_at) to the first
# handshake that gets its certificate from the edge; two provisioners (two
# workers each) SIGKILLed and restarted while the orders run; orders
# counted at the CA (Pebble's log) and in the registry, for the N names and
# for decoys that must never be ordered (claims never proven, jobs queued
# by hand for names nobody has).

use strict;
use warnings;
use IO::Socket::SSL;
use Time::HiRes qw(time sleep);
use Tenant::Test;
use Tenant::Conf;
use Tenant::Tls;

sub pct {
    my ($p, @v) = @_;
    @v = sort { $a <=> $b } @v;
    return $v[ int(($p / 100) * $#v + 0.5) ];
}

# the issuer of what the edge serves for $name, or ''
sub served_issuer {
    my ($port, $name) = @_;
    my $s = IO::Socket::SSL->new(PeerAddr => '127.0.0.1', PeerPort => $port, SSL_hostname => $name,
                                 SSL_verify_mode => SSL_VERIFY_NONE, Timeout => 2) or return '';
    my $issuer = $s->peer_certificate('issuer') // '';
    $s->close(SSL_no_shutdown => 1);
    return $issuer;
}

sub bench {
    my (%o) = @_;
    my $n = $o{domains};
    my $t = Tenant::Test->new->start_pg;
    $t->migrate;
    my $tls = Tenant::Tls->new($t->dir);
    my $default = $tls->leaf('platform-default', ['localhost'], by_root => 1);
    my $key_file = $tls->seal_key_file;
    my $sport = Tenant::Test::free_port();
    $t->start_nginx(backends => ['b1'], log_level => 'notice', http => Tenant::Conf::http(verify_domains => 1,
        ssl => { port => $sport, cert => $default->{cert}, key => $default->{key}, key_file => $key_file }));
    my @tenants = map { sprintf 'shop%02d', $_ } 1 .. 20;
    $t->add_tenant($_, site => ["127.0.0.1:$t->{backend}{b1}"]) for @tenants;

    my $pb = $t->start_pebble(http_port => $t->{port}, tls => $tls);
    my $dns = $t->{mock_dns};
    my @conf = ("dns_resolver = 127.0.0.1:$dns->{dns}", "certificate_key = $key_file",
                "acme_directory = $pb->{directory}", "acme_ca_file = $pb->{ca_file}",
                'acme_orders_per_hour = 100000', 'acme_timeout = 30', 'workers = 2',
                "acme_edges = 127.0.0.1:$t->{port}");
    my @prov = qw(p1 p2);
    $t->start_provisioner(name => $_, extra => \@conf) for @prov;
    $t->{api_key} = $t->create_api_key('bench');

    # the claims, and the decoys: claims never proven, hand-queued jobs
    my (%token, @decoys);
    for my $i (1 .. $n) {
        my $host = "d$i.bench.example";
        my $r = $t->api(POST => "tenants/$tenants[$i % @tenants]/domains", { host => $host });
        die "claim $host: $r->{status} $r->{body}" unless $r->{status} == 202;
        $token{$host} = $r->{json}{domain}{token};
    }
    for my $i (1 .. 20) {
        my $host = "never$i.bench.example";
        $t->api(POST => "tenants/$tenants[$i % @tenants]/domains", { host => $host });
        push @decoys, $host;
    }
    for my $i (1 .. 10) {
        my $host = "nobody$i.bench.example";
        $t->psql("INSERT INTO jobs (tenant_id, kind, payload) VALUES ('shop01', 'certificate',"
                 . " jsonb_build_object('host', '$host'))");
        push @decoys, $host;
    }

    my $t0 = time;
    $t->set_txt("_ngx-tenant.$_", $token{$_}) for sort keys %token;
    my $published = time - $t0;

    # every name until served; the provisioners killed on the way
    my %served;
    my @kill_at = map { $t0 + 1 + 1.5 * $_ } 0 .. $o{kills} - 1;
    my $kills = 0;
    while (keys %served < $n && time - $t0 < 300) {
        for my $host (grep { !$served{$_} } keys %token) {
            $served{$host} = time if served_issuer($sport, $host) =~ /Pebble/;
        }
        if (@kill_at && time >= $kill_at[0]) {
            shift @kill_at;
            my $victim = $prov[$kills++ % @prov];
            $t->stop_provisioner($victim, 'KILL');
            $t->start_provisioner(name => $victim, extra => \@conf);
        }
        sleep 0.05;
    }
    my $all = time - $t0;
    if (keys %served < $n) {
        my $left = join ',', map { "'$_'" } grep { !$served{$_} } keys %token;
        die sprintf("only %d of %d domains were served after 300 s; the others:\n%s\n%s\n%s\n", scalar keys %served, $n,
                    $t->psql("SELECT host, status, last_check FROM domain_claims WHERE host IN ($left)"),
                    $t->psql("SELECT payload->>'host', status, attempts, error FROM jobs WHERE payload->>'host' IN ($left)"),
                    $t->psql("SELECT host, failures, last_error FROM acme_names WHERE host IN ($left)"));
    }

    my %verified = map { split /\|/ } split /\n/,
        $t->psql("SELECT host, extract(epoch FROM verified_at) FROM domain_claims WHERE status = 'verified'");
    my @lat = map { $served{$_} - $verified{$_} } keys %served;
    my $in = join ',', map { "'$_'" } @decoys;
    my %r = (
        domains => $n, published_s => $published, all_served_s => $all, kills => $kills,
        p50_s => pct(50, @lat), p95_s => pct(95, @lat), max_s => pct(100, @lat),
        ca_orders => $t->pebble_orders, ca_issued => $t->pebble_issued,
        registry_orders => $t->psql('SELECT count(*) FROM acme_orders'),
        decoy_orders => $t->psql("SELECT count(*) FROM acme_orders WHERE host IN ($in)"),
        decoys => scalar @decoys,
        retaken => $t->psql("SELECT count(*) FROM jobs WHERE kind = 'certificate' AND attempts > 1"),
        resumed => scalar(() = join('', map { $t->provisioner_log($_) } @prov) =~ /found at the CA, continued/g),
    );
    $t->stop_provisioner($_) for @prov;
    $t->cleanup;
    return \%r;
}

sub report {
    my ($r) = @_;
    return sprintf("- ACME against Pebble, %d custom domains claimed at once, TXT records published in %.1f s: all served %.1f s after publishing; "
                   . "verified -> certificate served p50 %.1f s, p95 %.1f s, max %.1f s (goal p95 <= 10 s)\n",
                   @{$r}{qw(domains published_s all_served_s p50_s p95_s max_s)})
         . sprintf("- ACME, %d provisioner SIGKILLs during the run: orders at the CA %d for %d names (duplicates %d), certificates issued %d, "
                   . "orders in the registry %d; orders for the %d names never registered and verified: %d; jobs taken over after a kill %d; orders found again at the CA after a kill %d\n",
                   $r->{kills}, $r->{ca_orders}, $r->{domains}, $r->{ca_orders} - $r->{domains}, $r->{ca_issued},
                   $r->{registry_orders}, $r->{decoys}, $r->{decoy_orders}, $r->{retaken}, $r->{resumed});
}

1;
