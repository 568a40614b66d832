# The operator's dashboard in a real browser: Debian's chromium, headless,
# driven by puppeteer-core (npm, t/dashboard/package-lock.json) against a
# real edge, registry and provisioner. Sign in (a wrong password refused),
# create a tenant and read its credentials once, watch it go active
# without a reload, suspend, resume, delete with the name typed, a change
# without the CSRF token refused, sign out and the session refused.
# Screenshots of each page stay in build/dashboard-shots/.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use File::Copy qw(copy);
use File::Path qw(make_path remove_tree);
use Tenant::Test;
use Tenant::Conf;
use Tenant::Blueprints;

my $TOP = $Tenant::Test::TOP;
my $node = "$Tenant::Test::BUILD/dashboard-node";
my $shots = "$Tenant::Test::BUILD/dashboard-shots";

# puppeteer-core from the lock file, once per lock
my $lock = Tenant::Test::slurp("$TOP/t/dashboard/package-lock.json");
if (!-d "$node/node_modules/puppeteer-core" || (eval { Tenant::Test::slurp("$node/package-lock.json") } // '') ne $lock) {
    remove_tree($node);
    make_path($node);
    copy("$TOP/t/dashboard/$_", "$node/$_") or die "copy $_: $!" for qw(package.json package-lock.json);
    my ($rc, $out) = Tenant::Test::run_cmd('sh', '-c', "cd $node && npm ci --no-audit --no-fund --loglevel=error 2>&1");
    die "npm ci failed: $out" if $rc;
}
ok(-x '/usr/bin/chromium', 'Debian\'s chromium is installed (auto/deps)');

my $t = Tenant::Test->new->start_pg;
$t->migrate;
$t->start_nginx(backends => ['shared1'], http => Tenant::Conf::http(traffic => 'traffic:1m'));
my $bps = Tenant::Blueprints::make($t, shared => "127.0.0.1:$t->{backend}{shared1}");
$t->start_provisioner(blueprints => $bps);

my $pw = 'operator password 1';
my ($rc, $out) = Tenant::Test::run_cmd('sh', '-c', "printf '%s\\n' '$pw' | "
    . join(' ', map { Tenant::Test::shell_quote($_) } $Tenant::Test::PROVISIONER, '--db', $t->conninfo, 'users', 'add', 'ops'));
is($rc, 0, 'an operator, made with the CLI') or diag($out);

# what the edge serves the browser
my $r = $t->request(host => 'localhost', path => '/dashboard/');
is($r->{status}, 200, 'GET /dashboard/ on the platform host');
like($r->{headers}{'content-security-policy'} // '', qr/default-src 'none'; script-src 'self'; style-src 'self'/,
     '... with its Content-Security-Policy');
unlike($r->{body}, qr/<script>|<style>|\sstyle=|\son[a-z]+=/i, '... and nothing inline in the page');
for my $f (qw(app.js app.css)) {
    unlike(Tenant::Test::slurp("$TOP/dashboard/$f"), qr{https?://(?!www\.w3\.org/2000/svg)}, "$f loads nothing from elsewhere");
}

remove_tree($shots);
make_path($shots);
($rc, $out) = Tenant::Test::run_cmd('sh', '-c',
    "cd $node && NODE_PATH=$node/node_modules timeout 300 node $TOP/t/dashboard/drive.js "
    . "http://127.0.0.1:$t->{port} ops " . Tenant::Test::shell_quote($pw) . " $shots 2>&1");
my $checks = 0;
for my $line (split /\n/, $out) {
    my $c = eval { decode_json($line) };
    if (!$c) { diag($line); next; }
    $checks++;
    ok($c->{ok}, "browser: $c->{name}") or diag($c->{extra} // '');
}
ok($checks >= 30, "the browser made its checks ($checks)");
is($rc, 0, 'the drive ended cleanly');
for my $s (qw(signin tenants create-credentials tenant platform tenants-phone delete-confirm)) {
    ok(-s "$shots/$s.png", "screenshot $s.png");
}
is($t->psql(q{SELECT count(*) FROM audit_log WHERE actor = 'user:ops' AND action = 'tenant.create'}), 1,
   'the audit log names the operator for the create');

Tenant::Test::finish();
