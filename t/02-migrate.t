# provisioner migrate: applies on an empty database, a second run changes
# nothing, and the schema keeps bad rows out.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Tenant::Test;

my $t = Tenant::Test->new->start_pg;

my $out = $t->migrate;
like($out, qr/migrations: [1-9]\d* applied/, 'first run applies migrations');

my $tables = $t->psql("SELECT string_agg(tablename, ',' ORDER BY tablename)"
    . " FROM pg_tables WHERE schemaname = 'public'");
for my $want (qw(api_keys audit_log jobs schema_version tenant_endpoints
                 tenant_hosts tenants)) {
    like(",$tables,", qr/,$want,/, "table $want exists");
}

my $schema = sub {
    my ($rc, $dump) = Tenant::Test::run_cmd("$Tenant::Test::PGBIN/pg_dump",
        '--schema-only', '-d', $t->conninfo);
    die $dump if $rc;
    # pg_dump wraps its output in \restrict lines with a random token
    $dump =~ s/^\\(?:un)?restrict .*$//mg;
    return $dump;
};
my $before = $schema->();
my $versions = $t->psql('SELECT string_agg(version::text, \',\' ORDER BY version) FROM schema_version');

$out = $t->migrate;
like($out, qr/migrations: 0 applied/, 'second run applies nothing');
is($schema->(), $before, 'second run leaves the schema unchanged');
is($t->psql('SELECT string_agg(version::text, \',\' ORDER BY version) FROM schema_version'),
   $versions, 'schema_version unchanged');

# concurrent runs serialise on the advisory lock
my @pids = map { my $p = fork // die; if (!$p) { my ($rc) = $t->provisioner('migrate'); exit $rc } $p } 1 .. 3;
my $fails = 0;
for (@pids) { waitpid $_, 0; $fails++ if $? }
is($fails, 0, 'three concurrent migrate runs all succeed');

# constraints keep bad rows out
my @bad = (
    [ "INSERT INTO tenants (id, blueprint, status) VALUES ('acme', 'static', 'bogus')", 'unknown tenant status' ],
    [ "INSERT INTO tenants (id, blueprint) VALUES ('Acme', 'static')", 'uppercase tenant name' ],
    [ "INSERT INTO tenants (id, blueprint) VALUES ('a--b', 'static')", 'double hyphen in name' ],
    [ "INSERT INTO tenants (id, blueprint) VALUES ('-ab', 'static')", 'leading hyphen' ],
    [ "INSERT INTO tenants (id, blueprint) VALUES ('ab', 'static')", 'name too short' ],
    [ "INSERT INTO tenants (id, blueprint, mode) VALUES ('acme2', 'static', 'weird')", 'unknown mode' ],
    [ "INSERT INTO tenant_hosts (host, tenant_id) VALUES ('shop.acme.com', 'nobody')", 'host of a missing tenant' ],
    [ "INSERT INTO jobs (kind) VALUES ('explode')", 'unknown job kind' ],
    [ "INSERT INTO jobs (kind, status) VALUES ('create', 'maybe')", 'unknown job status' ],
);
$t->psql("INSERT INTO tenants (id, blueprint, status) VALUES ('acme', 'static', 'active')");
for my $b (@bad) {
    my ($ok) = $t->try_psql($b->[0]);
    ok(!$ok, "rejected: $b->[1]");
}

$t->psql("INSERT INTO tenant_hosts (host, tenant_id) VALUES ('shop.acme.com', 'acme')");
my ($ok, $err) = $t->try_psql("INSERT INTO tenant_hosts (host, tenant_id) VALUES ('shop.acme.com', 'acme')");
ok(!$ok, 'duplicate host rejected');
like($err, qr/duplicate key/, 'with a duplicate key error');
($ok) = $t->try_psql("INSERT INTO tenant_hosts (host, tenant_id) VALUES ('Shop.Acme.com', 'acme')");
ok(!$ok, 'host not in normal form rejected');
($ok) = $t->try_psql("INSERT INTO tenant_endpoints (tenant_id, role, address) VALUES ('acme', 'site', 'example.com:80')");
ok(!$ok, 'endpoint that is a name, not an address, rejected');
($ok) = $t->try_psql("INSERT INTO tenant_endpoints (tenant_id, role, address) VALUES ('acme', 'db', '127.0.0.1:80')");
ok(!$ok, 'unknown endpoint role rejected');
($ok) = $t->try_psql("INSERT INTO tenant_endpoints (tenant_id, role, address) VALUES ('acme', 'site', '127.0.0.1:80')");
ok($ok, 'a good endpoint is accepted');

# deleting a tenant takes its hosts and endpoints with it
$t->psql("DELETE FROM tenants WHERE id = 'acme'");
is($t->psql("SELECT count(*) FROM tenant_hosts") + $t->psql("SELECT count(*) FROM tenant_endpoints"),
   0, 'hosts and endpoints cascade on tenant delete');

done_testing();
