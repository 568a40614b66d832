# The admin API can be discovered: what can be created (blueprints, and
# whether this platform can run each), jobs and the audit log (filtered,
# paginated), and an OpenAPI document that matches the routes served:
# every route documented, nothing documented that is not served.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use Tenant::Test;
use Tenant::Conf;

my $t = Tenant::Test->new->start_pg;
$t->migrate;
$t->start_nginx(backends => ['b1'], http => Tenant::Conf::http());
$t->psql(q{INSERT INTO blueprints (name, themes, modes, definition) VALUES
    ('static', '{default,fashion}', '{dedicated}', '{"drivers":["process","docker"],"description":"pages"}'),
    ('ecommerce', '{default}', '{dedicated}', '{"drivers":["docker"]}')});
$t->{api_key} = $t->create_api_key('tests');

# --- blueprints -----------------------------------------------------------------
my $r = $t->api(GET => 'blueprints');
is($r->{status}, 200, 'GET blueprints');
my %bp = map { $_->{name} => $_ } @{ $r->{json}{blueprints} };
is_deeply([ sort keys %bp ], [ qw(ecommerce static) ], 'lists every blueprint');
is_deeply($bp{static}{themes}, [ qw(default fashion) ], '... with its themes');
is_deeply($bp{static}{drivers}, [ qw(process docker) ], '... and the drivers that can run it');
is($bp{static}{description}, 'pages', '... and its description');
ok(!defined $bp{static}{runnable}, 'runnable unknown (null) while no provisioner has said its driver');
$t->psql(q{INSERT INTO provisioners (id, driver) VALUES ('p1', 'process')});
%bp = map { $_->{name} => $_ } @{ $t->api(GET => 'blueprints')->{json}{blueprints} };
ok($bp{static}{runnable}, 'static: runnable by this platform (process)');
ok(!$bp{ecommerce}{runnable}, 'ecommerce: not runnable (needs docker)');
is_deeply($t->api(GET => 'blueprints')->{json}{platform_drivers}, ['process'], 'the platform\'s drivers');
$r = $t->api(POST => 'tenants', { name => 'bigshop', blueprint => 'ecommerce' });
is($r->{status}, 422, 'a blueprint the platform cannot run is refused at create');
like($r->{json}{error}{message}, qr/needs the docker driver; this platform's provisioners run process/, '... naming the drivers');
is($r->{json}{error}{field}, 'blueprint', '... and the field');
is($t->psql("SELECT count(*) FROM tenants WHERE id = 'bigshop'"), 0, '... and nothing is made');

# --- jobs -------------------------------------------------------------------------
for my $i (1 .. 7) {
    is($t->api(POST => 'tenants', { name => "lister$i", blueprint => 'static' })->{status}, 202, "created lister$i");
}
$t->psql("UPDATE jobs SET status = 'failed', error = 'boom' WHERE tenant_id IN ('lister2', 'lister5')");
$r = $t->api(GET => 'jobs?limit=3');
is($r->{status}, 200, 'GET jobs');
is(scalar @{ $r->{json}{jobs} }, 3, 'a page of 3');
is($r->{json}{jobs}[0]{tenant}, 'lister7', 'newest first');
my @all = map { $_->{tenant} } @{ $r->{json}{jobs} };
while (defined(my $next = $r->{json}{next})) {
    $r = $t->api(GET => "jobs?limit=3&before=$next");
    push @all, map { $_->{tenant} } @{ $r->{json}{jobs} };
}
is_deeply(\@all, [ map { "lister$_" } reverse 1 .. 7 ], 'paging with next walks every job once');
$r = $t->api(GET => 'jobs?status=failed');
is_deeply([ sort map { $_->{tenant} } @{ $r->{json}{jobs} } ], [ qw(lister2 lister5) ], 'filtered by status');
$r = $t->api(GET => 'jobs?tenant=lister3');
is(scalar @{ $r->{json}{jobs} }, 1, 'filtered by tenant');
is($r->{json}{jobs}[0]{kind}, 'create', '... its create job');
ok(!exists $r->{json}{jobs}[0]{payload}, 'payloads (which may hold passwords) are never shown');
for my $bad ('status=odd', 'limit=0', 'limit=101', 'before=x', 'tenant=Bad_Name') {
    $r = $t->api(GET => "jobs?$bad");
    is($r->{status}, 400, "jobs?$bad: 400");
    like($r->{json}{error}{message}, qr/must be/, '... saying what would be valid');
}

# --- audit --------------------------------------------------------------------------
$r = $t->api(GET => 'audit?limit=5');
is($r->{status}, 200, 'GET audit');
is(scalar @{ $r->{json}{entries} }, 5, 'a page of 5');
is($r->{json}{entries}[0]{action}, 'tenant.create', 'newest first: the last create');
is($r->{json}{entries}[0]{tenant}, 'lister7', '... of lister7');
like($r->{json}{entries}[0]{actor}, qr/^key:/, '... by the key');
my $n = 5;
while (defined(my $next = $r->{json}{next})) {
    $r = $t->api(GET => "audit?limit=5&before=$next");
    $n += @{ $r->{json}{entries} };
}
is($n, $t->psql('SELECT count(*) FROM audit_log'), 'paging walks the whole log');
is(scalar @{ $t->api(GET => 'audit?tenant=lister4')->{json}{entries} }, 1, 'filtered by tenant');
is($t->api(GET => 'audit', undef, nokey => 1)->{status}, 401, 'the audit log needs a key');

# --- OpenAPI ---------------------------------------------------------------------------
$r = $t->api(GET => 'openapi.json', undef, nokey => 1);
is($r->{status}, 200, 'GET openapi.json, no key needed');
my $doc = $r->{json};
like($doc->{openapi} // '', qr/^3\./, 'an OpenAPI 3 document');
my %documented;
for my $path (keys %{ $doc->{paths} }) {
    for my $method (grep { /^(get|post|delete)$/ } keys %{ $doc->{paths}{$path} }) {
        $documented{uc($method) . ' ' . ($path =~ s/\{[^}]+\}/*/gr =~ s{^/}{}r)} = $path;
    }
}

# the routes the module serves, from its route table
my $src = Tenant::Test::slurp("$Tenant::Test::TOP/ngx_tenant_module/ngx_http_tenant_api_actions.c");
my %served;
my @pairs = $src =~ /\{\s*NGX_HTTP_(GET|POST|DELETE),\s*"([^"]+)"/g;
while (my ($m, $p) = splice @pairs, 0, 2) { $served{"$m $p"} = 1 }
ok(scalar(keys %served) >= 18, scalar(keys %served) . ' routes in the module\'s table');
my @undocumented = grep { !$documented{$_} } sort keys %served;
is_deeply(\@undocumented, [], 'every route the module serves is documented');
my @unserved = grep { !$served{$_} } sort keys %documented;
is_deeply(\@unserved, [], 'every documented route is in the module\'s table');

# and each documented route answers as a route (not 404 not_found, not 405)
my $job = $t->psql("SELECT id FROM jobs ORDER BY id LIMIT 1");
for my $route (sort keys %documented) {
    my ($method, $path) = split / /, $route, 2;
    $path =~ s{tenants/\*/domains/\*}{tenants/lister1/domains/nothere.example.com};
    $path =~ s{tenants/\*}{tenants/lister1};
    $path =~ s{jobs/\*}{jobs/$job};
    $path =~ s{(backups|migrations)/\*}{$1/999999};
    my $body = $method eq 'POST' ? {} : undef;
    $r = $t->api($method => $path, $body);
    ok($r->{status} != 405 && !($r->{status} == 404 && ($r->{json}{error}{code} // '') eq 'not_found'),
       "$method /api/$path is served ($r->{status})");
}
$r = $t->api(GET => 'no-such-thing');
is($r->{json}{error}{code}, 'not_found', 'an undocumented path is not found (the check above can fail)');

Tenant::Test::finish();
