# Hosts route to their tenant's endpoints: generated hosts, the admin role,
# custom domains; statuses; malformed hosts; isolation between tenants.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Tenant::Test;
use Tenant::Conf;

my $t = Tenant::Test->new->start_pg;
$t->migrate;

my @names = map { "b$_" } 1 .. 40;
$t->start_nginx(backends => \@names, http => Tenant::Conf::http(extra => <<'EXTRA'));
        error_page 404 /_unknown;
        error_page 503 /_unavailable;
        location = /_unknown { internal; tenant off; return 404 "no store here ($tenant_cache_status)\n"; }
        location = /_unavailable { internal; tenant off; return 503 "store $tenant_id is $tenant_status\n"; }
EXTRA
my $b = $t->{backend};

$t->add_tenant('acme', site => ["127.0.0.1:$b->{b1}"],
    admin => ["127.0.0.1:$b->{b2}"], hosts => ['shop.acme.com', ['backoffice.acme.com', 'admin']]);
$t->add_tenant('globex', site => ["127.0.0.1:$b->{b3}"], admin => ["127.0.0.1:$b->{b4}"]);
$t->add_tenant('initech', site => ["127.0.0.1:$b->{b5}"], blueprint => 'blog');

my $r = $t->get('acme.localhost');
is($r->{status}, 200, 'acme.localhost routed');
like($r->{body}, qr/^b1 /, 'to acme site endpoint');
is($r->{headers}{'x-tenant-id'}, 'acme', '$tenant_id');
is($r->{headers}{'x-tenant-role'}, 'site', '$tenant_role');
is($r->{headers}{'x-tenant-status'}, 'active', '$tenant_status');
is($r->{headers}{'x-tenant-blueprint'}, 'static', '$tenant_blueprint');
is($r->{headers}{'x-tenant-cache'}, 'MISS', 'first request is a MISS');
like($r->{body}, qr/tenant=acme/, 'X-Tenant-ID reaches the backend');

$r = $t->get('acme.localhost');
is($r->{headers}{'x-tenant-cache'}, 'HIT', 'second request is a HIT');

$r = $t->get('admin.acme.localhost');
like($r->{body}, qr/^b2 /, 'admin.acme.localhost reaches acme admin endpoint');
is($r->{headers}{'x-tenant-role'}, 'admin', 'role admin');

$r = $t->get('shop.acme.com');
like($r->{body}, qr/^b1 /, 'custom domain shop.acme.com reaches acme site');
is($r->{headers}{'x-tenant-id'}, 'acme', 'custom domain tenant id');

$r = $t->get('backoffice.acme.com');
like($r->{body}, qr/^b2 /, 'custom domain with admin role reaches acme admin');

$r = $t->get('GLOBEX.localhost.:8080');
like($r->{body}, qr/^b3 /, 'host normalised: case, trailing dot, port');
$r = $t->get('admin.globex.localhost');
like($r->{body}, qr/^b4 /, 'globex admin');
$r = $t->get('initech.localhost');
like($r->{body}, qr/^b5 /, 'initech site');
is($r->{headers}{'x-tenant-blueprint'}, 'blog', 'initech blueprint');

$r = $t->get('admin.initech.localhost');
is($r->{status}, 503, 'role without endpoints: 503');

# statuses
$t->add_tenant('sleepy', status => 'suspended', site => ["127.0.0.1:$b->{b6}"]);
$t->add_tenant('newbie', status => 'provisioning');
$t->add_tenant('broken', status => 'failed', site => ["127.0.0.1:$b->{b7}"]);
$t->add_tenant('goner', status => 'deleting', site => ["127.0.0.1:$b->{b8}"]);

$r = $t->get('sleepy.localhost');
is($r->{status}, 503, 'suspended: 503');
is($r->{body}, "store sleepy is suspended\n", 'error_page brands it; variables survive the redirect');
ok($r->{headers}{'retry-after'}, 'suspended: Retry-After') ;
unlike($r->{body}, qr/^b6/, 'suspended tenant not proxied');
is($r->{headers}{'x-tenant-status'}, 'suspended', 'status variable says suspended');
$r = $t->get('newbie.localhost');
is($r->{status}, 503, 'provisioning: 503');
is($t->get('broken.localhost')->{status}, 404, 'failed: 404');
is($t->get('goner.localhost')->{status}, 404, 'deleting: 404');
$r = $t->get('nobody.localhost');
is($r->{status}, 404, 'unknown tenant: 404');
like($r->{body}, qr/^no store here/, 'error_page brands the 404');
is($r->{headers}{'x-tenant-cache'}, 'MISS', 'unknown: MISS first');
$r = $t->get('nobody.localhost');
is($r->{headers}{'x-tenant-cache'}, 'NEGATIVE', 'unknown: then a negative hit');
is($t->get('unrelated.example.org')->{status}, 404, 'host matching no pattern and no custom domain: 404');
is($t->get('127.0.0.1')->{status}, 404, 'IP literal is never a tenant');
is($t->get('[::1]:8080')->{status}, 404, 'IPv6 literal is never a tenant');

# malformed hosts get 400 and never reach a tenant
my $before = $t->lookup_queries;
for my $h ('acme..localhost', '-acme.localhost', 'acme_.localhost',
           'acme.localhost:99999', 'a' x 300 . '.localhost', 'acme.localhost..',
           "ac\x01me.localhost", 'acme.localhost:x') {
    my $r = $t->get($h);
    is($r->{status}, 400, "malformed host '" . (length $h > 40 ? substr($h, 0, 20) . '...' : $h =~ s/[^\x20-\x7e]/?/gr) . "': 400");
    unlike($r->{body}, qr/^b\d+ /, '... not proxied');
}
$r = $t->request(raw => "GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
is($r->{status}, 400, 'no Host header: 400');
$r = $t->request(raw => "GET / HTTP/1.0\r\n\r\n");
is($r->{status}, 400, 'HTTP/1.0 without Host: 400');
is($t->lookup_queries, $before, 'malformed hosts never reach the registry');

# absolute request URI: routed by the same authority nginx uses for $host
$r = $t->request(raw => "GET http://globex.localhost/ HTTP/1.1\r\nHost: acme.localhost\r\nConnection: close\r\n\r\n");
like($r->{body}, qr/^b3 /, 'absolute URI authority wins over Host, as for $host');
$r = $t->request(raw => "GET http://GLOBEX.localhost:8080/x HTTP/1.1\r\nHost: acme.localhost\r\nConnection: close\r\n\r\n");
like($r->{body}, qr/^b3 /, 'its port and case are normalised too');
$r = $t->request(raw => "GET http://globex.localhost:70000/ HTTP/1.1\r\nHost: acme.localhost\r\nConnection: close\r\n\r\n");
is($r->{status}, 400, 'a port over 65535 in the absolute URI: 400');

# isolation: many tenants, random requests, each lands on its own endpoint
my %own;
for my $i (9 .. 40) {
    my $name = "tn$i";
    $own{$name} = "b$i";
    $t->add_tenant($name, site => ["127.0.0.1:$b->{\"b$i\"}"]);
}
my @tenants = sort keys %own;
my ($right, $wrong) = (0, 0);
srand(42);
for (1 .. 400) {
    my $name = $tenants[rand @tenants];
    my $r = $t->get("$name.localhost");
    my ($got) = $r->{body} =~ /^(b\d+) /;
    if (defined $got && $got eq $own{$name}) { $right++ } else { $wrong++; diag "$name got " . ($got // $r->{status}) }
}
is($wrong, 0, "400 random requests over 32 tenants: none reached another tenant ($right right)");

Tenant::Test::finish();
