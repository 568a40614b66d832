# Stopping nginx costs nothing extra with the module: a graceful quit does
# not wait for a listener handover nobody will take (a reload still hands
# over). A registry that stays down is logged once per backoff step, and
# its recovery once per connection.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use Tenant::Test;
use Tenant::Conf;

my $t = Tenant::Test->new->start_pg;
$t->migrate;
$t->start_nginx(backends => ['b1'], workers => 1, http => Tenant::Conf::http(retry => '500ms'));
$t->add_tenant('quitter', site => ["127.0.0.1:$t->{backend}{b1}"]);
is($t->get('quitter.localhost')->{status}, 200, 'routed');
ok(Tenant::Test::wait_until(sub { $t->listeners == 1 }, 10), 'the worker listens for changes');

# a reload still hands the listener over, so no change is missed
$t->nginx_signal('reload');
ok(Tenant::Test::wait_until(sub { $t->error_log =~ /listener handed over to pid/ }, 10),
   'a reload hands the listener over');
unlike($t->error_log, qr/changes may have been missed\D*$/s, 'the new worker did not have to invalidate the cache');

# a graceful quit: nobody will take over, so nothing waits
my $t0 = time;
$t->nginx_signal('quit');
# the master removes its pid file as it exits (a daemon's zombie may linger
# until init reaps it, so kill 0 would not tell)
my $pidfile = "$t->{ngxdir}/nginx.pid";
Tenant::Test::wait_until(sub { !-e $pidfile }, 10, 0.01);
my $took = time - $t0;
ok(!-e $pidfile, 'nginx -s quit: nginx exited');
like($t->error_log, qr/listener released, no newer configuration to hand it to/,
     'the exiting listener let go at once');
# without this the worker waited out the 3 s handover timeout
cmp_ok($took, '<', 2.5, sprintf 'it did not wait for a handover (%.2f s)', $took);
diag(sprintf 'nginx -s quit took %.3f s', $took);
$t->{nginx_running} = 0;

# registry down: logged once per backoff step, not once per attempt
$t->stop_pg;
my $log_before = length $t->error_log;
$t->start_nginx(backends => ['b1'], workers => 1, http => Tenant::Conf::http(retry => '500ms'));
is($t->get('quitter.localhost')->{status}, 503, 'registry down, nothing cached: 503');
sleep 6;
my $log = substr($t->error_log, $log_before);
my $fails = () = $log =~ /registry cannot connect/g;
# three connections (two for look-ups, one listening), 50 ms doubling to a
# 500 ms cap: five steps each; one attempt a second per connection at the cap
# would be about 12 each
ok($fails >= 3 && $fails <= 18, "6 s of a registry that is down: $fails lines, not one per attempt");
like($log, qr/registry cannot connect \(attempt \d+, next in \d+ms\)/, 'each says which attempt and when the next is');

$t->restart_pg;
ok(Tenant::Test::wait_until(sub { $t->get('quitter.localhost')->{status} == 200 }, 10), 'the registry is back: routed');
sleep 1;
$log = substr($t->error_log, $log_before);
my $back = () = $log =~ /registry reachable again after \d+ failed attempts/g;
ok($back >= 1 && $back <= 3, "recovery logged once per connection ($back lines)");

Tenant::Test::finish();
