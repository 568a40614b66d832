# A job whose "jobs" notification libpq read along with another statement's
# answer (here: queued on the provisioner's own connection as a reconcile
# pass ends, by a test point) is claimed at once: the provisioner looks at
# libpq's queue before it sleeps. Before, it slept until the next poll
# (60 s here).
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
$t->add_tenant('waker', site => ['127.0.0.1:1']);

my $t0 = time;
$t->start_provisioner(reconcile => 60, extra => ['poll_interval = 60'],
                      env => { PROVISIONER_TESTPOINT => 'queue-during-reconcile:waker' });
ok(Tenant::Test::wait_until(sub { $t->provisioner_log =~ /testpoint: queued a job during the reconcile pass/ }, 10),
   'a job was queued as the first reconcile pass ended');
my $id = $t->psql("SELECT id FROM jobs WHERE tenant_id = 'waker' AND kind = 'logs'");
ok($id, 'the job is in the registry');
is($t->wait_job($id, 20), 'done', 'and is done without waiting for the 60 s poll or the next pass');
diag(sprintf 'provisioner start to job done: %.2f s', time - $t0);

Tenant::Test::finish();
