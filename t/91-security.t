# Security: API keys kept only as hashes; no secret in any log or later
# answer; isolation over 1,000 random tenants; the authority nginx routes
# by; tenant names that could inject a header, a path or SQL.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Digest::SHA qw(sha256_hex);
use Tenant::Test;
use Tenant::Conf;
use Tenant::Blueprints;

my $t = Tenant::Test->new->start_pg;
$t->psql("ALTER SYSTEM SET log_statement = 'all'");
$t->restart_pg;
$t->migrate;
my @be = map { "be$_" } 1 .. 50;
$t->start_nginx(backends => \@be, http => Tenant::Conf::http());
my $b = $t->{backend};

# --- keys are kept as hashes ----------------------------------------------------------
my $key = $t->create_api_key('sec');
$t->{api_key} = $key;
my ($id, $secret) = $key =~ /^tk_([0-9a-f]{16})_(.+)$/;
is($t->psql("SELECT encode(key_hash, 'hex') FROM api_keys WHERE id = '$id'"), sha256_hex($secret), 'the registry holds SHA-256 of the secret');
my $dump = $t->psql("SELECT string_agg(t::text, ' ') FROM api_keys t");
unlike($dump, qr/\Q$secret\E/, 'and never the secret itself');

# --- secrets in logs and answers ----------------------------------------------------------
my $bps = Tenant::Blueprints::make($t);
$t->start_provisioner(blueprints => $bps);
my $r = $t->api(POST => 'tenants?wait=30', { name => 'vault', blueprint => 'dbapp' });
is($r->{json}{job}{status}, 'done', 'a tenant with a database');
$r = $t->api(POST => 'tenants?wait=30', { name => 'gate', blueprint => 'static' });
my $admin_pw = $r->{json}{job}{result}{admin}{password};
ok($admin_pw, 'its admin password, handed out once');
my $db_url = Tenant::Test::slurp("$t->{state_dir}/vault/home/db_url");
my ($db_pw) = $db_url =~ m{:([A-Za-z0-9]{32})\@};
ok($db_pw, 'the database password the service was given');
my $seed_pw = 'Seeded-Secret-77';
$t->api(POST => 'tenants/gate/seed-admin?wait=20', { email => 'x@gate.test', password => $seed_pw });

my $answers = join "\n", map { $t->api(GET => $_)->{body} }
    'tenants', 'tenants/vault', 'tenants/gate', 'stores-status',
    map { "jobs/$_" } split /\n/, $t->psql('SELECT id FROM jobs');
my $ours = join "\n", $t->error_log, Tenant::Test::slurp("$t->{ngxdir}/logs/access.log"),
    $t->provisioner_log;
my $pglog = Tenant::Test::slurp("$t->{pgdir}/log");
like($pglog, qr/tenant_create/, 'the PostgreSQL log holds every statement and its parameters (log_statement = all)');
for my $s ([$secret, 'API key'], [$admin_pw, 'admin password'], [$db_pw, 'database password'], [$seed_pw, 'seeded password']) {
    unlike($ours, qr/\Q$s->[0]\E/, "no $s->[1] in the nginx or provisioner logs");
    unlike($answers, qr/\Q$s->[0]\E/, "no $s->[1] in later API answers");
}
# The API key (hashed by nginx) and the database password (encrypted, and a
# SCRAM verifier for the server) never reach PostgreSQL in clear. The admin
# passwords pass through the registry by design (until first read, until
# used), so statement logging, which only a DBA can enable, shows them.
unlike($pglog, qr/\Q$secret\E/, 'no API key even in the PostgreSQL statement log');
unlike($pglog, qr/\Q$db_pw\E/, 'no database password even in the PostgreSQL statement log');
unlike($t->psql("SELECT string_agg(t::text, ' ') FROM tenant_secrets t"), qr/\Q$db_pw\E/, 'the registry holds the database password encrypted');

# --- isolation over 1,000 random tenants ------------------------------------------------------
$t->psql("INSERT INTO tenants (id, blueprint, status) SELECT 'iso' || g, 'static', 'active' FROM generate_series(1, 1000) g");
my $values = join ',', map { my $p = $b->{'be' . (1 + $_ % 50)}; "('iso$_', 'site', '127.0.0.1:$p')" } 1 .. 1000;
$t->psql("INSERT INTO tenant_endpoints (tenant_id, role, address) VALUES $values");
my ($right, $wrong) = (0, 0);
srand(1000);
for (1 .. 2000) {
    my $n = 1 + int rand 1000;
    my $r = $t->get("iso$n.localhost");
    my $want = 'be' . (1 + $n % 50);
    if ($r->{body} =~ /^\Q$want\E conn=\d+ tenant=iso$n$/m) { $right++ } else { $wrong++; diag("iso$n: $r->{body}") if $wrong < 5 }
}
is($wrong, 0, "2,000 requests over 1,000 tenants: each reached its own endpoint with its own X-Tenant-ID ($right)");

# --- the authority nginx uses ---------------------------------------------------------------------
$r = $t->request(raw => "GET http://iso7.localhost/ HTTP/1.1\r\nHost: iso8.localhost\r\nConnection: close\r\n\r\n");
like($r->{body}, qr/tenant=iso7$/m, 'absolute URI and Host disagree: routed by the URI, as $host is');
$r = $t->request(raw => "GET http://iso7.localhost:99999/ HTTP/1.1\r\nHost: iso8.localhost\r\nConnection: close\r\n\r\n");
is($r->{status}, 400, 'a bad port in the absolute URI: 400');
$r = $t->request(raw => "GET / HTTP/1.1\r\nHost: iso7.localhost\r\nHost: iso8.localhost\r\nConnection: close\r\n\r\n");
is($r->{status}, 400, 'two Host headers: 400 (nginx), never one tenant or the other');

# --- names cannot inject ---------------------------------------------------------------------------
my $r0 = $t->api(POST => 'tenants', { name => "evil\x00x", blueprint => 'static' });
is($r0->{status}, 400, 'a NUL byte in a name: 400, the JSON itself is refused');
for my $name ("evil\r\nX-Injected: 1", 'evil/../../etc', "evil'; DROP TABLE tenants;--", 'evil%0d%0a') {
    my $r = $t->api(POST => 'tenants', { name => $name, blueprint => 'static' });
    is($r->{status}, 422, 'API refuses the name ' . ($name =~ s/[^\x20-\x7e]/?/gr));
    my ($rc) = $t->cli('create', $name, '--blueprint', 'static');
    is($rc, 2, '... and so does the CLI');
    my ($ok) = $t->try_psql("INSERT INTO tenants (id, blueprint) VALUES (" . $t->psql('SELECT quote_literal($q$' . $name . '$q$)') . ", 'static')");
    ok(!$ok, '... and so does the registry, whoever writes');
}
is($t->psql('SELECT count(*) FROM tenants WHERE id LIKE \'evil%\''), 0, 'no such tenant exists');
$r = $t->get('iso1.localhost');
ok(!exists $r->{headers}{'x-injected'}, 'no injected header anywhere');

Tenant::Test::finish();
