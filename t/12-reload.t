# Warm cache entries survive nginx -s reload: no registry query afterwards.
# A reload that fails after the http block leaves the running workers, and
# any worker respawned after it, on the running configuration's zone.
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
    is($hits, 20, "reload $round: all 20 tenants served from the kept cache")
        # what the listeners did: a claim without "(handover)" empties the cache
        or diag(join '', grep { /tenant: (this worker|listener)|exit|reconfiguring/ }
                split /^/, Tenant::Test::slurp("$t->{ngxdir}/logs/error.log"));
    is($t->lookup_queries, 0, "reload $round: no registry query");
}

# a reload whose configuration fails after the http block: the failed cycle
# made (and freed) its own cache structures; the running one must be used
my $conf_file = "$t->{ngxdir}/nginx.conf";
my $good = Tenant::Test::slurp($conf_file);
Tenant::Test::write_file($conf_file, $good
    . "worker_rlimit_nofile not-a-number;\n" . ("# padding\n" x 20000));
for my $try (1 .. 3) {
    # SIGHUP itself: nginx -s reload would refuse to signal a broken file
    kill 'HUP', $t->nginx_master_pid;
    ok(Tenant::Test::wait_until(sub {
        my @e = $t->error_log =~ /"worker_rlimit_nofile" directive invalid number/g;
        @e >= $try;
    }, 15), "broken reload $try refused");
}
Tenant::Test::write_file($conf_file, $good);

my @before = $t->nginx_worker_pids;
kill 'KILL', $before[0];
ok(Tenant::Test::wait_until(sub {
    my @now = $t->nginx_worker_pids;
    @now == 2 && !grep { $_ == $before[0] } @now;
}, 15), 'the killed worker was respawned');

for my $round (1 .. 2) {
    my $ok = grep { $t->get("warm$_.localhost")->{status} == 200 } 1 .. 20;
    is($ok, 20, "after the broken reload and a respawn: all 20 tenants routed ($round)");
}
$t->add_tenant('fresh1', site => ["127.0.0.1:$t->{backend}{b1}"]);
is($t->get('fresh1.localhost')->{status}, 200, 'a new tenant is looked up and cached');
is($t->get('fresh1.localhost')->{headers}{'x-tenant-cache'}, 'HIT',
   'and its next request is a hit');
$t->psql("UPDATE tenants SET status = 'suspended' WHERE id = 'fresh1'");
ok(Tenant::Test::wait_until(sub { $t->get('fresh1.localhost')->{status} != 200 }, 10),
   'a change still reaches the cache (the listener runs on the live zone)');
# the worker this test killed exited on signal 9; any other signal is a crash
unlike($t->error_log, qr/exited on signal (?!9\b)\d+/, 'no worker crashed');

Tenant::Test::finish(allow => qr/directive invalid number|exited on signal 9\b/);
