package Bench::Swarm;

# auto/bench's figure for the swarm driver against the docker driver: one
# dockerd (its own socket, vfs) that is also a one-node swarm manager, so
# both drivers talk to the same engine, the same image and the same
# machine; for each, N creates of the static blueprint one at a time, each
# timed from the API's POST (?wait) to the tenant's first 200 through the
# edge, then deleted. Goal (issue 23): the swarm's p50 within 2x the
# docker driver's.

use strict;
use warnings;
use Time::HiRes qw(time sleep);
use Tenant::Test;
use Tenant::Conf;

sub median {
    my @v = sort { $a <=> $b } @_;
    return $v[ int($#v / 2) ];
}

sub bench {
    my (%o) = @_;
    my $runs = $o{runs} // 5;
    my $t = Tenant::Test->new->start_pg;
    $t->migrate;
    $t->start_nginx(http => Tenant::Conf::http());
    $t->start_dockerd;
    my %res = (runs => $runs);
    for my $driver (qw(docker swarm)) {
        $t->start_provisioner(driver => $driver, name => 'p1');
        $t->{api_key} //= $t->create_api_key('bench');
        my @ms;
        for my $i (1 .. $runs) {
            my $name = "$driver$i";
            my $t0 = time;
            my $r = $t->api(POST => 'tenants?wait=60', { name => $name, blueprint => 'static' });
            if (($r->{json}{job}{status} // '') ne 'done') {
                my (undef, $tasks) = $t->engine(GET => '/tasks');
                die "create on $driver: " . ($r->{json}{job}{error} // $r->{status}) . "\n"
                    . join('', map { "  task of $_->{ServiceID}: $_->{Status}{State} $_->{Status}{Message}"
                                     . " $_->{Status}{Err}\n" } grep { ref } @{ ref $tasks ? $tasks : [] });
            }
            Tenant::Test::wait_until(sub { $t->get("$name.localhost")->{status} == 200 }, 30, 0.005)
                or die "$name never answered 200\n";
            push @ms, 1000 * (time - $t0);
        }
        for my $i (1 .. $runs) {
            $t->api(DELETE => "tenants/$driver$i?wait=60");
        }
        $t->stop_provisioner('p1');
        $res{$driver} = { p50_ms => median(@ms), max_ms => (sort { $b <=> $a } @ms)[0] };
    }
    $t->stop_dockerd;
    $t->cleanup;
    $res{ratio} = $res{swarm}{p50_ms} / $res{docker}{p50_ms};
    return \%res;
}

sub report {
    my ($r) = @_;
    return sprintf "swarm vs docker driver, one dockerd, create -> first 200, %d runs each:"
        . " docker p50 %.0f ms (max %.0f), swarm p50 %.0f ms (max %.0f): %.2fx (goal <= 2x)\n",
        $r->{runs}, @{ $r->{docker} }{qw(p50_ms max_ms)}, @{ $r->{swarm} }{qw(p50_ms max_ms)}, $r->{ratio};
}

1;
