# SIGKILL the provisioner at each step of a create (failpoints): after a
# restart the job completes exactly once and nothing is orphaned.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Socket::INET;
use Tenant::Test;
use Tenant::Conf;
use Tenant::Blueprints;

my $t = Tenant::Test->new->start_pg;
$t->migrate;
$t->start_nginx(http => Tenant::Conf::http());
my $bps = Tenant::Blueprints::make($t);

my @steps = qw(secrets database ports files services health finish);
for my $step (@steps) {
    my $name = "crash-$step";
    $t->start_provisioner(blueprints => $bps, name => 'p1', lease => 2,
                          env => { PROVISIONER_FAILPOINT => "create:$step" });
    my ($rc, $out) = $t->cli('create', $name, '--blueprint', 'dbapp');
    is($rc, 0, "$step: create queued");
    ok(Tenant::Test::wait_until(sub { $t->provisioner_exited('p1') }, 20),
       "$step: the provisioner was killed at the failpoint");
    like($t->provisioner_log, qr/failpoint create:$step: SIGKILL/, "$step: ... by the failpoint");

    # a new provisioner takes the job over once its lease runs out
    $t->start_provisioner(blueprints => $bps, name => 'p1', lease => 2);
    my $id = $t->psql("SELECT id FROM jobs WHERE tenant_id = '$name' AND kind = 'create'");
    is($t->wait_job($id, 30), 'done', "$step: the job completes after the restart");
    is($t->psql("SELECT attempts FROM jobs WHERE id = $id"), 2, "$step: in exactly one more attempt");
    is($t->psql("SELECT status FROM tenants WHERE id = '$name'"), 'active', "$step: tenant active");
    like($t->get("$name.localhost")->{body}, qr/runs on a database/, "$step: routed");

    is(scalar $t->tenant_pids($name), 1, "$step: one service process, not two");
    # a duplicate would persist; the service's shell may fork a helper briefly
    ok(Tenant::Test::wait_until(sub { scalar($t->stray_processes($name)) == 1 }, 5),
       "$step: one process working in its directory")
        or diag(join "\n", map { "$_: " . (Tenant::Test::slurp("/proc/$_/cmdline") =~ s/\0/ /gr) . ' ppid ' . ((split ' ', Tenant::Test::slurp("/proc/$_/stat") =~ s/^.*\) //sr))[1] } $t->stray_processes($name));
    is($t->psql("SELECT count(*) FROM tenant_ports WHERE tenant_id = '$name'"), 1, "$step: one port");
    is($t->psql("SELECT count(*) FROM tenant_secrets WHERE tenant_id = '$name'"), 2, "$step: one set of secrets");
    is($t->psql("SELECT count(*) FROM pg_database WHERE datname = 'tenant_" . ($name =~ s/-/_/gr) . "'"), 1, "$step: one database");
    is($t->psql("SELECT count(*) FROM tenant_endpoints WHERE tenant_id = '$name'"), 1, "$step: one endpoint");
    $t->stop_provisioner('p1');
}

# A claimer that died is told by its registry connection, not its lease:
# with a two-minute lease, its job is taken over as soon as its connection
# is gone, by another provisioner and by the same one restarted. (That a
# live claimer keeps its jobs is t/62: two provisioners, each job claimed
# once.)
for my $case (qw(another restarted)) {
    my $name = "dead-$case";
    $t->start_provisioner(blueprints => $bps, name => 'p1', lease => 120,
                          env => { PROVISIONER_FAILPOINT => 'create:services' });
    my ($rc) = $t->cli('create', $name, '--blueprint', 'dbapp');
    is($rc, 0, "$case: create queued");
    ok(Tenant::Test::wait_until(sub { $t->provisioner_exited('p1') }, 20), "$case: the claimer was SIGKILLed mid-create");
    my $id = $t->psql("SELECT id FROM jobs WHERE tenant_id = '$name' AND kind = 'create'");
    is($t->psql("SELECT status FROM jobs WHERE id = $id"), 'running', "$case: the job is still marked running, lease 120 s");
    my $other = $case eq 'another' ? 'p2' : 'p1';
    $t->start_provisioner(blueprints => $bps, name => $other, lease => 120);
    is($t->wait_job($id, 20), 'done', "$case: taken over and done well before the 120 s lease ran out");
    is($t->psql("SELECT attempts FROM jobs WHERE id = $id"), 2, "$case: in exactly one more attempt");
    is($t->psql("SELECT claimed_by FROM jobs WHERE id = $id"), $other, "$case: by $other");
    $t->stop_provisioner($other);
}

# deletes too: killed mid-way, finished by the next provisioner
for my $step (qw(services database finish)) {
    my $name = "crash-$step";
    $t->start_provisioner(blueprints => $bps, name => 'p1', lease => 2,
                          env => { PROVISIONER_FAILPOINT => "delete:$step" });
    $t->cli('delete', $name);
    ok(Tenant::Test::wait_until(sub { $t->provisioner_exited('p1') }, 20), "delete/$step: killed");
    $t->start_provisioner(blueprints => $bps, name => 'p1', lease => 2);
    my $id = $t->psql("SELECT id FROM jobs WHERE tenant_id = '$name' AND kind = 'delete'");
    is($t->wait_job($id, 30), 'done', "delete/$step: completes after the restart");
    is($t->psql("SELECT count(*) FROM tenants WHERE id = '$name'"), 0, "delete/$step: tenant gone");
    is(scalar $t->tenant_pids($name), 0, "delete/$step: no process left");
    is($t->psql("SELECT count(*) FROM pg_database WHERE datname = 'tenant_" . ($name =~ s/-/_/gr) . "'"), 0, "delete/$step: database dropped");
    $t->stop_provisioner('p1');
}

# killed after its port was recorded; something else takes that port before
# the retry: the retry gives it back and takes another instead of failing
{
    my $name = 'port-taken';
    $t->start_provisioner(blueprints => $bps, name => 'p1', lease => 2,
                          env => { PROVISIONER_FAILPOINT => 'create:ports' });
    $t->cli('create', $name, '--blueprint', 'dbapp');
    ok(Tenant::Test::wait_until(sub { $t->provisioner_exited('p1') }, 20), 'port taken: killed after the ports step');
    my $port = $t->psql("SELECT port FROM tenant_ports WHERE tenant_id = '$name'");
    like($port, qr/^\d+$/, "port taken: $port recorded for it");
    my $holder = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1', LocalPort => $port, Proto => 'tcp', ReuseAddr => 1)
        or die "cannot listen on $port: $!";
    $t->start_provisioner(blueprints => $bps, name => 'p1', lease => 2);
    my $id = $t->psql("SELECT id FROM jobs WHERE tenant_id = '$name' AND kind = 'create'");
    is($t->wait_job($id, 30), 'done', 'port taken: the job completes')
        or diag $t->psql("SELECT error FROM jobs WHERE id = $id"), $t->provisioner_log;
    is($t->psql("SELECT attempts FROM jobs WHERE id = $id"), 2, 'port taken: in one more attempt');
    my $now = $t->psql("SELECT port FROM tenant_ports WHERE tenant_id = '$name'");
    isnt($now, $port, "port taken: another port ($now)");
    like($t->provisioner_log, qr{$name/web: port $port is in use by something else on this host}, 'port taken: the log says why');
    like($t->get("$name.localhost")->{body}, qr/runs on a database/, 'port taken: routed');
    close $holder;
    $t->stop_provisioner('p1');
}

# the low end of the range busy with other listeners, more of them than one
# query's worth of candidates (64): allocation walks on up the range
{
    my $base = $t->{port_base};
    my @held = grep { $_ } map { IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1', LocalPort => $_, Proto => 'tcp', ReuseAddr => 1) } $base .. $base + 79;
    cmp_ok(scalar @held, '>', 64, scalar(@held) . " ports from $base held by something else");
    $t->start_provisioner(blueprints => $bps, name => 'p1', lease => 2);
    my ($rc, $out) = $t->cli('create', 'far-port', '--blueprint', 'dbapp', '--wait', '30');
    is($rc, 0, 'far port: created') or diag $out, $t->provisioner_log;
    cmp_ok($t->psql("SELECT port FROM tenant_ports WHERE tenant_id = 'far-port'"), '>=', $base + 80, 'far port: past the busy ports');
    like($t->get('far-port.localhost')->{body}, qr/runs on a database/, 'far port: routed');
    close $_ for @held;
    $t->stop_provisioner('p1');
}

# a job taken over more often than its attempts (a step outliving every
# lease would be, for ever) fails for good, saying why, instead of looping
{
    my ($rc, $out) = $t->cli('create', 'overtaken', '--blueprint', 'dbapp');
    is($rc, 0, 'overtaken: create queued');
    $t->psql("UPDATE jobs SET attempts = max_attempts WHERE tenant_id = 'overtaken'");
    $t->start_provisioner(blueprints => $bps, name => 'p1', lease => 2);
    ok(Tenant::Test::wait_until(sub { $t->psql("SELECT status FROM jobs WHERE tenant_id = 'overtaken'") eq 'failed' }, 20),
       'overtaken: the job fails once claimed past its attempts');
    like($t->psql("SELECT error FROM jobs WHERE tenant_id = 'overtaken'"), qr/claimed 6 times, more than its 5 attempts/,
         '... saying so');
    is($t->psql("SELECT status FROM tenants WHERE id = 'overtaken'"), 'failed', '... and the tenant is failed, not half made');
    ($rc, $out) = $t->cli('delete', 'overtaken', '--wait', '20');
    is($rc, 0, '... and can be deleted') or diag $out;
    $t->stop_provisioner('p1');
}

# nothing orphaned anywhere: every directory and process belongs to a tenant
my %live = map { $_ => 1 } split /\n/, $t->psql('SELECT id FROM tenants');
my @dirs = map { s{.*/}{}r } glob("$t->{state_dir}/*");
is_deeply([ sort @dirs ], [ sort keys %live ], 'tenant directories match the registry');
is($t->psql("SELECT count(*) FROM tenant_ports WHERE tenant_id NOT IN (SELECT id FROM tenants)"), 0, 'no orphan port');
is($t->psql("SELECT count(*) FROM pg_database WHERE datname LIKE 'tenant\\_%'"), scalar(keys %live), 'one database per live tenant');

Tenant::Test::finish();
