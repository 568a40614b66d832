# A fleet migration over 50 tenants in waves of 10: the migration fails for
# tenant #25 half-way (its first statement applied, its second refused), the
# tenant is put back from the backup taken just before, the migration halts
# after that wave with no tenant half-migrated, and a resume after the
# cause is fixed takes it to completion, each tenant migrated exactly once.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use Tenant::Test;
use Tenant::Conf;
use Tenant::Blueprints;

my $N = 50;
my $t = Tenant::Test->new->start_pg;
$t->migrate;
$t->start_nginx(http => Tenant::Conf::http());
my $bps = Tenant::Blueprints::make($t);
$t->start_provisioner(blueprints => $bps, extra => ['workers = 3']);
$t->{api_key} = $t->create_api_key('fleet');

my @names = map { sprintf 'fm%02d', $_ } 1 .. $N;

# migrated: the new column and the new table; as before: neither
sub shape {
    my ($name) = @_;
    my $tag = $t->tenant_sql($name, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'items' AND column_name = 'tag'");
    my $at = $t->tenant_sql($name, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'audit' AND column_name = 'at'");
    return $tag && $at ? 'migrated' : !$tag && !$at ? 'before' : 'HALF';
}

for my $n (@names) {
    my ($rc, $out) = $t->cli('create', $n, '--blueprint', 'dbapp');
    die "create $n: $out" if $rc;
}
ok(Tenant::Test::wait_until(sub { $t->psql("SELECT count(*) FROM tenants WHERE status = 'active'") == $N }, 300),
   "$N tenants active") or diag $t->psql("SELECT string_agg(id || ' ' || status, ', ') FROM tenants WHERE status <> 'active'");
for my $n (@names) {
    $t->tenant_sql($n, "CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items SELECT g, '$n ' || g FROM generate_series(1, 10) g");
}
# what makes #25's second statement fail, after its first one worked
$t->tenant_sql('fm25', 'CREATE TABLE audit (x int); INSERT INTO audit VALUES (25)');

my $r = $t->api(POST => 'migrations', { blueprint => 'nope' });
is($r->{status}, 422, 'an unknown blueprint: 422');
like($r->{json}{error}{message}, qr/valid: .*dbapp/, '... listing the valid ones');
$r = $t->api(POST => 'migrations', { blueprint => 'static' });
is($r->{status}, 422, 'a blueprint with no migrate step: 422');
like($r->{json}{error}{message}, qr/static has no migrate step; valid: dbapp/, '... naming the ones that have one');
$r = $t->api(POST => 'migrations', { blueprint => 'dbapp', wave_size => 0 });
is($r->{status}, 422, 'wave_size 0: 422');
is($r->{json}{error}{field}, 'wave_size', '... naming it');
is($t->psql('SELECT count(*) FROM fleet_migrations'), 0, 'none of them started anything');

my ($rc, $out) = $t->cli('fleet-migrate', 'dbapp', '--wave', '10', '--max-failures', '0');
is($rc, 0, 'CLI fleet-migrate: exit 0') or diag $out;
my $m = decode_json($out);
is($m->{tenants}{queued}, 10, 'the first wave of 10 is queued');
is($m->{tenants}{pending}, 40, '40 wait');
my $id = $m->{id};

ok(Tenant::Test::wait_until(sub { $t->psql("SELECT status FROM fleet_migrations WHERE id = $id") ne 'running' }, 600),
   'the migration stops running');
is($t->psql("SELECT status || ' wave ' || wave FROM fleet_migrations WHERE id = $id"), 'halted wave 3',
   'it halted after wave 3, the one with the failure');
is($t->psql("SELECT status FROM fleet_tenants WHERE migration_id = $id AND tenant_id = 'fm25'"), 'rolled_back',
   'tenant #25 was rolled back');
like($t->psql("SELECT error FROM fleet_tenants WHERE migration_id = $id AND tenant_id = 'fm25'"), qr/psql exited with 1 \(see the service's log\)/,
   '... with the error of the step that failed');
is($t->psql("SELECT string_agg(tenant_id, ',' ORDER BY position) FROM fleet_tenants WHERE migration_id = $id AND status = 'migrated'"),
   join(',', grep { $_ ne 'fm25' } @names[0 .. 29]), 'the other 29 of waves 1-3 are migrated');
is($t->psql("SELECT count(*) FROM fleet_tenants WHERE migration_id = $id AND status = 'pending'"), 20, 'the last 20 were not touched');

my %shape = map { $_ => shape($_) } @names;
is(scalar(grep { $shape{$_} eq 'HALF' } @names), 0, '0 tenants half-migrated');
is(join(',', grep { $shape{$_} eq 'migrated' } @names), join(',', grep { $_ ne 'fm25' } @names[0 .. 29]),
   'the database of every tenant marked migrated is, and only those');
is($t->tenant_sql('fm25', 'SELECT x FROM audit'), 25, '#25 has its own table as it was');
is($t->tenant_sql('fm25', 'SELECT count(*) FROM items'), 10, '... and its rows');
is($t->psql("SELECT count(*) FROM tenant_backups WHERE reason = 'migration'"), 30, 'each tenant migrated was backed up first');
is($t->psql("SELECT count(*) FROM pg_database WHERE datname ~ '^(restore|retired|scratch)_'"), 0, 'no database is left from the put-back');

$r = $t->api(POST => 'migrations', { blueprint => 'dbapp' });
is($r->{status}, 409, 'another migration of the blueprint while one is halted: 409');
$r = $t->api(GET => "migrations/$id?status=rolled_back");
is($r->{status}, 200, 'GET migrations/ID?status=rolled_back');
is(scalar @{ $r->{json}{migration}{tenant_list} }, 1, '... one tenant');
is($r->{json}{migration}{tenant_list}[0]{tenant}, 'fm25', '... #25');

# the cause fixed, the migration resumed
$t->tenant_sql('fm25', 'DROP TABLE audit');
($rc, $out) = $t->cli('migration', $id, 'resume');
is($rc, 0, 'CLI migration ID resume: exit 0') or diag $out;
ok(Tenant::Test::wait_until(sub { $t->psql("SELECT status FROM fleet_migrations WHERE id = $id") eq 'done' }, 600),
   'the migration runs to completion');
$r = $t->api(GET => "migrations/$id");
is_deeply($r->{json}{migration}{tenants}, { migrated => $N }, "GET migrations/ID: all $N migrated");
%shape = map { $_ => shape($_) } @names;
is(scalar(grep { $shape{$_} eq 'migrated' } @names), $N, "every tenant's database is migrated");
is($t->psql("SELECT string_agg(n::text, ',') FROM (SELECT count(*) AS n FROM jobs WHERE kind = 'migrate' AND status = 'done'"
          . " GROUP BY tenant_id HAVING count(*) <> 1 AND tenant_id <> 'fm25') x") // '', '',
   'each tenant but #25 was migrated by exactly one job');
is($t->psql("SELECT count(*) FROM jobs WHERE kind = 'migrate' AND tenant_id = 'fm25'"), 2, '#25 twice: rolled back, then migrated');
is($t->psql("SELECT count(*) FROM jobs WHERE kind = 'migrate' AND status <> 'done'"), 0, 'no migrate job failed or is left');
is($t->tenant_sql($_, 'SELECT count(*) FROM items'), 10, "$_ kept its rows") for @names[0, 24, 49];
ok(Tenant::Test::wait_until(sub { $t->get("$_.localhost")->{status} == 200 }, 20), "$_ answers 200 after it") for @names[0, 24, 49];
$r = $t->api(POST => "migrations/$id/resume");
is($r->{status}, 409, 'resuming a finished migration: 409');
like($r->{json}{error}{message}, qr/the migration is done/, '... saying why');
$r = $t->api(GET => 'migrations');
is($r->{json}{migrations}[0]{id}, $id, 'GET migrations lists it');
is($t->psql("SELECT count(*) FROM audit_log WHERE action IN ('fleet.migrate', 'fleet.resume')"), 2, 'start and resume are audited');

# --- a provisioner killed in the middle of a tenant's migration ---------------
# A second blueprint like dbapp, three tenants of it, one worker: the first
# migrate job is killed after its commands ran, before it finished. The job
# resumed puts that tenant's backup back first, then migrates it again.
my $def = decode_json(Tenant::Test::slurp("$bps/dbapp.json"));
$def->{name} = 'dbapp2';
Tenant::Test::write_file("$bps/dbapp2.json", JSON::PP->new->canonical->encode($def));
symlink "$bps/dbapp", "$bps/dbapp2";
$t->start_provisioner(blueprints => $bps);
for my $n (qw(km1 km2 km3)) {
    ($rc, $out) = $t->cli('create', $n, '--blueprint', 'dbapp2', '--wait', '60');
    die "create $n: $out" if $rc;
    $t->tenant_sql($n, "CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items SELECT g, 'x' FROM generate_series(1, 10) g");
}
$t->start_provisioner(blueprints => $bps, env => { PROVISIONER_FAILPOINT => 'migrate:migrated' });
($rc, $out) = $t->cli('fleet-migrate', 'dbapp2', '--wave', '3');
is($rc, 0, 'a migration of dbapp2') or diag $out;
my $id2 = decode_json($out)->{id};
ok(Tenant::Test::wait_until(sub { $t->provisioner_exited }, 60), 'the provisioner is killed after a tenant\'s migrate step ran');
my ($victim) = $t->psql("SELECT tenant_id FROM jobs WHERE kind = 'migrate' AND status = 'running'") =~ /(km\d)/;
ok($victim, "$victim was being migrated");
is(shape($victim), 'migrated', '... its database migrated, its job not finished');
$t->start_provisioner(blueprints => $bps);
ok(Tenant::Test::wait_until(sub { $t->psql("SELECT status FROM fleet_migrations WHERE id = $id2") eq 'done' }, 120),
   'restarted, the migration finishes');
is($t->psql("SELECT string_agg(status, ',') FROM fleet_tenants WHERE migration_id = $id2"), 'migrated,migrated,migrated',
   'all three migrated');
is(shape($_), 'migrated', "$_ is migrated") for qw(km1 km2 km3);
is($t->psql("SELECT attempts FROM jobs WHERE kind = 'migrate' AND tenant_id = '$victim'"), 2, "${victim}'s job took two attempts");
like($t->provisioner_log, qr/$victim was backed up by an earlier attempt; putting that backup back before migrating again/,
     '... the second put its backup back before migrating again');
is($t->tenant_sql($victim, 'SELECT count(*) FROM items'), 10, '... and kept its rows');

Tenant::Test::finish();
