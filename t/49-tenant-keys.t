# Tenant-scoped API keys: a key bound to one tenant acts on that tenant only
# (its domains, certificates, seed-admin, logs, backups, its own jobs);
# another tenant's routes, jobs and backups are 404 exactly as if they did
# not exist, platform routes are 403, nothing is written by a refused
# request, and the key goes with its tenant.
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
$t->start_provisioner(blueprints => Tenant::Blueprints::make($t));
my $platform = $t->{api_key} = $t->create_api_key('platform');

for my $n (qw(shop-a shop-b)) {
    my $r = $t->api(POST => 'tenants?wait=60', { name => $n, blueprint => 'static' });
    is($r->{json}{job}{status}, 'done', "$n created");
}
my $b_job = $t->psql("SELECT max(id) FROM jobs WHERE tenant_id = 'shop-b'");
my $r = $t->api(POST => 'tenants/shop-b/backups?wait=60', { verify => JSON::PP::false });
my $b_backup = $r->{json}{job}{result}{backup};
ok($b_backup, "shop-b has backup $b_backup");

my ($rc, $out) = $t->cli('apikey', 'create', 'shop-a admin', '--tenant', 'shop-a');
is($rc, 0, 'apikey create --tenant: exit 0') or diag $out;
my ($key_a) = $out =~ /^(tk_\S+)$/m;
ok($key_a, 'a key for shop-a, shown once');
($rc, $out) = $t->cli('apikey', 'create', 'ghost', '--tenant', 'nobody');
is($rc, 3, 'a key for no tenant: exit 3');
like($out, qr/--tenant: no tenant named "nobody"/, '... naming --tenant');
($rc, $out) = $t->cli('apikey', 'list');
like($out, qr/shop-a admin\s+shop-a\s/, 'apikey list shows its tenant');
my $before = $t->psql("SELECT (SELECT count(*) FROM jobs) || ',' || (SELECT count(*) FROM tenants) || ','"
                    . " || (SELECT count(*) FROM tenant_hosts) || ',' || (SELECT count(*) FROM tenant_backups)");

$t->{api_key} = $key_a;

# its own tenant
$r = $t->api(GET => 'tenants/shop-a');
is($r->{status}, 200, 'GET its own tenant: 200');
$r = $t->api(POST => 'tenants/shop-a/backups?wait=60', { verify => JSON::PP::false });
is($r->{status}, 200, 'backs its own tenant up');
my $a_backup = $r->{json}{job}{result}{backup};
my $a_job = $r->{json}{job}{id};
is($t->api(GET => "backups/$a_backup")->{status}, 200, 'reads its own backup');
is($t->api(GET => "jobs/$a_job")->{status}, 200, 'reads its own job');
is($t->api(GET => 'tenants/shop-a/backups')->{status}, 200, 'lists its own backups');
$r = $t->api(POST => 'tenants/shop-a/domains', { host => 'shop-a.example.net' });
ok($r->{status} == 201 || $r->{status} == 202, "adds a domain to its own tenant ($r->{status})");
is($t->api(GET => 'tenants/shop-a/limits')->{status}, 200, 'reads its own limits');
is($t->psql("SELECT actor FROM audit_log WHERE action = 'tenant.backup' ORDER BY at DESC LIMIT 1"),
   'key:' . substr($key_a, 3, 16), 'audited under its key');
$before = $t->psql("SELECT (SELECT count(*) FROM jobs) || ',' || (SELECT count(*) FROM tenants) || ','"
                 . " || (SELECT count(*) FROM tenant_hosts) || ',' || (SELECT count(*) FROM tenant_backups)");

# another tenant's: exactly what a tenant that does not exist gets
my $nobody = $t->api(GET => 'tenants/nobody');
for my $req (['GET', 'tenants/shop-b'], ['POST', 'tenants/shop-b/seed-admin', { email => 'x@y.test', password => 'Long-enough-pass-1' }],
             ['GET', 'tenants/shop-b/logs'], ['POST', 'tenants/shop-b/domains', { host => 'evil.example.net' }],
             ['DELETE', 'tenants/shop-b/domains/shop-b.example.net'], ['GET', 'tenants/shop-b/backups'],
             ['POST', 'tenants/shop-b/backups'], ['GET', 'tenants/shop-b/limits'],
             ['PUT', 'tenants/shop-b/hsts', { enabled => JSON::PP::true }],
             ['GET', 'tenants/shop-b/domains/shop-b.localhost/certificate']) {
    my ($m, $path, $body) = @$req;
    $r = $t->api($m => $path, $body);
    is($r->{status}, 404, "$m $path: 404");
    is($r->{json}{error}{code}, $nobody->{json}{error}{code}, '... as for a tenant that does not exist');
}
for my $req (['GET', "jobs/$b_job", 'no_such_job'], ['GET', "backups/$b_backup", 'no_such_backup'],
             ['POST', "backups/$b_backup/restore", 'no_such_backup'], ['POST', "backups/$b_backup/verify", 'no_such_backup'],
             ['GET', 'jobs/999999', 'no_such_job'], ['GET', 'jobs/x1', 'no_such_job']) {
    my ($m, $path, $code) = @$req;
    $r = $t->api($m => $path);
    is($r->{status}, 404, "$m $path: 404");
    is($r->{json}{error}{code}, $code, "... $code");
}

# platform routes
for my $req (['GET', 'tenants'], ['POST', 'tenants', { name => 'shop-c', blueprint => 'static' }],
             ['DELETE', 'tenants/shop-a'], ['POST', 'tenants/shop-a/suspend'], ['POST', 'tenants/shop-a/resume'],
             ['PUT', 'tenants/shop-a/limits', { rate => 1000 }], ['POST', 'tenants/shop-a/domains/shop-a.example.net/verify'],
             ['GET', 'jobs'], ['GET', 'audit'], ['GET', 'plans'], ['GET', 'platform'], ['GET', 'migrations'],
             ['POST', "backups/$a_backup/clone", { name => 'shop-c' }], ['GET', 'stores-status']) {
    my ($m, $path, $body) = @$req;
    $r = $t->api($m => $path, $body);
    is($r->{status}, 403, "$m $path: 403");
    is($r->{json}{error}{code}, 'tenant_key', '... tenant_key');
}
is($t->psql("SELECT (SELECT count(*) FROM jobs) || ',' || (SELECT count(*) FROM tenants) || ','"
          . " || (SELECT count(*) FROM tenant_hosts) || ',' || (SELECT count(*) FROM tenant_backups)"), $before,
   'no refused request wrote anything');
is($t->psql("SELECT status FROM tenants WHERE id = 'shop-a'"), 'active', 'shop-a is still active');

# the platform's key still sees everything
$t->{api_key} = $platform;
is($t->api(GET => "jobs/$b_job")->{status}, 200, 'the platform key reads any job');
is($t->api(GET => 'tenants')->{status}, 200, '... and lists tenants');


# keys made through the API by the platform
$r = $t->api(POST => 'tenants/shop-b/keys', { name => 'shop-b integration' });
is($r->{status}, 201, 'POST tenants/shop-b/keys: 201');
my $key_b = $r->{json}{key}{key};
like($key_b // '', qr/^tk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/, '... with the key, shown this once');
my $id_b = $r->{json}{key}{id};
unlike($t->psql("SELECT string_agg(encode(key_hash, 'hex'), ' ') FROM api_keys"), qr/\Q@{[substr($key_b, 20)]}\E/, 'the registry keeps its hash only');
$r = $t->api(GET => 'tenants/shop-b/keys');
is(scalar @{ $r->{json}{keys} }, 1, 'GET tenants/shop-b/keys lists it');
ok(!exists $r->{json}{keys}[0]{key}, '... without the secret');
is($t->api(POST => 'tenants/nobody/keys', { name => 'x' })->{status}, 404, 'a key for no tenant: 404');
$r = $t->api(POST => 'tenants/shop-b/keys', { name => '' });
is($r->{status}, 422, 'an empty name: 422');
is($r->{json}{error}{field}, 'name', '... naming it');
is($t->psql("SELECT count(*) FROM audit_log WHERE action = 'key.create' AND tenant_id = 'shop-b'"), 1, 'audited');
$t->{api_key} = $key_b;
is($t->api(GET => 'tenants/shop-b')->{status}, 200, 'the API-made key opens its tenant');
is($t->api(GET => 'tenants/shop-a')->{status}, 404, '... and not another');
$r = $t->api(POST => 'tenants/shop-b/keys', { name => 'more' });
is($r->{status}, 403, 'a tenant key cannot make keys');
$t->{api_key} = $platform;
$r = $t->api(DELETE => "tenants/shop-b/keys/$id_b");
is($r->{status}, 200, 'DELETE tenants/shop-b/keys/ID revokes it');
is($t->api(DELETE => "tenants/shop-a/keys/$id_b")->{status}, 404, 'another tenant\'s key id: 404');
$t->{api_key} = $key_b;
is($t->api(GET => 'tenants/shop-b')->{status}, 403, 'revoked: refused at its next request');
$t->{api_key} = $platform;

# the key goes with its tenant
$r = $t->api(DELETE => 'tenants/shop-a?wait=60');
is($r->{json}{job}{status}, 'done', 'shop-a deleted');
is($t->psql("SELECT count(*) FROM api_keys WHERE tenant_id = 'shop-a'"), 0, 'its key is gone');
$t->{api_key} = $key_a;
is($t->api(GET => 'tenants/shop-a')->{status}, 401, 'and no longer opens anything');

Tenant::Test::finish();
