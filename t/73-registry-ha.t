# The registry under Patroni: three PostgreSQL nodes and three etcd
# members on loopback, synchronous replication; two edges and a
# provisioner on a conninfo naming all three nodes with
# target_session_attrs=read-write. The primary is killed (-9, Patroni with
# it) under load: cached routing fails no request; API writes during the
# switch answer 503 with a JSON body, and work again after it; a route
# changed after the switch reaches both edges; every create accepted
# before and after the switch is done exactly once.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use POSIX ();
use JSON::PP;
use Tenant::Test;
use Tenant::Conf;

my $t = Tenant::Test->new->start_ha;
$t->migrate;
my $first = $t->ha_leader;
ok($first, "a Patroni leader (node $first) and two replicas");
is($t->psql("SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'"), 1, 'one synchronous standby');

# two backends: the route changed after the switch goes from one to the other
my %be;
for my $name (qw(one two)) {
    my $b = Tenant::Test->new;
    $b->{port} = Tenant::Test::free_port();
    $b->start_nginx(workers => 1, http => "server { listen 127.0.0.1:$b->{port}; location / { return 200 '$name\\n'; } }");
    $be{$name} = $b;
}
$t->psql("INSERT INTO tenants (id, blueprint, status) SELECT 'shop' || i, 'static', 'active' FROM generate_series(1, 20) i;"
    . " INSERT INTO tenant_endpoints (tenant_id, role, address, weight)"
    . " SELECT 'shop' || i, 'site', '127.0.0.1:$be{one}{port}', 1 FROM generate_series(1, 20) i");

$t->start_nginx(http => Tenant::Conf::http());
my $t2 = Tenant::Test->new->share_pg($t);
$t2->start_nginx(http => Tenant::Conf::http());
# the blueprints, and "slow": static whose site starts 3 s late, so a
# create is still under way when the primary is killed
my $bps = $t->dir . '/blueprints';
mkdir $bps or die;
symlink $_, "$bps/" . (split m{/}, $_)[-1] or die for glob "$Tenant::Test::TOP/blueprints/*";
my $slow = JSON::PP->new->decode(Tenant::Test::slurp("$Tenant::Test::TOP/blueprints/static.json"));
$slow->{name} = 'slow';
$slow->{services}{web}{command} = [ 'busybox', 'sh', '-c',
    'sleep 3; exec busybox httpd -f -v -p {{bind}}:{{port}} -h {{dir}}/site' ];
Tenant::Test::write_file("$bps/slow.json", JSON::PP->new->encode($slow));
symlink "$Tenant::Test::TOP/blueprints/static", "$bps/slow" or die;
$t->start_provisioner(reconcile => 1, blueprints => $bps);
$t->{api_key} = $t->create_api_key('ha');

my $warm = 0;
for my $e ($t, $t2) { for my $i (1 .. 20) { $warm++ if $e->get("shop$i.localhost")->{status} == 200 } }
is($warm, 40, 'both edges route the 20 tenants');

my $r = $t->api(POST => 'tenants?wait=60', { name => 'before', blueprint => 'static' });
is($r->{json}{job}{status}, 'done', 'a create before the switch: done') or diag explain $r->{json};

# load: cached routing on both edges until told to stop
my $stop = $t->dir . '/stop-load';
my $tally = $t->dir . '/tally';
my $load = fork // die;
if (!$load) {
    my ($n, $bad) = (0, 0);
    until (-e $stop) {
        for my $e ($t, $t2) {
            $n++;
            $bad++ if $e->get('shop' . (1 + $n % 20) . '.localhost')->{status} != 200;
        }
    }
    Tenant::Test::write_file($tally, "$n $bad\n");
    POSIX::_exit(0);
}
sleep 2;

# a create under way when the primary goes: claimed, not finished
$r = $t->api(POST => 'tenants', { name => 'inflight', blueprint => 'slow' });
is($r->{status}, 202, 'a create queued just before the switch');
ok(Tenant::Test::wait_until(sub { $t->psql("SELECT status FROM jobs WHERE tenant_id = 'inflight'") eq 'running' }, 10, 0.01),
   '... and claimed');

my $t0 = time;
$t->ha_kill($first);
ok(1, "node $first (the primary) killed with its Patroni");

# writes during the switch: each answered (503 while there is no primary)
my (@during, $back_at, @accepted);
my $i = 0;
while (time - $t0 < 90) {
    my $s = time;
    $r = $t->api(POST => 'tenants', { name => 'during' . ++$i, blueprint => 'static' });
    push @during, { status => $r->{status}, ms => 1000 * (time - $s), json => $r->{json} };
    if ($r->{status} == 202 || $r->{status} == 201) {
        push @accepted, "during$i";
        $back_at = time - $t0;
        last;
    }
    sleep 0.2;
}
my @refused = grep { $_->{status} == 503 } @during;
ok(@refused, scalar(@refused) . ' writes refused while the registry had no primary');
is(scalar(grep { $_->{status} != 503 && $_->{status} != 202 && $_->{status} != 201 } @during), 0,
   'every write answered 503 or was accepted: no other error')
    or diag explain [ map { $_->{status} } @during ];
ok(!(grep { !ref $_->{json} } @refused), 'each 503 with a JSON body');
my $slowest = 0;
$_->{ms} > $slowest and $slowest = $_->{ms} for @refused;
diag sprintf 'writes refused during the switch: %d, the slowest answered in %.0f ms', scalar @refused, $slowest;
ok(defined $back_at, 'writes work again after the switch')
    and diag sprintf 'primary killed -> a write accepted again: %.1f s', $back_at;
my $second = $t->ha_leader;
ok($second && $second != $first, "node " . ($second // 'none') . " is the primary now");

# a route changed right after the switch reaches both edges
$t->psql("UPDATE tenant_endpoints SET address = '127.0.0.1:$be{two}{port}' WHERE tenant_id = 'shop1'");
for my $e ($t, $t2) {
    ok(Tenant::Test::wait_until(sub { $e->get('shop1.localhost')->{body} =~ /two/ }, 15),
       "edge $e->{port}: shop1 follows the route changed on the new primary");
}

Tenant::Test::write_file($stop, '');
waitpid $load, 0;
my ($n, $bad) = split ' ', Tenant::Test::slurp($tally);
ok($n > 100, "load ran through the switch ($n requests)");
is($bad, 0, 'cached routing: no request failed while the primary was lost');

$r = $t->api(POST => 'tenants?wait=60', { name => 'after', blueprint => 'static' });
is($r->{json}{job}{status}, 'done', 'a create after the switch: done') or diag explain $r->{json};
for my $name ('before', @accepted, 'after') {
    ok(Tenant::Test::wait_until(sub { $t->psql("SELECT status FROM jobs WHERE tenant_id = '$name' AND kind = 'create'") eq 'done' }, 60),
       "$name: its create done");
    is($t->psql("SELECT count(*) FROM jobs WHERE tenant_id = '$name' AND kind = 'create'"), 1, "$name: one create job");
    my $claims = () = $t->provisioner_log =~ /claimed create of \Q$name\E \(/g;
    is($claims, 1, "$name: claimed once");
    ok(Tenant::Test::wait_until(sub { $t->get("$name.localhost")->{status} == 200 }, 20), "$name: 200");
}
# committed before the switch (synchronous replication): the new primary
# has it, and it finishes once, on a second attempt if its claim died with
# the old primary's connection
ok(Tenant::Test::wait_until(sub { $t->psql("SELECT status FROM jobs WHERE tenant_id = 'inflight'") eq 'done' }, 90),
   'inflight: the create under way at the switch is done');
is($t->psql("SELECT count(*) FROM jobs WHERE tenant_id = 'inflight'"), 1, 'inflight: one job');
ok(Tenant::Test::wait_until(sub { $t->get('inflight.localhost')->{status} == 200 }, 20), 'inflight: 200');
diag 'inflight: done at attempt ' . $t->psql("SELECT attempts FROM jobs WHERE tenant_id = 'inflight'");
my @refused_names = grep { my $n = $_; !grep { $_ eq $n } @accepted } map { "during$_" } 1 .. $i;
is($t->psql("SELECT count(*) FROM tenants WHERE id = ANY ('{" . join(',', @refused_names) . "}')"), 0,
   'no tenant made of the ' . scalar(@refused_names) . ' writes refused');

for my $e ($t, $t2) { $e->stop_nginx }
$_->stop_nginx for values %be;
$t->stop_provisioner('p1');
$t->stop_ha;
my @left = $t->ha_processes;
is(scalar @left, 0, 'no etcd, Patroni or PostgreSQL process left') or diag join "\n", @left;

Tenant::Test::finish();
