# Warm cache entries survive nginx -s reload: no registry query afterwards.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Tenant::Test;
use Tenant::Conf;

my $t = Tenant::Test->new->start_pg;
$t->migrate;
$t->start_nginx(backends => ['b1'], http => Tenant::Conf::http(ttl => '300s'));
$t->add_tenant("warm$_", site => ["127.0.0.1:$t->{backend}{b1}"]) for 1 .. 20;

is($t->get("warm$_.localhost")->{status}, 200, "warm$_ routed") for 1 .. 20;

for my $round (1 .. 3) {
    my @old = $t->nginx_worker_pids;
    $t->nginx_signal('reload');
    my %old = map { $_ => 1 } @old;
    ok(Tenant::Test::wait_until(sub {
        my @new = $t->nginx_worker_pids;
        @new == 2 && !grep { $old{$_} } @new;
    }, 15), "reload $round replaced the workers");

    $t->reset_query_stats;
    my $hits = grep { $t->get("warm$_.localhost")->{headers}{'x-tenant-cache'} eq 'HIT' } 1 .. 20;
    is($hits, 20, "reload $round: all 20 tenants served from the kept cache");
    is($t->lookup_queries, 0, "reload $round: no registry query");
}

Tenant::Test::finish();
