package Bench::Dashboard;

# auto/bench's figures for the dashboard's own API at a million tenants:
# the tenant list's pages (first, deep, by name prefix, by a rare status),
# the platform page's counts, and a sign-in (yescrypt in the thread pool).
# Each figure is the median of 20 requests, timed at the client.

use strict;
use warnings;
use Time::HiRes qw(time);
use Tenant::Test;
use Tenant::Conf;

sub median {
    my @v = sort { $a <=> $b } @_;
    return $v[ int($#v / 2) ];
}

sub bench {
    my (%o) = @_;
    my $n = $o{tenants} // 1000000;
    my $t = Tenant::Test->new->start_pg;
    $t->migrate;
    $t->start_nginx(workers => 1, log_level => 'error', http => Tenant::Conf::http());
    my $t0 = time;
    $t->psql("INSERT INTO tenants (id, blueprint, status)"
        . " SELECT 'shop' || i, 'static', CASE WHEN i % 100000 = 0 THEN 'failed' ELSE 'active' END"
        . " FROM generate_series(1, $n) i; ANALYZE tenants");
    my %res = (tenants => $n, load_s => time - $t0);
    $t->{api_key} = $t->create_api_key('bench');
    my $pw = 'bench operator password';
    Tenant::Test::run_cmd('sh', '-c', "printf '%s\\n' '$pw' | "
        . join(' ', map { Tenant::Test::shell_quote($_) } $Tenant::Test::PROVISIONER, '--db', $t->conninfo,
               'users', 'add', 'bench'));

    my $timed = sub {
        my ($path, $check) = @_;
        my @ms;
        for (1 .. 20) {
            my $r = $t->api(GET => $path);
            die "GET $path: $r->{status} $r->{body}" unless $r->{status} == 200 && $check->($r->{json});
            push @ms, 1000 * $r->{time};
        }
        return median(@ms);
    };
    my $page = sub { scalar @{ $_[0]{tenants} } };
    $res{first} = $timed->('tenants?limit=25', sub { $page->(@_) == 25 });
    $res{deep} = $timed->('tenants?limit=25&after=shop900000', sub { $page->(@_) == 25 });
    $res{prefix} = $timed->('tenants?limit=25&prefix=shop77777', sub { $page->(@_) == 11 });
    $res{status} = $timed->('tenants?limit=25&status=failed', sub { $page->(@_) == 10 });
    $res{platform} = $timed->('platform', sub { $_[0]{tenants}{active} == $n - 10 });
    my @ms;
    for (1 .. 5) {
        my $r = $t->api(POST => 'session', { user => 'bench', password => $pw }, nokey => 1);
        die "sign-in: $r->{status}" unless $r->{status} == 200;
        push @ms, 1000 * $r->{time};
    }
    $res{signin} = median(@ms);
    $t->cleanup;
    return \%res;
}

sub report {
    my ($r) = @_;
    return sprintf "dashboard API, %d tenants (loaded in %.0f s), median of 20 requests:\n"
        . "- tenant list, first page of 25: %.1f ms; after shop900000: %.1f ms\n"
        . "- by name prefix (shop77777: 11 tenants): %.1f ms; by status (10 failed): %.1f ms\n"
        . "- GET platform (tenants and jobs counted by status): %.1f ms\n"
        . "- sign-in (yescrypt in the thread pool), median of 5: %.1f ms\n",
        @{$r}{qw(tenants load_s first deep prefix status platform signin)};
}

1;
