# provisioner run: SIGHUP reloads the config and the blueprints; SIGTERM
# stops between steps and releases the job, whose attempt does not count;
# tenant processes keep running.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use Time::HiRes qw(time);
use Tenant::Test;
use Tenant::Conf;
use Tenant::Blueprints;

my $t = Tenant::Test->new->start_pg;
$t->migrate;
$t->start_nginx(http => Tenant::Conf::http());
my $bps = Tenant::Blueprints::make($t);
my $pid = $t->start_provisioner(blueprints => $bps);
unlike($t->psql('SELECT string_agg(name, \',\') FROM blueprints'), qr/slow/, 'no "slow" blueprint yet');

# a blueprint whose service never becomes healthy
Tenant::Test::write_file("$bps/slow.json", JSON::PP->new->encode({
    name => 'slow', drivers => ['process'], modes => ['dedicated'], themes => ['default'],
    roles => { site => 'web' },
    services => { web => { command => ['busybox', 'sleep', '300'], health => { path => '/', timeout => 60 } } } }));
kill 'HUP', $pid;
ok(Tenant::Test::wait_until(sub { $t->psql('SELECT string_agg(name, \',\') FROM blueprints') =~ /slow/ }, 5),
   'SIGHUP: the new blueprint is loaded and published');
like($t->provisioner_log, qr/configuration reloaded/, 'and the configuration reloaded');
unlike($t->provisioner_log, qr/overlaps the kernel's ephemeral ports/, 'tenant ports below the ephemeral range: no warning');

# tenant ports the kernel may hand to outgoing connections: a warning
my $conf = $t->provisioner_conf;
my $orig = Tenant::Test::slurp($conf);
my ($lo) = split ' ', Tenant::Test::slurp('/proc/sys/net/ipv4/ip_local_port_range');
Tenant::Test::write_file($conf, $orig . "port_min = $lo\nport_max = " . ($lo + 99) . "\n");
kill 'HUP', $pid;
ok(Tenant::Test::wait_until(sub { $t->provisioner_log =~ /port_min..port_max \($lo-\d+\) overlaps the kernel's ephemeral ports/ }, 5),
   "SIGHUP with ports from $lo: the overlap is reported");
Tenant::Test::write_file($conf, $orig);
kill 'HUP', $pid;
ok(Tenant::Test::wait_until(sub { 3 == (() = $t->provisioner_log =~ /configuration reloaded/g) }, 5),
   'the original configuration back');

my ($rc) = $t->cli('create', 'sluggish', '--blueprint', 'slow');
my $id = $t->psql("SELECT id FROM jobs WHERE tenant_id = 'sluggish'");
ok(Tenant::Test::wait_until(sub { $t->psql("SELECT steps ? 'services' FROM jobs WHERE id = $id") eq 't' }, 10),
   'the job is waiting for its service to become healthy');
my $t0 = time;
kill 'TERM', $pid;
ok(Tenant::Test::wait_until(sub { $t->provisioner_exited('p1') }, 10), 'SIGTERM: the provisioner exits');
cmp_ok(time - $t0, '<', 5 * $Tenant::Test::SLOW, sprintf('... promptly (%.1f s), not after the 60 s health timeout', time - $t0));
is($t->psql("SELECT status || ' ' || attempts || ' ' || coalesce(claimed_by, '-') FROM jobs WHERE id = $id"), 'queued 0 -',
   'the job is back in the queue, its attempt not counted, unclaimed');
like($t->provisioner_log, qr/job $id: released on shutdown/, 'logged');
is(scalar $t->tenant_pids('sluggish'), 1, 'the tenant process keeps running');

Tenant::Test::finish();
