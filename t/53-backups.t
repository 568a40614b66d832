# Backups of tenant data with real pg_dump/pg_restore: backup -> corrupt ->
# restore -> data back; SIGKILL mid-backup leaves no backup; a truncated
# file fails verification; clone; a deleted tenant's last backup; retention;
# scheduled backups and the health check; the admin API's routes.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use Tenant::Test;
use Tenant::Conf;
use Tenant::Blueprints;

my $t = Tenant::Test->new->start_pg;
$t->migrate;
$t->start_nginx(http => Tenant::Conf::http());
my $bps = Tenant::Blueprints::make($t);
my @conf = ('backup_pass_interval = 1');
$t->start_provisioner(blueprints => $bps, extra => \@conf);
$t->{api_key} = $t->create_api_key('backups');
my $backups = "$t->{dir}/prov/backups";

sub job_of { decode_json($_[0])->{id} }

my ($rc, $out) = $t->cli('create', 'shop1', '--blueprint', 'dbapp', '--wait', '60');
is($rc, 0, 'a tenant with a database') or diag $out;
$t->tenant_sql('shop1', 'CREATE TABLE items (id int PRIMARY KEY, name text, price numeric, made timestamptz DEFAULT now());'
                  . " INSERT INTO items SELECT g, 'item ' || g, g * 1.5 FROM generate_series(1, 5000) g;"
                  . ' CREATE TABLE orders (id serial, item int, note text);'
                  . " INSERT INTO orders (item, note) SELECT g % 50 + 1, repeat('x', g % 7) FROM generate_series(1, 700) g");
my $sum = $t->tenant_sql('shop1', "SELECT md5(string_agg(i::text, ',' ORDER BY id)) FROM items i");
my $home = "$t->{state_dir}/shop1/home";
mkdir "$home/uploads";
Tenant::Test::write_file("$home/uploads/logo.txt", "the shop's logo\n");

# --- backup, verified ------------------------------------------------------
($rc, $out) = $t->cli('backup', 'shop1', '--wait', '60');
is($rc, 0, 'CLI backup --wait: exit 0') or diag $out;
my $job = decode_json($out);
is($job->{status}, 'done', 'the backup job is done');
my $bid = $job->{result}{backup};
ok($bid, "backup $bid made");
ok($job->{result}{db_bytes} > 10000, "its dump: $job->{result}{db_bytes} bytes");
ok(-f "$backups/shop1/$bid/db.dump" && -f "$backups/shop1/$bid/files.tar", 'its files are in the store');
is((stat "$backups/shop1")[2] & 07777, 0700, 'the store is root\'s alone');
is($t->psql("SELECT (tables -> 'public.items' ->> 'rows') || ' ' || (tables -> 'public.orders' ->> 'rows') FROM tenant_backups WHERE id = $bid"),
   '5000 700', 'the manifest counts each table\'s rows');
is($t->psql("SELECT blueprint || ' ' || length(blueprint_version) || ' ' || reason FROM tenant_backups WHERE id = $bid"),
   'dbapp 32 manual', 'with the blueprint and its version');
ok(Tenant::Test::wait_until(sub { $t->psql("SELECT verify_status FROM tenant_backups WHERE id = $bid") ne 'unverified' }, 60),
   'the verification queued with it ran');
is($t->psql("SELECT verify_status || ' ' || (verify_error IS NULL)::text FROM tenant_backups WHERE id = $bid"), 'ok true',
   'restored into a scratch database, every table matches');
is($t->psql("SELECT count(*) FROM pg_database WHERE datname LIKE 'scratch\\_%'"), 0, 'the scratch database is gone');
is($t->psql("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'scratch\\_%'"), 0, '... and its role');

($rc, $out) = $t->cli('backups', 'shop1');
like($out, qr/^$bid\s+manual\s+ok\s+\d+\s+\d+/m, 'CLI backups lists it, verified');

# --- corrupt, then restore --------------------------------------------------
$t->tenant_sql('shop1', "DELETE FROM items WHERE id % 3 = 0; UPDATE items SET price = 0; DROP TABLE orders;"
                  . " CREATE TABLE junk (x int)");
unlink "$home/uploads/logo.txt";
Tenant::Test::write_file("$home/uploads/evil.txt", "not the shop's\n");
isnt($t->tenant_sql('shop1', "SELECT md5(string_agg(i::text, ',' ORDER BY id)) FROM items i"), $sum, 'the data is corrupted');
my @before = $t->tenant_pids('shop1');

($rc, $out) = $t->cli('restore', $bid, '--wait', '60');
is($rc, 0, 'CLI restore --wait: exit 0') or diag $out;
is(decode_json($out)->{status}, 'done', 'the restore job is done');
is($t->tenant_sql('shop1', "SELECT md5(string_agg(i::text, ',' ORDER BY id)) FROM items i"), $sum, 'every item is back, as it was');
is($t->tenant_sql('shop1', 'SELECT count(*) FROM orders'), 700, 'the dropped table is back');
is($t->tenant_sql('shop1', "SELECT count(*) FROM pg_tables WHERE tablename = 'junk'"), 0, 'what came after the backup is gone');
is(Tenant::Test::slurp("$home/uploads/logo.txt"), "the shop's logo\n", 'the deleted file is back');
ok(!-e "$home/uploads/evil.txt", 'the file written after the backup is gone');
is($t->tenant_sql('shop1', "SELECT string_agg(DISTINCT tableowner, ',') FROM pg_tables WHERE schemaname = 'public'"), 'tenant_shop1',
   'the restored tables belong to the tenant\'s role');
is($t->psql("SELECT count(*) FROM pg_database WHERE datname LIKE 'restore\\_%' OR datname LIKE 'retired\\_%'"), 0,
   'the old database was dropped once the restore succeeded');
ok(!glob("$t->{state_dir}/shop1/home.*"), '... and the old files');
my @after = $t->tenant_pids('shop1');
ok(@after && "@after" ne "@before", 'the services were restarted');
ok(Tenant::Test::wait_until(sub { $t->get('shop1.localhost')->{status} == 200 }, 10), 'the shop answers 200 again');

# --- SIGKILL mid-backup -------------------------------------------------------
$t->start_provisioner(blueprints => $bps, extra => \@conf, env => { PROVISIONER_FAILPOINT => 'backup:staged' });
($rc, $out) = $t->cli('backup', 'shop1', '--no-verify');
is($rc, 0, 'a backup queued') or diag $out;
my $killed = job_of($out);
ok(Tenant::Test::wait_until(sub { $t->provisioner_exited }, 60), 'the provisioner is killed with the backup staged, not stored');
is($t->psql("SELECT count(*) FROM tenant_backups WHERE id = $killed"), 0, 'no backup is recorded');
is($t->psql("SELECT status FROM jobs WHERE id = $killed"), 'running', 'the job is still claimed');
ok(-d "$backups/shop1/.$killed.partial" && !-e "$backups/shop1/$killed", 'only a staging directory is on disk');
($rc, $out) = $t->cli('restore', $killed);
is($rc, 3, 'it cannot be restored: exit 3');
like($out, qr/ID: no backup $killed/, '... naming the ID');
$t->start_provisioner(blueprints => $bps, extra => \@conf);
is($t->wait_job($killed, 60), 'done', 'restarted, the provisioner resumes the backup');
is($t->psql("SELECT count(*) FROM tenant_backups WHERE id = $killed"), 1, 'one backup recorded');
ok(-f "$backups/shop1/$killed/db.dump" && !-e "$backups/shop1/.$killed.partial", 'stored whole, no staging left');

# --- a truncated file fails verification ------------------------------------
my $dump = "$backups/shop1/$killed/db.dump";
truncate $dump, int((-s $dump) / 2) or die "truncate: $!";
($rc, $out) = $t->cli('verify', $killed, '--wait', '60');
is($rc, 0, 'CLI verify --wait: the job ran') or diag $out;
my $v = decode_json($out);
ok(!$v->{result}{ok}, 'the verification failed');
like($v->{result}{error}, qr/db\.dump is \d+ bytes .*manifest says \d+ bytes/, '... saying the file differs from its manifest');
is($t->psql("SELECT verify_status FROM tenant_backups WHERE id = $killed"), 'failed', 'the backup is marked failed');
($rc, $out) = $t->cli('restore', $killed);
is($rc, 4, 'a failed backup is not restored: exit 4');
like($out, qr/failed verification/, '... saying why');

# --- clone -------------------------------------------------------------------
($rc, $out) = $t->cli('clone', $bid, 'shop2', '--display-name', 'Shop Two', '--wait', '60');
is($rc, 0, 'CLI clone --wait: exit 0') or diag $out;
is($t->psql("SELECT status || ' ' || blueprint || ' ' || display_name FROM tenants WHERE id = 'shop2'"), 'active dbapp Shop Two',
   'the clone is an active tenant of the same blueprint');
is($t->tenant_sql('shop2', "SELECT md5(string_agg(i::text, ',' ORDER BY id)) FROM items i"), $sum, 'with the backup\'s data');
is($t->tenant_sql('shop2', "SELECT string_agg(DISTINCT tableowner, ',') FROM pg_tables WHERE schemaname = 'public'"), 'tenant_shop2',
   'owned by its own role');
is(Tenant::Test::slurp("$t->{state_dir}/shop2/home/uploads/logo.txt"), "the shop's logo\n", 'and the backup\'s files');
like(Tenant::Test::slurp("$t->{state_dir}/shop2/home/db_url"), qr{/tenant_shop2$}, 'its own database URL, not the source\'s');
like($t->get('shop2.localhost')->{body}, qr/Shop Two runs on a database/, 'routed, with its own name');
($rc, $out) = $t->cli('clone', $bid, 'shop1');
is($rc, 4, 'clone onto an existing name: exit 4');
like($out, qr/NEWNAME: a tenant named shop1 exists/, '... naming NEWNAME');
($rc, $out) = $t->cli('clone', 'x1', 'shop3');
is($rc, 2, 'a bad backup id: exit 2');
like($out, qr/ID: a backup id/, '... naming ID');
($rc, $out) = $t->cli('clone', 99999, 'shop3');
is($rc, 3, 'no such backup: exit 3');
is($t->psql("SELECT count(*) FROM tenants WHERE id = 'shop3'"), 0, 'and no tenant was made');

# --- a deleted tenant keeps its last backup ------------------------------------
($rc, $out) = $t->cli('backup', 'shop2', '--wait', '60');
my $b2 = decode_json($out)->{result}{backup};
($rc) = $t->cli('delete', 'shop2', '--wait', '60');
is($rc, 0, 'shop2 deleted');
ok($t->psql("SELECT tenant_gone_at IS NOT NULL FROM tenant_backups WHERE id = $b2") eq 't', 'its backup is kept, marked gone');
($rc, $out) = $t->cli('restore', $b2);
is($rc, 4, 'a deleted tenant\'s backup is not restored in place');
like($out, qr/clone the backup into a new tenant/, '... the message says what to do');

# --- retention ---------------------------------------------------------------
# 40 days of backups of shop1, one every 12 hours, from 10 days ago back
my @fake;
for my $i (0 .. 79) {
    my $id = 100000 + $i;
    my $at = "now() - interval '1 day' - interval '6 hours' - $i * interval '12 hours'";
    $t->psql("INSERT INTO tenant_backups (id, tenant_id, blueprint, blueprint_version, theme, mode, reason, location,"
           . " started_at, created_at) VALUES ($id, 'shop1', 'dbapp', 'x', 'default', 'dedicated', 'scheduled',"
           . " 'shop1/$id', $at, $at)");
    mkdir "$backups/shop1/$id";
    push @fake, $id;
}
my $expect = $t->psql(<<'SQL');
WITH b AS (SELECT id, created_at FROM tenant_backups WHERE tenant_id = 'shop1'),
d AS (SELECT DISTINCT ON (date_trunc('day', created_at)) id, date_trunc('day', created_at) AS k FROM b ORDER BY date_trunc('day', created_at), created_at DESC),
w AS (SELECT DISTINCT ON (date_trunc('week', created_at)) id, date_trunc('week', created_at) AS k FROM b ORDER BY date_trunc('week', created_at), created_at DESC)
SELECT string_agg(id::text, ',' ORDER BY id) FROM b
 WHERE created_at > now() - interval '1 day'
    OR id IN (SELECT id FROM d ORDER BY k DESC LIMIT 7)
    OR id IN (SELECT id FROM w ORDER BY k DESC LIMIT 4)
SQL
# a pass deletes one row at a time: wait for the set, then for one more
# pass, which must delete nothing more
my $kept = sub { $t->psql("SELECT string_agg(id::text, ',' ORDER BY id) FROM tenant_backups WHERE tenant_id = 'shop1'") };
ok(Tenant::Test::wait_until(sub { $t->psql("SELECT count(*) FROM tenant_backups WHERE tenant_id = 'shop1' AND id >= 100000") < 20 }, 30),
   'the retention pass deletes old backups');
Tenant::Test::wait_until(sub { $kept->() eq $expect }, 10);
sleep 2;
is($kept->(), $expect, 'what stays: the last day, the newest of 7 days and of 4 weeks');
# files go right after their row: on a busy machine, a moment after
my $rows = $t->psql("SELECT count(*) FROM tenant_backups WHERE id >= 100000");
Tenant::Test::wait_until(sub { (grep { -d "$backups/shop1/$_" } @fake) == $rows }, 10);
my @left = grep { -d "$backups/shop1/$_" } @fake;
is(scalar @left, $t->psql("SELECT count(*) FROM tenant_backups WHERE id >= 100000"), '... and their files go with them');
ok(-f "$backups/shop1/$bid/db.dump", 'the recent backups are untouched');

# a deleted tenant's last backup goes after backup_keep_deleted
$t->psql("UPDATE tenant_backups SET tenant_gone_at = now() - interval '31 days' WHERE id = $b2");
ok(Tenant::Test::wait_until(sub { $t->psql("SELECT count(*) FROM tenant_backups WHERE id = $b2") == 0 }, 30),
   'a deleted tenant\'s backup goes after 30 days');
ok(!-e "$backups/shop2", '... with its directory');

# --- scheduled backups and the health check ------------------------------------
($rc) = $t->cli('create', 'shop4', '--blueprint', 'dbapp', '--wait', '60');
$t->start_provisioner(blueprints => $bps, extra => [@conf, 'backup_interval = 3600', 'backup_jitter = 600',
    'check_backup_hours = 1', 'check_interval = 5']);
ok(Tenant::Test::wait_until(sub { $t->psql("SELECT count(*) FROM tenant_backups WHERE tenant_id = 'shop4' AND reason = 'scheduled' AND verify_status = 'ok'") == 1 }, 90),
   'a tenant with no backup gets a scheduled, verified one');
is($t->psql("SELECT count(*) FROM jobs WHERE tenant_id = 'shop1' AND kind = 'backup' AND payload ->> 'reason' = 'scheduled'"), 0,
   'one backed up within the interval does not');
$t->psql("UPDATE tenant_backups SET verify_status = 'failed' WHERE tenant_id = 'shop1'");
ok(Tenant::Test::wait_until(sub { $t->psql("SELECT count(*) FROM health_checks WHERE name = 'backups' AND status = 'warning' AND detail LIKE '1 active tenants without a verified backup in 1 h; first: shop1'") == 1 }, 30),
   'the health check names the tenant without a verified backup');

# --- the admin API --------------------------------------------------------------
my $r = $t->api(GET => 'tenants/shop1/backups');
is($r->{status}, 200, 'GET tenants/shop1/backups');
ok((grep { $_->{id} == $bid && $_->{verify}{status} eq 'failed' } @{ $r->{json}{backups} }), '... lists its backups');
$r = $t->api(POST => 'tenants/shop1/backups?wait=60', { verify => JSON::PP::false });
is($r->{status}, 200, 'POST tenants/shop1/backups?wait: 200');
my $api_bid = $r->{json}{job}{result}{backup};
ok($api_bid, "backup $api_bid made through the API");
$r = $t->api(POST => 'tenants/shop1/backups', { verify => 'yes' });
is($r->{status}, 422, 'a bad verify: 422');
is($r->{json}{error}{field}, 'verify', '... naming the field');
$r = $t->api(GET => "backups/$api_bid");
is($r->{status}, 200, 'GET backups/ID');
is($r->{json}{backup}{tables}, 2, '... its manifest: 2 tables');
$r = $t->api(POST => "backups/$api_bid/verify?wait=60");
is($r->{json}{job}{result}{ok}, JSON::PP::true, 'POST backups/ID/verify: ok');
$t->tenant_sql('shop1', 'DELETE FROM items');
$r = $t->api(POST => "backups/$api_bid/restore?wait=60");
is($r->{json}{job}{status}, 'done', 'POST backups/ID/restore');
is($t->tenant_sql('shop1', "SELECT md5(string_agg(i::text, ',' ORDER BY id)) FROM items i"), $sum, '... the items are back');
$r = $t->api(POST => "backups/$api_bid/clone?wait=60", { name => 'shop5' });
is($r->{json}{job}{status}, 'done', 'POST backups/ID/clone');
is($r->{json}{tenant}{status}, 'active', '... an active tenant');
$r = $t->api(POST => "backups/$api_bid/clone", { name => 'Bad Name' });
is($r->{status}, 422, 'clone with a bad name: 422');
is($r->{json}{error}{field}, 'name', '... naming it');
$r = $t->api(GET => 'backups/999999');
is($r->{status}, 404, 'no such backup: 404');
$r = $t->api(POST => 'backups/abc/restore');
is($r->{status}, 404, 'a backup id that cannot exist: 404');
$r = $t->api(POST => "backups/$killed/restore");
is($r->{status}, 409, 'restoring a failed backup: 409');
like($r->{json}{error}{message}, qr/failed verification/, '... saying why');
$r = $t->api(GET => 'tenants/nobody/backups');
is($r->{status}, 404, 'backups of no tenant: 404');
is($t->psql("SELECT count(*) FROM audit_log WHERE action IN ('tenant.backup', 'backup.restore', 'backup.verify', 'tenant.clone')") >= 7 ? 1 : 0,
   1, 'every backup, verify, restore and clone is audited');

Tenant::Test::finish();

