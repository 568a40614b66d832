# The admin API: every endpoint, every error class, the aliases, audit rows,
# idempotent retries and ?wait.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use Tenant::Test;
use Tenant::Conf;

my $t = Tenant::Test->new->start_pg;
$t->migrate;
$t->start_nginx(backends => ['b1', 'b2'], http => Tenant::Conf::http());
my $b = $t->{backend};
$t->psql(q{INSERT INTO blueprints (name, themes, modes) VALUES
    ('static', '{default,fashion,electronics,minimal}', '{dedicated,shared}'),
    ('blog', '{default}', '{dedicated}')});
$t->{api_key} = $t->create_api_key('tests');

# a stand-in for the provisioner: finish a job from another process
sub finish_job_later {
    my ($id, $delay, $status, $result) = @_;
    my $pid = fork // die;
    return $pid if $pid;
    sleep $delay;
    $t->psql("UPDATE jobs SET status = '$status', finished_at = now(), result = '$result' WHERE id = $id");
    POSIX::_exit(0);
}

# --- health and auth -----------------------------------------------------------
my $r = $t->api(GET => 'health', undef, nokey => 1);
is($r->{status}, 200, 'GET /health needs no key');
is($r->{json}{registry}{status}, 'ok', 'health reports the registry');

$r = $t->api(GET => 'tenants', undef, nokey => 1);
is($r->{status}, 401, 'no key: 401');
is($r->{json}{error}{code}, 'unauthorized', '... JSON error');
$r = $t->api(GET => 'tenants', undef, headers => { Authorization => 'Bearer tk_0123456789abcdef_' . ('A' x 43) });
is($r->{status}, 401, 'unknown key: 401');
(my $wrong = $t->{api_key}) =~ s/.$/substr($t->{api_key}, -1) eq 'A' ? 'B' : 'A'/e;
is($t->api(GET => 'tenants', undef, headers => { Authorization => "Bearer $wrong" })->{status}, 401,
   'right id, wrong secret: 401');
is($t->api(GET => 'tenants', undef, headers => { Authorization => 'Bearer nonsense' })->{status}, 401, 'malformed key: 401');
is($t->api(GET => 'tenants', undef, nokey => 1, headers => { 'X-API-Key' => $t->{api_key} })->{status}, 200,
   'X-API-Key works too');
my $other = $t->create_api_key('to-revoke');
my ($other_id) = $other =~ /^tk_([0-9a-f]{16})_/;
is($t->api(GET => 'tenants', undef, headers => { Authorization => "Bearer $other" })->{status}, 200, 'second key works');
$t->provisioner('apikey', 'revoke', $other_id);
$r = $t->api(GET => 'tenants', undef, headers => { Authorization => "Bearer $other" });
is($r->{status}, 403, 'revoked key refused at once: 403');
is($r->{json}{error}{code}, 'key_revoked', '... key_revoked');
unlike($t->psql('SELECT string_agg(encode(key_hash, \'hex\'), \',\') FROM api_keys'), qr/\Q$t->{api_key}\E/,
   'the registry holds hashes, not keys');

# --- create ---------------------------------------------------------------------
$r = $t->api(POST => 'tenants', { name => 'acme', blueprint => 'static', theme => 'fashion', display_name => 'Acme Inc.' });
is($r->{status}, 202, 'POST /tenants: 202');
my $job = $r->{json}{job}{id};
ok($job, 'a job');
is($r->{json}{job}{kind}, 'create', 'create job');
is($r->{json}{tenant}{name}, 'acme', 'tenant in the answer');
is($r->{json}{tenant}{status}, 'provisioning', 'tenant provisioning');
is($r->{headers}{location}, "/api/jobs/$job", 'Location header');
is($t->psql("SELECT count(*) FROM audit_log WHERE action = 'tenant.create' AND tenant_id = 'acme'"), 1, 'audit row');
is($t->psql("SELECT actor FROM audit_log WHERE tenant_id = 'acme'"), "key:" . substr($t->{api_key}, 3, 16), 'audit names the key');
is($t->psql("SELECT display_name || '/' || theme || '/' || mode FROM tenants WHERE id = 'acme'"), 'Acme Inc./fashion/dedicated', 'row written');

$r = $t->api(POST => 'tenants', { name => 'acme', blueprint => 'static' });
is($r->{status}, 409, 'duplicate name: 409');
is($r->{json}{error}{field}, 'name', '... field name');

my @bad = (
    [{ blueprint => 'static' }, 'name', 'missing name'],
    [{ name => 'www', blueprint => 'static' }, 'name', 'reserved name'],
    [{ name => 'admin', blueprint => 'static' }, 'name', 'reserved admin'],
    [{ name => 'a--b', blueprint => 'static' }, 'name', 'double hyphen'],
    [{ name => '-abc', blueprint => 'static' }, 'name', 'leading hyphen'],
    [{ name => 'abc-', blueprint => 'static' }, 'name', 'trailing hyphen'],
    [{ name => 'ab', blueprint => 'static' }, 'name', 'too short'],
    [{ name => 'a' x 31, blueprint => 'static' }, 'name', 'too long'],
    [{ name => 'Acme', blueprint => 'static' }, 'name', 'uppercase'],
    [{ name => "acme2\n", blueprint => 'static' }, 'name', 'trailing newline'],
    [{ name => 'acme2', blueprint => 'nosuch' }, 'blueprint', 'unknown blueprint'],
    [{ name => 'acme2', blueprint => 'static', theme => 'neon' }, 'theme', 'theme not in blueprint'],
    [{ name => 'acme2', blueprint => 'blog', mode => 'shared' }, 'mode', 'mode not in blueprint'],
    [{ name => 'acme2', blueprint => 'static', mode => 'both' }, 'mode', 'unknown mode'],
    [{ name => 123, blueprint => 'static' }, 'name', 'number as name'],
    [{ name => ['acme2'], blueprint => 'static' }, 'name', 'array as name'],
    [{ name => 'acme2', blueprint => 'static', colour => 'red' }, 'colour', 'unknown field'],
);
for my $c (@bad) {
    my $r = $t->api(POST => 'tenants', $c->[0]);
    is($r->{status}, 422, "$c->[2]: 422");
    is($r->{json}{error}{field}, $c->[1], "$c->[2]: names field $c->[1]");
}
is($t->api(POST => 'tenants', '{"name": "x"', )->{status}, 400, 'invalid JSON: 400');
is($t->api(POST => 'tenants', '[1,2]')->{status}, 400, 'not an object: 400');
is($t->api(POST => 'tenants', '{"name":"acme2","name":"acme3","blueprint":"static"}')->{status}, 400, 'duplicate keys: 400');
$r = $t->api(POST => 'tenants', '{"name":"acme2","blueprint":"static"}', headers => { 'Content-Type' => 'text/plain' });
is($r->{status}, 415, 'wrong content type: 415');
$r = $t->api(POST => 'tenants', '{"name":"acme2","blueprint":"static","display_name":"' . ('x' x 70000) . '"}');
is($r->{status}, 413, 'body over 64 KiB: 413');
is($r->{json}{error}{code}, 'body_too_large', '... JSON error');
is($t->psql("SELECT count(*) FROM tenants WHERE id = 'acme2'"), 0, 'no refused create wrote a tenant');

# --- read ------------------------------------------------------------------------
$r = $t->api(GET => 'tenants/acme');
is($r->{status}, 200, 'GET /tenants/acme');
is($r->{json}{tenant}{last_job}{id}, $job, 'with its last job');
is($t->api(GET => 'tenants/nobody')->{status}, 404, 'unknown tenant: 404');
is($t->api(GET => 'tenants/..%2F..%2Fetc')->{status}, 404, 'path traversal in a name: 404');

$t->api(POST => 'tenants', { name => "page$_", blueprint => 'static' }) for 1 .. 4;
$r = $t->api(GET => 'tenants?limit=2');
is(scalar @{ $r->{json}{tenants} }, 2, 'limit=2 gives 2');
is($r->{json}{next}, 'page1', 'next cursor');
$r = $t->api(GET => "tenants?limit=2&after=$r->{json}{next}");
is_deeply([ map { $_->{name} } @{ $r->{json}{tenants} } ], ['page2', 'page3'], 'next page');
$r = $t->api(GET => 'tenants?limit=100');
is($r->{json}{next}, undef, 'last page has no next');
is(scalar @{ $r->{json}{tenants} }, 5, 'all 5 tenants');
is($t->api(GET => 'tenants?limit=0')->{status}, 400, 'limit=0: 400');
is($t->api(GET => 'tenants?limit=abc')->{status}, 400, 'limit=abc: 400');
is($t->api(GET => "tenants?after=%27%3B--")->{status}, 400, 'bad cursor: 400');

# --- jobs and ?wait ----------------------------------------------------------------
$r = $t->api(GET => "jobs/$job");
is($r->{status}, 200, 'GET /jobs/{id}');
is($r->{json}{job}{status}, 'queued', 'queued');
is($t->api(GET => 'jobs/999999')->{status}, 404, 'unknown job: 404');
is($t->api(GET => 'jobs/abc')->{status}, 404, 'non-numeric job: 404');

my $t0 = time;
$r = $t->api(GET => "jobs/$job?wait=1");
my $took = time - $t0;
is($r->{json}{job}{status}, 'queued', '?wait times out cleanly with the job as it is');
ok($took >= 0.9 && $took < 3 * $Tenant::Test::SLOW, sprintf('... after about 1 s (%.2f s)', $took));
is($t->api(GET => "jobs/$job?wait=61")->{status}, 400, 'wait over 60: 400');

# the create job finishes with admin credentials: shown once
my $pid = finish_job_later($job, 0.5, 'done', '{"admin":{"email":"owner@acme.test","password":"S3cret-once-only"},"url":"http://acme.localhost"}');
$t0 = time;
$r = $t->api(GET => "jobs/$job?wait=10");
$took = time - $t0;
waitpid $pid, 0;
is($r->{status}, 200, '?wait returns when the job finishes');
ok($took < 5 * $Tenant::Test::SLOW, sprintf('... in %.2f s, woken by job_done', $took));
is($r->{json}{job}{status}, 'done', 'done');
is($r->{json}{job}{result}{admin}{password}, 'S3cret-once-only', 'admin password in the first answer');
$r = $t->api(GET => "jobs/$job");
ok(!exists $r->{json}{job}{result}{admin}{password}, 'and never again');
is($r->{json}{job}{result}{admin}{email}, 'owner@acme.test', 'the email stays');
unlike($t->psql("SELECT result::text FROM jobs WHERE id = $job"), qr/S3cret/, 'the registry no longer holds it');

# eight readers at once: exactly one of them is shown the password
$t->psql(qq{UPDATE jobs SET result = '{"admin":{"email":"owner\@acme.test","password":"Only-one-of-8"}}', revealed_at = NULL WHERE id = $job});
my @readers;
for my $i (1 .. 8) {
    my $rp = fork // die;
    if (!$rp) {
        my $x = $t->api(GET => "jobs/$job");
        Tenant::Test::write_file($t->dir . "/reader$i", "$x->{status} " . ($x->{json}{job}{result}{admin}{password} // '-'));
        POSIX::_exit(0);
    }
    push @readers, $rp;
}
waitpid $_, 0 for @readers;
my @seen = map { Tenant::Test::slurp($t->dir . "/reader$_") } 1 .. 8;
is(scalar(grep { /^200 / } @seen), 8, 'all eight answered 200');
is(scalar(grep { /Only-one-of-8/ } @seen), 1, 'the password in exactly one answer');
unlike($t->psql("SELECT result::text FROM jobs WHERE id = $job"), qr/Only-one/, 'and gone from the registry');

# create with ?wait
$pid = fork // die;
if (!$pid) {
    for (1 .. 100) {
        my $id = $t->psql("SELECT id FROM jobs WHERE tenant_id = 'waiter' AND kind = 'create'");
        if ($id) { sleep 0.3; $t->psql("UPDATE jobs SET status = 'done', finished_at = now() WHERE id = $id"); last }
        sleep 0.05;
    }
    POSIX::_exit(0);
}
$r = $t->api(POST => 'tenants?wait=10', { name => 'waiter', blueprint => 'static' });
waitpid $pid, 0;
is($r->{status}, 200, 'POST ?wait=10: 200 once the job is done');
is($r->{json}{job}{status}, 'done', '... job done');

# --- lifecycle -------------------------------------------------------------------------
$t->psql("UPDATE tenants SET status = 'active' WHERE id = 'acme';"
    . " INSERT INTO tenant_endpoints (tenant_id, role, address) VALUES ('acme', 'site', '127.0.0.1:$b->{b1}')");
is($t->get('acme.localhost')->{status}, 200, 'acme routed');
$r = $t->api(POST => 'tenants/acme/suspend');
is($r->{status}, 202, 'suspend: 202');
is($r->{json}{tenant}{status}, 'suspended', 'tenant suspended at once');
ok(Tenant::Test::wait_until(sub { $t->get('acme.localhost')->{status} == 503 }, 2), 'routing answers 503 at once');
is($t->api(POST => 'tenants/acme/suspend')->{status}, 409, 'suspend again: 409');
$r = $t->api(POST => 'tenants/acme/resume');
is($r->{status}, 202, 'resume: 202');
is($r->{json}{job}{kind}, 'resume', 'resume job');
$r = $t->api(POST => 'tenants/acme/resume');
is($r->{status}, 409, 'resume while a resume is pending: 409');
is($r->{json}{error}{code}, 'job_pending', '... job_pending');
is($t->api(POST => 'tenants/nobody/suspend')->{status}, 404, 'suspend unknown: 404');
is($t->api(GET => 'tenants/acme/suspend')->{status}, 405, 'GET on a POST route: 405');

# seed-admin: the password goes to the job only, never to answers or audit
$r = $t->api(POST => 'tenants/acme/seed-admin', { email => 'boss@acme.test', password => 'Correct-Horse-9' });
is($r->{status}, 202, 'seed-admin: 202');
unlike($r->{body}, qr/Correct-Horse/, 'password not in the answer');
unlike($t->psql("SELECT string_agg(detail::text, ' ') FROM audit_log"), qr/Correct-Horse/, 'password not in the audit log');
unlike($t->api(GET => "jobs/$r->{json}{job}{id}")->{body}, qr/Correct-Horse/, 'nor in the job as read back');
is($t->api(POST => 'tenants/acme/seed-admin', { email => 'not-an-email', password => 'Correct-Horse-9' })->{json}{error}{field}, 'email', 'bad email: field email');
is($t->api(POST => 'tenants/acme/seed-admin', { email => 'a@b.test', password => 'short' })->{json}{error}{field}, 'password', 'short password: field password');

# logs: answered by the provisioner; without one, ?wait ends with 202
$r = $t->api(GET => 'tenants/acme/logs?lines=5&wait=1');
is($r->{status}, 202, 'logs without a provisioner: 202 after the wait');
is($r->{json}{job}{kind}, 'logs', 'a logs job');
is($t->api(GET => 'tenants/acme/logs?lines=0')->{status}, 400, 'lines=0: 400');

# custom domains
$r = $t->api(POST => 'tenants/acme/domains', { host => 'Shop.Acme.COM' });
is($r->{status}, 201, 'add a domain: 201');
is($r->{json}{domain}{host}, 'shop.acme.com', 'normalised');
ok(Tenant::Test::wait_until(sub { $t->get('shop.acme.com')->{status} == 503 }, 2), 'the domain routes to acme (suspended: 503)');
is($t->api(POST => 'tenants/page1/domains', { host => 'shop.acme.com' })->{status}, 409, 'domain taken: 409');
is($t->api(POST => 'tenants/acme/domains', { host => 'page1.localhost' })->{json}{error}{field}, 'host', 'a platform host is refused');
is($t->api(POST => 'tenants/acme/domains', { host => '127.0.0.1' })->{status}, 422, 'an IP: 422');
is($t->api(POST => 'tenants/acme/domains', { host => 'bad..host' })->{status}, 422, 'malformed: 422');
is($t->api(POST => 'tenants/acme/domains', { host => 'shop.acme.com:8080' })->{status}, 422, 'with a port: 422');
is($t->api(DELETE => 'tenants/acme/domains/shop.acme.com')->{status}, 200, 'remove a domain');
is($t->api(DELETE => 'tenants/acme/domains/shop.acme.com')->{status}, 404, 'remove it again: 404');
ok(Tenant::Test::wait_until(sub { $t->get('shop.acme.com')->{status} == 404 }, 2), 'no longer routed');

# idempotency
my %h = (headers => { 'Idempotency-Key' => 'retry-1' });
my $r1 = $t->api(POST => 'tenants', { name => 'idem', blueprint => 'static' }, %h);
my $r2 = $t->api(POST => 'tenants', { name => 'idem', blueprint => 'static' }, %h);
is($r1->{status}, 202, 'first POST with Idempotency-Key: 202');
is($r2->{status}, 202, 'retried POST: 202, not 409');
is($r2->{json}{job}{id}, $r1->{json}{job}{id}, 'the same job');
is($t->psql("SELECT count(*) FROM jobs WHERE tenant_id = 'idem'"), 1, 'one job row');
is($t->psql("SELECT count(*) FROM audit_log WHERE tenant_id = 'idem'"), 1, 'one audit row');
$r1 = $t->api(DELETE => 'tenants/page4', undef, headers => { 'Idempotency-Key' => 'del-page4' });
$r2 = $t->api(DELETE => 'tenants/page4', undef, headers => { 'Idempotency-Key' => 'del-page4' });
is($r2->{json}{job}{id}, $r1->{json}{job}{id}, 'idempotent DELETE returns the same job');
is($t->api(DELETE => 'tenants/page4')->{status}, 409, 'DELETE again without the key: 409');

# delete
$r = $t->api(DELETE => 'tenants/page3');
is($r->{status}, 202, 'DELETE /tenants/page3: 202');
is($r->{json}{tenant}{status}, 'deleting', 'deleting');
is($t->api(DELETE => 'tenants/nobody')->{status}, 404, 'DELETE unknown: 404');

# --- aliases -----------------------------------------------------------------------------
$r = $t->api(POST => 'create-store', { tenant_name => 'legacy', theme => 'minimal', site_type => 'static' });
is($r->{status}, 202, 'POST /create-store');
is($r->{json}{tenant}{theme}, 'minimal', 'theme mapped');
is($r->{json}{tenant}{blueprint}, 'static', 'site_type mapped to blueprint');
is($t->api(POST => 'create-store', { tenant_name => 'legacy2', site_type => 'static', name => 'x' })->{status}, 422,
   'create-store refuses fields it does not know');
$r = $t->api(GET => 'stores-status');
my ($legacy) = grep { $_->{tenant_name} eq 'legacy' } @{ $r->{json}{stores} };
is($legacy->{status}, 'provisioning', 'GET /stores-status lists it');
is($legacy->{site_type}, 'static', '... with its site_type');
$r = $t->api(POST => 'delete-store', { tenant_name => 'legacy' });
is($r->{status}, 202, 'POST /delete-store');
is($r->{json}{job}{kind}, 'delete', 'a delete job');

# --- errors say what would be valid -------------------------------------------
$r = $t->api(POST => 'tenants', { name => 'valid1', blueprint => 'nosuch' });
is($r->{status}, 422, 'unknown blueprint: 422');
like($r->{json}{error}{message}, qr/no blueprint "nosuch"; valid: blog, static/, '... listing the valid blueprints');
is($r->{json}{error}{field}, 'blueprint', '... naming the field');
$r = $t->api(POST => 'tenants', { name => 'valid1', blueprint => 'static', theme => 'neon' });
is($r->{status}, 422, 'unknown theme: 422');
like($r->{json}{error}{message}, qr/valid: default, fashion, electronics, minimal/, '... listing the blueprint\'s themes');
is($r->{json}{error}{field}, 'theme', '... naming the field');
$r = $t->api(POST => 'tenants', { name => 'valid1', blueprint => 'blog', mode => 'shared' });
like($r->{json}{error}{message}, qr/has no mode "shared"; valid: dedicated/, 'unknown mode: lists the modes');
$r = $t->api(POST => 'tenants', '');
is($r->{status}, 400, 'empty body: 400');
is($r->{json}{error}{code}, 'empty_body', '... its own code');
like($r->{json}{error}{message}, qr/body is empty: send a JSON object/, '... and message, not the JSON library\'s');
$r = $t->api(POST => 'tenants', { name => 'valid1', blueprint => 'static', display_name => 'x' x 201 });
like($r->{json}{error}{message}, qr/at most 200/, 'too long: the limit is stated');
$t->psql("INSERT INTO tenants (id, blueprint, status) VALUES ('sleepy', 'static', 'suspended')");
$r = $t->api(POST => 'tenants/sleepy/suspend');
is($r->{status}, 409, 'suspending a suspended tenant: 409');
like($r->{json}{error}{message}, qr/the tenant is suspended/, '... naming its current status');
is($t->psql("SELECT count(*) FROM tenants WHERE id = 'valid1'"), 0, 'none of the refused requests made anything');

# --- every mutation audited ----------------------------------------------------------
my %audit = map { split /=/ } split /,/, $t->psql("SELECT string_agg(action || '=' || n, ',') FROM (SELECT action, count(*) n FROM audit_log GROUP BY action) x");
ok($audit{'tenant.create'} >= 8, "creates audited ($audit{'tenant.create'})");
is($audit{'tenant.suspend'}, 1, 'suspend audited');
is($audit{'tenant.resume'}, 1, 'resume audited');
is($audit{'tenant.seed_admin'}, 1, 'seed-admin audited');
is($audit{'tenant.delete'}, 3, 'deletes audited');
is($audit{'domain.add'}, 1, 'domain add audited');
is($audit{'domain.remove'}, 1, 'domain remove audited');

# --- registry down -------------------------------------------------------------------------
$t->stop_pg('fast');
$r = $t->api(GET => 'tenants');
is($r->{status}, 503, 'registry down: 503');
is($r->{json}{error}{code}, 'registry_unavailable', '... JSON error');
is($t->api(GET => 'health', undef, nokey => 1)->{status}, 503, 'health says degraded: 503');

Tenant::Test::finish();
