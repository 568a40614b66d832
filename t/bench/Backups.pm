package Bench::Backups;

# auto/bench's figures for backups and fleet migrations (issue 21's goals):
# backup + verify and restore of a tenant database of about 100 MB, and a
# fleet migration of many tenants in waves with a failure planted half-way:
# it must halt with no tenant half-migrated, then resume to completion.

use strict;
use warnings;
use JSON::PP;
use Time::HiRes qw(time sleep);
use Tenant::Test;
use Tenant::Conf;
use Tenant::Blueprints;

sub job_seconds {
    my ($t, $id) = @_;
    return $t->psql("SELECT extract(epoch FROM finished_at - created_at) FROM jobs WHERE id = $id");
}

sub setup {
    my (%o) = @_;
    my $t = Tenant::Test->new->start_pg;
    $t->migrate;
    $t->start_nginx(workers => 1, log_level => 'error', http => Tenant::Conf::http());
    my $bps = Tenant::Blueprints::make($t);
    # a port block of its own the size of the fleet (the tests' is 100),
    # below the ephemeral range, where a client's socket could hold one
    $t->start_provisioner(blueprints => $bps, extra => ["workers = $o{workers}",
        'port_min = 21000', 'port_max = ' . (21000 + ($o{ports} // 100) + 100)]);
    return $t;
}

# backup + verify and restore of one tenant of about $mb MB
sub bench_data {
    my (%o) = @_;
    my $mb = $o{mb} // 100;
    my $t = setup(workers => 1);
    my ($rc, $out) = $t->cli('create', 'big', '--blueprint', 'dbapp', '--wait', '120');
    die "create: $out" if $rc;
    # about 125 bytes a row on disk with its index
    my $rows = int($mb * 1024 * 1024 / 125);
    $t->tenant_sql('big', "CREATE TABLE items (id int PRIMARY KEY, name text, body text, at timestamptz);"
        . " INSERT INTO items SELECT g, md5(g::text), repeat(chr(97 + g % 26), 40), now() FROM generate_series(1, $rows) g");
    $t->tenant_sql('big', 'VACUUM ANALYZE items');
    my %r = (rows => $rows, db_mb => $t->psql("SELECT pg_database_size('tenant_big') / 1048576.0"));

    ($rc, $out) = $t->cli('backup', 'big', '--wait', '600');
    die "backup: $out" if $rc;
    my $job = decode_json($out);
    my $bid = $job->{result}{backup};
    $r{backup_s} = job_seconds($t, $job->{id});
    $r{dump_mb} = $job->{result}{db_bytes} / 1048576;
    Tenant::Test::wait_until(sub { $t->psql("SELECT verify_status FROM tenant_backups WHERE id = $bid") ne 'unverified' }, 600)
        or die 'verify did not finish';
    my $vid = $t->psql("SELECT id FROM jobs WHERE kind = 'verify' AND payload ->> 'backup' = '$bid'");
    $r{verify_s} = job_seconds($t, $vid);
    $r{verify} = $t->psql("SELECT verify_status FROM tenant_backups WHERE id = $bid");
    $r{backup_verify_s} = $t->psql("SELECT extract(epoch FROM (SELECT finished_at FROM jobs WHERE id = $vid)"
                                 . " - (SELECT created_at FROM jobs WHERE id = $job->{id}))");

    my $sum = $t->tenant_sql('big', 'SELECT sum(hashtext(name)) FROM items');
    $t->tenant_sql('big', 'DELETE FROM items WHERE id % 2 = 0');
    ($rc, $out) = $t->cli('restore', $bid, '--wait', '600');
    die "restore: $out" if $rc;
    $r{restore_s} = job_seconds($t, decode_json($out)->{id});
    $r{restored} = $t->tenant_sql('big', 'SELECT sum(hashtext(name)) FROM items') eq $sum ? 'identical' : 'DIFFERENT';
    $t->cleanup;
    return \%r;
}

# a fleet migration of $n tenants in waves of $wave, #$fail failing
sub bench_fleet {
    my (%o) = @_;
    my ($n, $wave, $fail) = ($o{tenants} // 1000, $o{wave} // 50, $o{fail} // 500);
    my $t = setup(workers => 2, ports => $n);
    my @names = map { sprintf 'f%04d', $_ } 1 .. $n;
    my $t0 = time;
    for my $name (@names) {
        my ($rc, $out) = $t->cli('create', $name, '--blueprint', 'dbapp');
        die "create $name: $out" if $rc;
    }
    Tenant::Test::wait_until(sub { $t->psql("SELECT count(*) FROM tenants WHERE status = 'active'") == $n }, 3600)
        or die 'the tenants did not all become active';
    my %r = (tenants => $n, wave => $wave, fail => $fail, create_s => time - $t0);
    for my $name (@names) {
        $t->tenant_sql($name, "CREATE TABLE items (id int PRIMARY KEY, name text);"
            . " INSERT INTO items SELECT g, 'x' || g FROM generate_series(1, 100) g");
    }
    $t->tenant_sql($names[$fail - 1], 'CREATE TABLE audit (x int)');

    $t0 = time;
    my ($rc, $out) = $t->cli('fleet-migrate', 'dbapp', '--wave', $wave, '--max-failures', '0');
    die "fleet-migrate: $out" if $rc;
    my $id = decode_json($out)->{id};
    Tenant::Test::wait_until(sub { $t->psql("SELECT status FROM fleet_migrations WHERE id = $id") ne 'running' }, 7200)
        or die 'the migration did not stop';
    $r{halt_s} = time - $t0;
    $r{halted} = $t->psql("SELECT status || ' after wave ' || wave FROM fleet_migrations WHERE id = $id");
    $r{migrated_before} = $t->psql("SELECT count(*) FROM fleet_tenants WHERE migration_id = $id AND status = 'migrated'");
    $r{rolled_back} = $t->psql("SELECT coalesce(string_agg(tenant_id, ','), '-') FROM fleet_tenants WHERE migration_id = $id AND status = 'rolled_back'");
    my $half = 0;
    for my $name (@names) {
        my $shape = $t->tenant_sql($name, "SELECT (SELECT count(*) FROM information_schema.columns WHERE table_name = 'items' AND column_name = 'tag')"
            . " || ',' || (SELECT count(*) FROM information_schema.columns WHERE table_name = 'audit' AND column_name = 'at')");
        $half++ if $shape eq '1,0' || $shape eq '0,1';
    }
    $r{half} = $half;

    $t->tenant_sql($names[$fail - 1], 'DROP TABLE audit');
    $t0 = time;
    ($rc, $out) = $t->cli('migration', $id, 'resume');
    die "resume: $out" if $rc;
    Tenant::Test::wait_until(sub { $t->psql("SELECT status FROM fleet_migrations WHERE id = $id") eq 'done' }, 7200)
        or die 'the migration did not finish';
    $r{resume_s} = time - $t0;
    $r{migrated} = $t->psql("SELECT count(*) FROM fleet_tenants WHERE migration_id = $id AND status = 'migrated'");
    $r{jobs} = $t->psql("SELECT count(*) FROM jobs WHERE kind = 'migrate'");
    $r{per_tenant_ms} = 1000 * ($r{halt_s} + $r{resume_s}) / ($n + 1);
    $t->cleanup;
    return \%r;
}

sub report {
    my ($d, $f) = @_;
    my $s = '';
    $s .= sprintf "backups, one tenant database of %.0f MB (%d rows), 1 worker:\n"
        . "- backup (pg_dump custom format, %.1f MB, tables counted in its snapshot, files tarred): %.1f s\n"
        . "- verify (restore into a scratch database, compare every table): %.1f s, %s; backup + verify: %.1f s (goal < 60 s)\n"
        . "- restore (new database, swap, restart): %.1f s (goal < 60 s); data %s\n",
        @{$d}{qw(db_mb rows dump_mb backup_s verify_s verify backup_verify_s restore_s restored)} if $d;
    $s .= sprintf "fleet migration, %d dbapp tenants (made in %.0f s), waves of %d, tenant #%d failing, 2 workers:\n"
        . "- %s in %.0f s: %d migrated, rolled back: %s; half-migrated: %d (goal 0)\n"
        . "- resumed to completion in %.0f s: %d migrated, %d migrate jobs (%d tenants + 1 retry); %.0f ms a tenant\n",
        @{$f}{qw(tenants create_s wave fail halted halt_s migrated_before rolled_back half resume_s migrated jobs tenants per_tenant_ms)} if $f;
    return $s;
}

1;
