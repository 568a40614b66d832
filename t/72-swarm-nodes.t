# The swarm driver on two nodes: a manager here and a worker in a network
# namespace of the test's own (a veth pair between them). A tenant's task
# runs on one node and is routed at that node's address; that node
# drained, Swarm starts the task on the other and the reconciler re-routes
# the tenant there, with no operator. Then the other way round.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);
use Tenant::Test;
use Tenant::Conf;

my $t = Tenant::Test->new->start_pg;
$t->migrate;
$t->start_nginx(http => Tenant::Conf::http());
$t->start_dockerd(nodes => 2);
my ($code, $nodes) = $t->engine(GET => '/nodes');
is(scalar(grep { $_->{Status}{State} eq 'ready' } @$nodes), 2, 'two nodes ready');
my %addr_of = map { $_->{ID} => $_->{Status}{Addr} } @$nodes;
is_deeply([ sort values %addr_of ], [ sort @{ $t->{node_addrs} } ], "each at its own address (@{ $t->{node_addrs} })");

$t->start_provisioner(driver => 'swarm', reconcile => 1);
$t->{api_key} = $t->create_api_key('nodes');
my $r = $t->api(POST => 'tenants?wait=60', { name => 'mover', blueprint => 'static' });
is($r->{json}{job}{status}, 'done', 'create on two nodes: done') or diag explain $r->{json}, $t->provisioner_log;
ok(Tenant::Test::wait_until(sub { $t->get('mover.localhost')->{status} == 200 }, 10), 'mover.localhost: 200');
my $port = $t->psql("SELECT port FROM tenant_ports WHERE tenant_id = 'mover' AND service = 'web'");
my $endpoint = sub { $t->psql("SELECT address FROM tenant_endpoints WHERE tenant_id = 'mover' AND role = 'site'") };

# the node the site's running task is on
my $node_of = sub {
    my (undef, $tasks) = $t->engine(GET => '/tasks?filters=%7B%22service%22%3A%5B%22tenant-mover-web%22%5D%7D');
    my ($run) = grep { $_->{Status}{State} eq 'running' && $_->{DesiredState} eq 'running' } @{ ref $tasks ? $tasks : [] };
    return $run ? $run->{NodeID} : '';
};

for my $round (1, 2) {
    my $from = $node_of->();
    ok($from, "round $round: the site runs on a node");
    is($endpoint->(), "$addr_of{$from}:$port", "round $round: routed at that node's address");
    my ($other) = grep { $_ ne $from } keys %addr_of;
    # the other node takes work again (the first round drained it)
    $t->docker('node', 'update', '--availability', 'active', $other);
    my $t0 = time;
    my ($rc, $out) = $t->docker('node', 'update', '--availability', 'drain', $from);
    is($rc, 0, "round $round: its node drained") or diag $out;
    ok(Tenant::Test::wait_until(sub { $node_of->() eq $other }, 30), "round $round: Swarm runs the task on the other node");
    ok(Tenant::Test::wait_until(sub { $endpoint->() eq "$addr_of{$other}:$port" }, 30),
       "round $round: the reconciler moved the endpoint to $addr_of{$other}:$port");
    ok(Tenant::Test::wait_until(sub { $t->get('mover.localhost')->{status} == 200 }, 10), "round $round: mover.localhost: 200 again");
    diag sprintf 'round %d: drain -> 200 at the new node: %.2f s', $round, time - $t0;
}
like($t->provisioner_log, qr/mover's site is now at /, 'the provisioner says why it rewrote the endpoints');

$r = $t->api(DELETE => 'tenants/mover?wait=60');
is($r->{json}{job}{status}, 'done', 'deleted');
$t->stop_provisioner('p1');
$t->stop_dockerd;
my @left = $t->dockerd_processes;
is(scalar @left, 0, 'no dockerd, containerd or shim left on either node') or diag join "\n", @left;
ok(!-e "/run/netns/tenant-test-$$", 'the network namespace is gone');

Tenant::Test::finish();
