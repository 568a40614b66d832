package Bench::Fanout;

# auto/bench's figures for one registry shared by many edges: N
# connections LISTENing on tenant_changed, as N nginx instances' listeners
# do (one per instance, whatever its worker count), and a change committed
# 50 times: how long the committing statement took, and how long until
# every listener had the notification (p50, p99, max over all N x 50
# deliveries). PostgreSQL delivers NOTIFY only on the primary, one queue
# for all, so this is the cost a platform's edges add to each change.

use strict;
use warnings;
use DBI;
use IO::Select;
use Time::HiRes qw(time sleep);
use Tenant::Test;

sub pct {
    my ($p, @v) = @_;
    @v = sort { $a <=> $b } @v;
    return $v[ int($p / 100 * $#v + 0.5) ];
}

sub bench {
    my (%o) = @_;
    my @sizes = @{ $o{listeners} || [1, 10, 100, 150] };
    my $changes = $o{changes} // 50;
    my $t = Tenant::Test->new->start_pg;
    $t->migrate;
    my $dsn = "dbi:Pg:dbname=tenant;host=127.0.0.1;port=$t->{pgport}";
    my $sender = DBI->connect($dsn, 'postgres', '', { AutoCommit => 1, RaiseError => 1 });
    my %res;

    for my $n (@sizes) {
        my @l = map {
            my $d = DBI->connect($dsn, 'postgres', '', { AutoCommit => 1, RaiseError => 1 });
            $d->do('LISTEN tenant_changed');
            $d
        } 1 .. $n;
        my %by_fd = map { ($_->{pg_socket} => $_) } @l;
        my $sel = IO::Select->new(map { $_->{pg_socket} } @l);
        my (@lat, @commit);
        for my $i (1 .. $changes) {
            my $t0 = time;
            $sender->do("SELECT pg_notify('tenant_changed', ?)", undef, "bench$i");
            push @commit, 1000 * (time - $t0);
            my %got;
            my $deadline = time + 10;
            while (keys %got < $n && time < $deadline) {
                for my $fd ($sel->can_read(1)) {
                    my $d = $by_fd{$fd} // next;
                    while (my $note = $d->pg_notifies) {
                        next unless $note->[2] eq "bench$i";
                        $got{"$d"} //= 1000 * (time - $t0);
                    }
                }
            }
            die "fanout: $n listeners, change $i reached " . scalar(keys %got) . "\n" if keys %got < $n;
            push @lat, values %got;
        }
        # what each listening backend costs the server: its private memory
        my @pids = split ' ', $t->psql("SELECT string_agg(pid::text, ' ') FROM pg_stat_activity"
                                       . " WHERE query = 'LISTEN tenant_changed'");
        my $kb = 0;
        for my $pid (@pids) {
            my $r = Tenant::Test::slurp("/proc/$pid/smaps_rollup");
            $kb += $1 while $r =~ /^Private_(?:Clean|Dirty):\s+(\d+) kB/mg;
        }
        $res{$n}{backend_private_kb} = @pids ? $kb / @pids : 0;
        $res{$n} = { %{ $res{$n} }, commit_p50_ms => pct(50, @commit), commit_p99_ms => pct(99, @commit),
                     p50_ms => pct(50, @lat), p99_ms => pct(99, @lat), max_ms => pct(100, @lat),
                     deliveries => scalar @lat };
        $_->disconnect for @l;
    }
    $sender->disconnect;
    $t->cleanup;
    return \%res;
}

sub report {
    my ($r) = @_;
    my $out = "one registry, N listeners (one per nginx instance), 50 changes each:\n";
    for my $n (sort { $a <=> $b } keys %$r) {
        my $x = $r->{$n};
        $out .= sprintf "- %d listeners: the change's statement p50 %.2f ms, p99 %.2f ms; every listener had it: p50 %.2f ms, p99 %.2f ms, max %.2f ms (%d deliveries); %.0f kB private memory a listening backend\n",
            $n, @{$x}{qw(commit_p50_ms commit_p99_ms p50_ms p99_ms max_ms deliveries backend_private_kb)};
    }
    return $out;
}

1;
