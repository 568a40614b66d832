# The provisioner: full lifecycle through the admin API and through the
# CLI (create -> routed -> suspend -> resume -> delete), per-tenant
# databases and secrets, seed-admin, logs, shared mode, driver refusal.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use MIME::Base64;
use Tenant::Test;
use Tenant::Conf;
use Tenant::Blueprints;

my $t = Tenant::Test->new->start_pg;
$t->migrate;
$t->start_nginx(backends => ['shared1'], http => Tenant::Conf::http());
my $bps = Tenant::Blueprints::make($t, shared => "127.0.0.1:$t->{backend}{shared1}");
$t->start_provisioner(blueprints => $bps);
$t->{api_key} = $t->create_api_key('prov');

is($t->psql('SELECT string_agg(name, \',\' ORDER BY name) FROM blueprints'),
   'blog,dbapp,hookapp,sharedapp,static,static-shared', 'blueprints published to the registry');

# Tenants' directories are spread over the filesystem (ext4's Orlov
# allocator, for a directory marked a hierarchy top): without it, on ext4
# without a journal, each new file scanned past inodes deleted minutes ago.
# Filesystems without the flag (tmpfs) answer lsattr with an error.
{
    my $out = `lsattr -d $t->{state_dir} 2>&1`;
    my $fs = `stat -f -c %T $t->{state_dir}`;
    chomp $fs;
    if ($fs =~ /ext2|ext3|ext4/) {
        like($out, qr/^\S*T\S*\s/, "state_dir is marked a hierarchy top ($fs)");
    } else {
        unlike($out, qr/^\S*T\S*\s/, "state_dir on $fs: no top flag to set");
    }
}

# --- through the API -------------------------------------------------------
my $r = $t->api(POST => 'tenants?wait=30', { name => 'acme', blueprint => 'static', theme => 'electronics', display_name => 'Acme Gadgets' });
is($r->{status}, 200, 'API create ?wait: 200 when done');
is($r->{json}{job}{status}, 'done', 'job done') or diag explain $r->{json};
is($r->{json}{tenant}{status}, 'active', 'tenant active');
my $admin = $r->{json}{job}{result}{admin};
like($admin->{password} // '', qr/^[A-Za-z0-9]{20}$/, 'admin credentials in the create job result');

$r = $t->get('acme.localhost');
is($r->{status}, 200, 'acme.localhost: 200');
like($r->{body}, qr/<h1>Acme Gadgets<\/h1>/, 'the storefront shows the display name');
like($r->{body}, qr/theme-electronics/, 'in the chosen theme');
is($t->get('admin.acme.localhost')->{status}, 401, 'admin.acme.localhost asks for the login');
$r = $t->get('admin.acme.localhost', '/', headers => { Authorization => 'Basic ' . encode_base64("$admin->{email}:$admin->{password}", '') });
is($r->{status}, 200, 'the admin service opens with the generated login');
like($r->{body}, qr/store admin/, 'the admin page');

my @pids = $t->tenant_pids('acme');
is(scalar @pids, 2, 'two service processes run');
is($t->psql("SELECT count(*) FROM tenant_ports WHERE tenant_id = 'acme'"), 2, 'two ports recorded');

# seed-admin resets the login
$r = $t->api(POST => 'tenants/acme/seed-admin?wait=20', { email => 'boss@acme.test', password => 'Brand-new-pass-42' });
is($r->{json}{job}{status}, 'done', 'seed-admin done');
ok(Tenant::Test::wait_until(sub {
    $t->get('admin.acme.localhost', '/', headers => { Authorization => 'Basic ' . encode_base64('boss@acme.test:Brand-new-pass-42', '') })->{status} == 200 }, 5),
   'the new login opens the admin');
is($t->get('admin.acme.localhost', '/', headers => { Authorization => 'Basic ' . encode_base64("$admin->{email}:$admin->{password}", '') })->{status},
   401, 'the old one no longer does');
unlike($t->psql("SELECT payload::text FROM jobs WHERE kind = 'seed_admin'"), qr/Brand-new/, 'the registry forgot the new password');

# logs
$r = $t->api(GET => 'tenants/acme/logs?lines=5');
is($r->{status}, 200, 'logs: 200 once the provisioner answers');
ok(scalar @{ $r->{json}{job}{result}{lines} } >= 1, 'with lines of the services\' output');

# suspend / resume / delete
$r = $t->api(POST => 'tenants/acme/suspend?wait=20');
is($r->{json}{job}{status}, 'done', 'suspend done');
is($t->get('acme.localhost')->{status}, 503, 'suspended: 503');
ok(Tenant::Test::wait_until(sub { !$t->tenant_pids('acme') }, 5), 'suspended: processes stopped');
$r = $t->api(POST => 'tenants/acme/resume?wait=20');
is($r->{json}{job}{status}, 'done', 'resume done');
ok(Tenant::Test::wait_until(sub { $t->get('acme.localhost')->{status} == 200 }, 5), 'resumed: 200');
my @ports = split /\n/, $t->psql("SELECT port FROM tenant_ports WHERE tenant_id = 'acme'");
$r = $t->api(DELETE => 'tenants/acme?wait=20');
is($r->{json}{job}{status}, 'done', 'delete done');
ok(Tenant::Test::wait_until(sub { $t->get('acme.localhost')->{status} == 404 }, 5), 'deleted: 404');
is(scalar $t->tenant_pids('acme'), 0, 'processes gone');
ok(!-d "$t->{state_dir}/acme", 'tenant directory removed');
is($t->psql("SELECT count(*) FROM tenant_ports WHERE tenant_id = 'acme'"), 0, 'ports freed in the registry');
my $listening = 0;
for my $p (@ports) { $listening++ if IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $p) }
is($listening, 0, 'nothing listens on its ports any more');

# --- a tenant with a database, through the CLI -------------------------------
my ($rc, $out) = $t->cli('create', 'datashop', '--blueprint', 'dbapp', '--wait', '30');
is($rc, 0, 'CLI create --wait: exit 0') or diag $out;
like($out, qr/"status": "done"/, 'prints the finished job');
is($t->psql("SELECT count(*) FROM pg_database WHERE datname = 'tenant_datashop'"), 1, 'tenant database made');
is($t->psql("SELECT count(*) FROM pg_roles WHERE rolname = 'tenant_datashop'"), 1, 'tenant role made');
my $url = Tenant::Test::slurp("$t->{state_dir}/datashop/home/db_url");
like($url, qr{^postgresql://tenant_datashop:[A-Za-z0-9]{32}\@127\.0\.0\.1:\d+/tenant_datashop$}, 'the service got its database URL');
my ($pw) = $url =~ m{:([A-Za-z0-9]{32})\@};
($rc, $out) = Tenant::Test::run_cmd('/usr/bin/psql', '-X', '-At', '-d', $url, '-c', 'SELECT current_user');
is($out, "tenant_datashop\n", 'that URL logs in to the tenant database');
($rc, $out) = Tenant::Test::run_cmd('/usr/bin/psql', '-X', '-At', '-d', $url =~ s{/tenant_datashop$}{/tenant}r, '-c', 'SELECT 1');
isnt($rc, 0, 'the tenant role cannot even connect to the registry database');
unlike($t->psql("SELECT string_agg(encode(ciphertext, 'escape'), ' ') FROM tenant_secrets"), qr/\Q$pw\E/, 'the registry holds the password encrypted only');
is($t->psql("SELECT count(*) FROM tenant_secrets WHERE tenant_id = 'datashop'"), 2, 'two secrets: db_password and app_key');
is($t->psql("SELECT count(*) FROM tenant_secrets WHERE NOT bound"), 0, 'each secret is stored bound to its tenant and name');

# a secret in the unbound form written before migration 007: the provisioner
# re-encrypts it bound when it starts, and the tenant keeps its password
$t->stop_provisioner;
my $key = Tenant::Test::trim(Tenant::Test::slurp("$t->{dir}/prov/secret-key"));
my ($nonce, $ct) = split ' ', `$Tenant::Test::BUILD/t/test_secret unbound $key $pw`;
ok($nonce && $ct, 'an unbound secret made with the platform key');
$t->psql("UPDATE tenant_secrets SET nonce = '\\x$nonce', ciphertext = '\\x$ct', bound = false"
       . " WHERE tenant_id = 'datashop' AND name = 'db_password'");
$t->start_provisioner(blueprints => $bps);
ok(Tenant::Test::wait_until(sub { $t->provisioner_log =~ /bound 1 secret\(s\) to their tenant and name/ }, 10),
   'the provisioner binds it at start');
is($t->psql("SELECT bound::text || ' ' || (encode(ciphertext, 'hex') <> '$ct')::text FROM tenant_secrets"
          . " WHERE tenant_id = 'datashop' AND name = 'db_password'"), 'true true',
   'stored again, bound, under a new ciphertext');
like($t->get('datashop.localhost')->{body}, qr/runs on a database/, 'datashop routed');

($rc, $out) = $t->cli('suspend', 'datashop', '--wait');
is($rc, 0, 'CLI suspend: exit 0');
is($t->get('datashop.localhost')->{status}, 503, 'suspended through the CLI: answers 503');
($rc, $out) = $t->cli('suspend', 'datashop');
is($rc, 4, 'CLI suspend again: exit 4 (conflict)');
like($out, qr/datashop is suspended/, '... saying why');
($rc) = $t->cli('resume', 'datashop', '--wait');
is($rc, 0, 'CLI resume: exit 0');
ok(Tenant::Test::wait_until(sub { $t->get('datashop.localhost')->{status} == 200 }, 5), '200 again');
($rc, $out) = $t->cli('logs', 'datashop', '--lines', '5');
is($rc, 0, 'CLI logs: exit 0');
like($out, qr/^web \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \| /m, '... the service\'s lines, by service, each with its time');
($rc, $out) = $t->cli('list');
like($out, qr/^datashop\s+active\s+dbapp/m, 'CLI list shows it');
($rc, $out) = $t->cli('health');
like($out, qr/registry: ok/, 'CLI health');
is(Tenant::Test::slurp("$t->{state_dir}/datashop/home/db_url"), $url,
   'after the rebinding and a restart, the service has the same database URL');

# a ciphertext moved to another name of the tenant no longer decrypts
$t->psql("UPDATE tenant_secrets d SET nonce = a.nonce, ciphertext = a.ciphertext"
       . "  FROM tenant_secrets a WHERE d.tenant_id = 'datashop' AND d.name = 'db_password'"
       . "   AND a.tenant_id = 'datashop' AND a.name = 'app_key'");
($rc) = $t->cli('suspend', 'datashop', '--wait');
($rc, $out) = $t->cli('resume', 'datashop', '--wait');
like($out, qr/cannot decrypt secret db_password of datashop/,
     'a secret moved to another name does not decrypt: the job says which');
($rc) = $t->cli('delete', 'datashop', '--wait');
is($rc, 0, 'CLI delete: exit 0');
is($t->psql("SELECT count(*) FROM pg_database WHERE datname = 'tenant_datashop'"), 0, 'tenant database dropped');
is($t->psql("SELECT count(*) FROM pg_roles WHERE rolname = 'tenant_datashop'"), 0, 'tenant role dropped');
is($t->psql("SELECT count(*) FROM tenant_secrets"), 0, 'its secrets gone');
is($t->get('datashop.localhost')->{status}, 404, 'deleted through the CLI: answers 404');

# CLI errors: exit codes and messages naming the field
($rc, $out) = $t->cli('create', 'www', '--blueprint', 'static');
is($rc, 2, 'reserved name: exit 2');
like($out, qr/NAME: is reserved/, '... naming NAME');
($rc, $out) = $t->cli('create', 'fine-name');
is($rc, 2, 'no --blueprint: exit 2');
like($out, qr/--blueprint: is required/, '... naming --blueprint');
($rc, $out) = $t->cli('create', 'fine-name', '--blueprint', 'static', '--theme', 'neon');
is($rc, 2, 'unknown theme: exit 2');
like($out, qr/--theme/, '... naming --theme');
($rc, $out) = $t->cli('delete', 'nobody');
is($rc, 3, 'delete unknown: exit 3');
($rc, $out) = $t->cli('create', 'fine-name', '--blueprint', 'static', '--frobnicate', 'x');
is($rc, 2, 'unknown option: exit 2');
like($out, qr/--frobnicate: unknown option/, '... naming it');

# a blueprint the driver cannot run: refused at create, naming the drivers
($rc, $out) = $t->cli('create', 'bigshop', '--blueprint', 'blog', '--wait', '20');
is($rc, 2, 'blog (docker only) on the process driver: refused at create, exit 2');
like($out, qr/--blueprint: blueprint blog needs the docker driver; this platform's provisioners run process/,
     '... the error names the field and the drivers');
is($t->psql("SELECT count(*) FROM tenants WHERE id = 'bigshop'"), 0, 'no tenant was made');
# a job queued behind the API's back still fails for good, with the cause
$t->psql("INSERT INTO tenants (id, blueprint, status) VALUES ('bigshop', 'blog', 'provisioning');"
    . " INSERT INTO jobs (tenant_id, kind) VALUES ('bigshop', 'create')");
ok(Tenant::Test::wait_until(sub { $t->psql("SELECT status FROM jobs WHERE tenant_id = 'bigshop'") eq 'failed' }, 20),
   'a create queued by hand for it fails');
like($t->psql("SELECT error FROM jobs WHERE tenant_id = 'bigshop'"), qr/cannot run on the process driver/,
     '... the error names the driver');
is($t->psql("SELECT status FROM tenants WHERE id = 'bigshop'"), 'failed', 'tenant failed');
is($t->get('bigshop.localhost')->{status}, 404, 'failed tenant: 404');
is($t->psql("SELECT attempts FROM jobs WHERE tenant_id = 'bigshop'"), 1, 'not retried: it cannot succeed');

# shared mode: no processes, the shared runtime's endpoint, its own database
($rc, $out) = $t->cli('create', 'sharer', '--blueprint', 'sharedapp', '--mode', 'shared', '--wait', '20');
is($rc, 0, 'shared tenant created') or diag $out;
$r = $t->get('sharer.localhost');
like($r->{body}, qr/^shared1 .*tenant=sharer/, 'routed to the shared runtime, which is told the tenant by X-Tenant-ID');
is(scalar $t->tenant_pids('sharer'), 0, 'no processes of its own');
is($t->psql("SELECT count(*) FROM pg_database WHERE datname = 'tenant_sharer'"), 1, 'but its own database');

# the CLI mirrors the API: show, seed-admin, domains, jobs
($rc, $out) = $t->cli('create', 'acme', '--blueprint', 'static', '--wait', '30');
is($rc, 0, 'a tenant for the CLI\'s other verbs') or diag $out;
($rc, $out) = $t->cli('seed-admin', 'acme', '--email', 'first@acme.test', '--password', 'First-pass-1234', '--wait', '20');
($rc, $out) = $t->cli('show', 'acme');
is($rc, 0, 'show acme');
my $shown = eval { JSON::PP::decode_json($out) } // {};
is($shown->{name}, 'acme', '... its name');
is($shown->{status}, 'active', '... status');
ok(ref $shown->{endpoints} eq 'ARRAY' && @{ $shown->{endpoints} } >= 1, '... endpoints');
is($shown->{last_job}{kind}, 'seed_admin', '... and its last job');
($rc, $out) = $t->cli('show', 'nobody');
is($rc, 3, 'show an unknown tenant: exit 3');
($rc, $out) = $t->cli('seed-admin', 'acme', '--email', 'a:b@c.d', '--password', 'Long-enough-pass');
is($rc, 2, 'seed-admin with a colon in the email: exit 2');
like($out, qr/--email: must not contain/, '... naming --email');
($rc, $out) = $t->cli('seed-admin', 'acme', '--email', 'cli@acme.test', '--password', 'short');
like($out, qr/--password: must be 10-128/, 'a short password names --password');
($rc, $out) = $t->cli('seed-admin', 'acme', '--email', 'cli@acme.test', '--password', 'Cli-seeded-pass-7', '--wait', '20');
is($rc, 0, 'seed-admin through the CLI') or diag $out;
is(Tenant::Test::slurp("$t->{state_dir}/acme/home/admin-httpd.conf") =~ /^\/:cli\@acme\.test:/m ? 1 : 0, 1,
   '... wrote the new login');
($rc, $out) = $t->cli('domains', 'acme', 'add', 'shop.acme.test');
is($rc, 0, 'domains add') or diag $out;
is($t->get('shop.acme.test')->{status}, 200, '... and the domain routes');
($rc, $out) = $t->cli('domains', 'acme');
like($out, qr/^shop\.acme\.test site$/m, 'domains lists it');
($rc, $out) = $t->cli('domains', 'acme', 'add', 'shop.acme.test');
is($rc, 4, 'the same domain again: exit 4 (conflict)');
($rc, $out) = $t->cli('domains', 'acme', 'add', 'Not A Host');
is($rc, 2, 'a malformed host: exit 2');
($rc, $out) = $t->cli('domains', 'acme', 'remove', 'shop.acme.test');
is($rc, 0, 'domains remove');
is($t->get('shop.acme.test')->{status}, 404, '... and it no longer routes');
($rc, $out) = $t->cli('domains', 'acme', 'frobnicate', 'x');
is($rc, 2, 'an unknown domains subcommand: exit 2');
($rc, $out) = $t->cli('jobs', '--tenant', 'acme', '--limit', '5');
is($rc, 0, 'jobs --tenant acme');
like($out, qr/^ID\s+KIND\s+TENANT/m, '... a table');
like($out, qr/seed_admin\s+acme\s+done/, '... with the seed-admin job');
($rc, $out) = $t->cli('jobs', '--status', 'weird');
is($rc, 2, 'jobs --status weird: exit 2');
like($out, qr/--status: must be queued, running, done or failed/, '... saying what is valid');

# no secret in any log
my $logs = $t->provisioner_log . $t->error_log . Tenant::Test::slurp("$t->{ngxdir}/logs/access.log");
for my $secret ($admin->{password}, 'Brand-new-pass-42', $pw) {
    unlike($logs, qr/\Q$secret\E/, 'a secret is in no log (' . substr($secret, 0, 3) . '...)');
}

Tenant::Test::finish();
