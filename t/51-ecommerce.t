# The ecommerce blueprint runs Medusa 2 through the platform, on the
# process driver, from the npm runtime auto/runtimes installed: a create
# migrates the store's own database and makes its admin (the password is
# shown once); through the edge, the admin signs in at admin.{tenant},
# creates a product, and it is on that store's front page and store API
# at {tenant}, not on another store's; one store's token is refused by the
# other; suspend gives 503 and resume brings the data back; seed-admin
# changes the password for real; delete leaves no database, role, files or
# processes. Store databases are copies of a template migrated once per
# blueprint version: the first create builds it, the second copies it, a
# changed blueprint builds a new one once and retires the old; the
# template takes no connections, its role no logins, and a copy's objects
# all belong to its store's role.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use Time::HiRes qw(time sleep);
use Tenant::Test;
use Tenant::Conf;

my ($rc, $out) = Tenant::Test::run_cmd("$Tenant::Test::TOP/auto/runtimes", 'install', 'medusa');
is($rc, 0, 'the medusa runtime is installed (once per machine)') or diag($out);

my $t = Tenant::Test->new->start_pg;
$t->migrate;
$t->start_nginx(http => Tenant::Conf::http());
# a copy of the blueprints, to change one later
my $bps = $t->dir . '/blueprints';
($rc, $out) = Tenant::Test::run_cmd('cp', '-r', "$Tenant::Test::TOP/blueprints", $bps);
die "cp: $out" if $rc;
$t->start_provisioner(blueprints => $bps, extra => ['workers = 2']);
my $builds = sub { my @b = $t->provisioner_log =~ /building template database (tpl_ecommerce_[0-9a-f]{12})/g; @b };
my $templates = sub { $t->psql(q{SELECT string_agg(datname || ':' || datistemplate || ':' || datallowconn, ',' ORDER BY datname)
                                  FROM pg_database WHERE datname LIKE 'tpl\_ecommerce\_%'}) };
$t->{api_key} = $t->create_api_key('shop');

sub edge {
    my ($host, $method, $path, %o) = @_;
    my $r = $t->request(method => $method, path => $path, host => $host, timeout => 30,
                        ($o{body} ? (body => encode_json($o{body})) : ()),
                        headers => { ($o{token} ? (Authorization => "Bearer $o{token}") : ()),
                                     ($o{key} ? ('x-publishable-api-key' => $o{key}) : ()) });
    $r->{json} = eval { decode_json($r->{body}) } if ($r->{body} // '') =~ /^\s*[{\[]/;
    return $r;
}

my %shop;
for my $s (['shop-a', 'electronics'], ['shop-b', 'fashion']) {
    my ($name, $theme) = @$s;
    my $t0 = time;
    my $r = $t->api(POST => 'tenants?wait=60', { name => $name, blueprint => 'ecommerce', theme => $theme });
    if ($r->{status} == 202) {    # ?wait ends at 60 s
        $t->wait_job($r->{json}{job}{id}, 240);
        $r = $t->api(GET => "jobs/$r->{json}{job}{id}");
    }
    is($r->{json}{job}{status}, 'done', "$name: created") or diag($r->{body} . "\n" . $t->provisioner_log);
    my $admin = $r->{json}{job}{result}{admin} || {};
    ok($admin->{email} && $admin->{password}, '... its admin credentials shown once');
    my $ok = Tenant::Test::wait_until(sub { edge("$name.localhost", GET => '/')->{status} == 200 }, 60, 0.2);
    ok($ok, "... its front page answers at $name.localhost");
    diag(sprintf "$name: create -> front page 200 in %.1f s", time - $t0);
    $r = edge("admin.$name.localhost", POST => '/auth/user/emailpass',
              body => { email => $admin->{email}, password => $admin->{password} });
    ok($r->{json} && $r->{json}{token}, "... its admin signs in at admin.$name.localhost") or diag($r->{body});
    $shop{$name} = { admin => $admin, token => $r->{json}{token} };
}

# --- one template, migrated once; each store a copy owned by its role --------------
my @built = $builds->();
is(scalar @built, 1, 'the template database was built once, by the first create');
my $tpl = $built[0];
is($templates->(), "$tpl:true:false", '... sealed: a template that takes no connections');
is($t->psql("SELECT rolcanlogin FROM pg_roles WHERE rolname = '$tpl'"), 'f', "... its role cannot log in");
for my $s (qw(shop-a shop-b)) {
    (my $db = "tenant_$s") =~ s/-/_/g;
    my $url = "postgres://postgres\@127.0.0.1:$t->{pgport}/$db";
    ok($t->psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", '-d', $url) > 100,
       "$s: its database is a migrated copy");
    is($t->psql(qq{SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                   WHERE n.nspname = 'public' AND pg_get_userbyid(c.relowner) <> '$db'}, '-d', $url), 0,
       "... every table, sequence and index in it belongs to $db");
    is($t->psql(qq{SELECT count(*) FROM pg_shdepend d JOIN pg_database b ON b.oid = d.dbid
                   WHERE b.datname = '$db' AND d.refobjid = (SELECT oid FROM pg_roles WHERE rolname = '$tpl')}), 0,
       "... and nothing in it to the template's role");
}

# the admin dashboard: built once per runtime install, served at admin.{tenant}/app
my $r = edge('admin.shop-a.localhost', GET => '/');
is($r->{status}, 302, 'admin.shop-a.localhost/ sends the owner to the dashboard');
like($r->{headers}{location} // '', qr{/app$}, '... at /app');
$r = edge('admin.shop-a.localhost', GET => '/app');
is($r->{status}, 200, 'the dashboard answers at admin.shop-a.localhost/app');
my ($script) = ($r->{body} // '') =~ m{<script[^>]+src="(/app/assets/[^"]+\.js)"};
ok($script, '... a page that loads its application') or diag(substr($r->{body} // '', 0, 500));
$r = edge('admin.shop-a.localhost', GET => $script // '/app/assets/none.js');
is($r->{status}, 200, '... whose script is served too');
ok(length($r->{body} // '') > 100_000, '... the dashboard itself (' . length($r->{body} // '') . ' bytes)');
is(edge('admin.shop-a.localhost', GET => '/app/orders')->{status}, 200, '... and its deep links answer with the page');
ok(-l "$t->{state_dir}/shop-a/home/public/admin", '... linked from the one build in the runtime, not copied');
# the dashboard signs in with a session cookie that Medusa marks Secure: it
# is set behind an HTTPS edge (X-Forwarded-Proto, as conf/nginx.conf sends)
sub session {
    my (%h) = @_;
    return $t->request(method => 'POST', path => '/auth/session', host => 'admin.shop-a.localhost',
                       headers => { Authorization => "Bearer $shop{'shop-a'}{token}", %h });
}
$r = session('X-Forwarded-Proto' => 'https');
my ($cookie) = ($r->{headers}{'set-cookie'} // '') =~ /^(connect\.sid=[^;]+)/;
ok($cookie, "the dashboard's sign-in: a session behind an HTTPS edge") or diag($r->{status} . ' ' . $r->{body});
like($r->{headers}{'set-cookie'} // '', qr/;\s*Secure/i, '... in a Secure cookie');
$r = $t->request(method => 'GET', path => '/admin/users/me', host => 'admin.shop-a.localhost',
                 headers => { Cookie => $cookie // 'none', 'X-Forwarded-Proto' => 'https' });
like($r->{body}, qr/\Q$shop{'shop-a'}{admin}{email}\E/, '... which the admin API takes as the admin');
ok(!session()->{headers}{'set-cookie'}, '... and never over plain HTTP');

my $a = $shop{'shop-a'};
$r = edge('admin.shop-a.localhost', GET => '/admin/sales-channels', token => $a->{token});
my $sc = $r->{json}{sales_channels}[0]{id};
$r = edge('admin.shop-a.localhost', POST => '/admin/products', token => $a->{token}, body => {
    title => 'Shop A Lamp', status => 'published', options => [{ title => 'Size', values => ['One'] }],
    sales_channels => [{ id => $sc }] });
is($r->{status}, 200, 'shop-a creates a product through its admin API at the edge');
$r = edge('shop-a.localhost', GET => '/');
like($r->{body}, qr{<li class="product">Shop A Lamp</li>}, "it is on shop-a's front page");
like($r->{body}, qr{theme-electronics}, '... in its theme');
$r = edge('admin.shop-a.localhost', GET => '/admin/api-keys', token => $a->{token});
my ($pk) = grep { $_->{type} eq 'publishable' } @{ $r->{json}{api_keys} || [] };
$r = edge('shop-a.localhost', GET => '/store/products?fields=title', key => $pk->{token});
is_deeply([map { $_->{title} } @{ $r->{json}{products} || [] }], ['Shop A Lamp'], "... and on its store API");
$r = edge('shop-b.localhost', GET => '/');
unlike($r->{body}, qr/Shop A Lamp/, "... not on shop-b's front page");
like($r->{body}, qr{theme-fashion}, "shop-b has its own theme");
is(edge('admin.shop-b.localhost', GET => '/admin/products', token => $a->{token})->{status}, 401,
   "shop-a's admin token is refused by shop-b");

# suspend, resume: the data stays
is($t->api(POST => 'tenants/shop-a/suspend?wait=60')->{status}, 200, 'shop-a is suspended');
is(edge('shop-a.localhost', GET => '/')->{status}, 503, '... and answers 503');
is($t->api(POST => 'tenants/shop-a/resume?wait=60')->{status}, 200, 'shop-a is resumed');
ok(Tenant::Test::wait_until(sub { edge('shop-a.localhost', GET => '/')->{body} =~ /Shop A Lamp/ }, 60, 0.2),
   '... and its product is still there');

# seed-admin: the new password signs in, the old one does not
$r = $t->api(POST => 'tenants/shop-a/seed-admin?wait=60', { email => $a->{admin}{email}, password => 'A-new-pass-123' });
is($r->{status}, 200, 'seed-admin resets the admin password') or diag($r->{body});
is(edge('admin.shop-a.localhost', POST => '/auth/user/emailpass',
        body => { email => $a->{admin}{email}, password => 'A-new-pass-123' })->{status}, 200, '... the new one signs in');
is(edge('admin.shop-a.localhost', POST => '/auth/user/emailpass',
        body => { email => $a->{admin}{email}, password => $a->{admin}{password} })->{status}, 401, '... the old one does not');

# --- a changed blueprint: a new template, built once; the old one retired ----------
my $bpf = "$bps/ecommerce.json";
my $json = decode_json(Tenant::Test::slurp($bpf));
$json->{description} .= ' (changed)';
open my $fh, '>', $bpf or die; print $fh encode_json($json); close $fh;
my $loaded = () = $t->provisioner_log =~ /blueprint\(s\) loaded/g;
kill 'HUP', $t->{prov}{p1}{pid};
ok(Tenant::Test::wait_until(sub { (() = $t->provisioner_log =~ /blueprint\(s\) loaded/g) >= $loaded + 2 }, 20),
   'the changed blueprint is loaded');
$r = $t->api(POST => 'tenants?wait=60', { name => 'shop-c', blueprint => 'ecommerce' });
$r = $t->api(GET => "jobs/$r->{json}{job}{id}") if $r->{status} == 202 && $t->wait_job($r->{json}{job}{id}, 240);
is($r->{json}{job}{status}, 'done', 'shop-c is created from the changed blueprint') or diag($r->{body});
@built = $builds->();
is(scalar @built, 2, '... which built a template of its own, once');
isnt($built[1], $tpl, '... under a new version');
is($templates->(), "$built[1]:true:false", '... and the old template is retired');
is($t->psql("SELECT count(*) FROM pg_roles WHERE rolname = '$tpl'"), 0, "... with its role");
is(edge('shop-a.localhost', GET => '/')->{status}, 200, 'shop-a, a copy of the old template, still answers');
is($t->api(DELETE => 'tenants/shop-c?wait=60')->{status}, 200, 'shop-c is deleted');

# delete: nothing left
$t->delete_leaves_nothing('shop-a');
is(edge('shop-b.localhost', GET => '/')->{status}, 200, 'shop-b still answers');

$t->stop_provisioner;
Tenant::Test::finish();
