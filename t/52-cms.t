# The cms blueprint runs Directus 10.13 through the platform, on the
# process driver, from the npm runtime auto/runtimes installed: the first
# create bootstraps a template database once, each CMS's database is a
# copy owned by its own role, and its admin is made with the password
# shown once. Through the edge: the admin signs in at admin.{tenant},
# makes a collection and an item, and the item is on that CMS's API at
# {tenant}, not on another's; one CMS's token is refused by the other;
# suspend gives 503 and resume brings the data back; seed-admin changes
# the password for real; delete leaves no database, role, files or
# processes.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use Time::HiRes qw(time sleep);
use Tenant::Test;
use Tenant::Conf;

my ($rc, $out) = Tenant::Test::run_cmd("$Tenant::Test::TOP/auto/runtimes", 'install', 'directus');
is($rc, 0, 'the directus runtime is installed (once per machine)') or diag($out);

my $t = Tenant::Test->new->start_pg;
$t->migrate;
$t->start_nginx(http => Tenant::Conf::http());
# Directus signs in no address under .localhost (conf/provisioner.conf)
$t->start_provisioner(extra => ['workers = 2', 'admin_email_domain = example.com']);
$t->{api_key} = $t->create_api_key('cms');

# what this platform (process driver) can run, as GET /api/blueprints says
my %bp = map { $_->{name} => $_ } @{ $t->api(GET => 'blueprints')->{json}{blueprints} || [] };
is_deeply([map { $bp{$_}{runnable} ? 1 : 0 } qw(cms ecommerce static blog booking)], [1, 1, 1, 0, 0],
          'GET blueprints: cms, ecommerce and static run here; blog and booking do not');
like($bp{$_}{description}, qr/docker driver only: /, "... and $_ says why: docker driver only")
    for qw(blog booking);

sub edge {
    my ($host, $method, $path, %o) = @_;
    my $r = $t->request(method => $method, path => $path, host => $host, timeout => 30,
                        ($o{body} ? (body => encode_json($o{body})) : ()),
                        headers => { ($o{token} ? (Authorization => "Bearer $o{token}") : ()),
                                     'Content-Type' => 'application/json' });
    $r->{json} = eval { decode_json($r->{body}) } if ($r->{body} // '') =~ /^\s*[{\[]/;
    return $r;
}

sub sign_in {
    my ($name, $email, $password) = @_;
    return edge("admin.$name.localhost", POST => '/auth/login', body => { email => $email, password => $password });
}

my %cms;
for my $name (qw(cms-a cms-b)) {
    my $t0 = time;
    my $r = $t->api(POST => 'tenants?wait=60', { name => $name, blueprint => 'cms', display_name => "CMS $name" });
    if ($r->{status} == 202) {    # ?wait ends at 60 s
        $t->wait_job($r->{json}{job}{id}, 240);
        $r = $t->api(GET => "jobs/$r->{json}{job}{id}");
    }
    is($r->{json}{job}{status}, 'done', "$name: created") or diag($r->{body} . "\n" . $t->provisioner_log);
    my $admin = $r->{json}{job}{result}{admin} || {};
    ok($admin->{email} && $admin->{password}, '... its admin credentials shown once');
    is($admin->{email}, "admin\@$name.example.com", '... the admin under admin_email_domain');
    ok(Tenant::Test::wait_until(sub { edge("$name.localhost", GET => '/server/health')->{status} == 200 }, 60, 0.2),
       "... its API answers at $name.localhost");
    diag(sprintf "$name: create -> API 200 in %.1f s", time - $t0);
    $r = sign_in($name, $admin->{email}, $admin->{password});
    ok($r->{json} && $r->{json}{data}{access_token}, "... its admin signs in at admin.$name.localhost") or diag($r->{body});
    $cms{$name} = { admin => $admin, token => $r->{json}{data}{access_token} };
    my ($pid) = $t->tenant_pids($name);
    (my $rss = `ps -o rss= -p $pid` // 0) =~ s/\s//g if $pid;
    diag(sprintf "$name: RSS %.0f MB after start", ($rss || 0) / 1024);
}
is(sign_in('cms-a', $cms{'cms-a'}{admin}{email}, 'wrong')->{status}, 401, 'a wrong password is refused');

# --- one template, bootstrapped once; each CMS a copy owned by its role -------------
my @built = $t->provisioner_log =~ /building template database (tpl_cms_[0-9a-f]{12})/g;
is(scalar @built, 1, 'the template database was bootstrapped once, by the first create');
for my $name (qw(cms-a cms-b)) {
    (my $db = "tenant_$name") =~ s/-/_/g;
    my $url = "postgres://postgres\@127.0.0.1:$t->{pgport}/$db";
    ok($t->psql("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'directus\\_%'", '-d', $url) > 20,
       "$name: its database holds Directus's tables");
    is($t->psql(qq{SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                   WHERE n.nspname = 'public' AND pg_get_userbyid(c.relowner) <> '$db'}, '-d', $url), 0,
       "... all of them $db\'s");
    is($t->psql("SELECT count(*) FROM directus_users", '-d', $url), 1, '... with one user: its own admin');
}

# --- the app at admin.{tenant}, the API at both hosts ------------------------------------
my $r = edge('admin.cms-a.localhost', GET => '/admin/');
is($r->{status}, 200, 'the Directus app answers at admin.cms-a.localhost/admin/');
like($r->{body}, qr{<div id="app"}i, '... the application page') or diag(substr($r->{body}, 0, 300));

my $a = $cms{'cms-a'};
$r = edge('admin.cms-a.localhost', POST => '/collections', token => $a->{token}, body => {
    collection => 'articles', schema => {}, meta => {},
    fields => [{ field => 'id', type => 'integer', meta => { hidden => JSON::PP::true },
                 schema => { is_primary_key => JSON::PP::true, has_auto_increment => JSON::PP::true } },
               { field => 'title', type => 'string', schema => {}, meta => {} }] });
is($r->{status}, 200, 'cms-a makes a collection through its admin API at the edge') or diag($r->{body});
$r = edge('admin.cms-a.localhost', POST => '/items/articles', token => $a->{token},
          body => { title => 'Hello from A <b>' });
is($r->{status}, 200, '... and an item in it') or diag($r->{body});
$r = edge('cms-a.localhost', GET => '/items/articles', token => $a->{token});
is_deeply([map { $_->{title} } @{ $r->{json}{data} || [] }], ['Hello from A <b>'], "it is on cms-a's API at cms-a.localhost");
my $b = $cms{'cms-b'};
$r = edge('cms-b.localhost', GET => '/items/articles', token => $b->{token});
isnt($r->{status}, 200, "... not on cms-b's (no such collection there)");
unlike($r->{body}, qr/Hello from A/, '... nor its item');
# a token signed with another CMS's secret is no one's there: Directus
# treats it as the public, which may read nothing
$r = edge('cms-b.localhost', GET => '/users/me', token => $a->{token});
like($r->{status}, qr/^40[13]$/, "cms-a's token is refused by cms-b ($r->{status})");
unlike($r->{body}, qr/example\.com/, '... which shows none of its users');
is(edge('cms-a.localhost', GET => '/items/articles')->{status}, 403, "cms-a's items are not public");

# suspend, resume: the data stays
is($t->api(POST => 'tenants/cms-a/suspend?wait=60')->{status}, 200, 'cms-a is suspended');
is(edge('cms-a.localhost', GET => '/server/health')->{status}, 503, '... and answers 503');
is($t->api(POST => 'tenants/cms-a/resume?wait=60')->{status}, 200, 'cms-a is resumed');
ok(Tenant::Test::wait_until(sub {
    (edge('cms-a.localhost', GET => '/items/articles', token => $a->{token})->{body} // '') =~ /Hello from A/ }, 60, 0.2),
   '... its item is still there, its admin still signed in');

# seed-admin: the new password signs in, the old one does not
$r = $t->api(POST => 'tenants/cms-a/seed-admin?wait=60', { email => $a->{admin}{email}, password => 'A-new-pass-123' });
is($r->{status}, 200, 'seed-admin resets the admin password') or diag($r->{body});
ok(sign_in('cms-a', $a->{admin}{email}, 'A-new-pass-123')->{json}{data}{access_token}, '... the new one signs in');
is(sign_in('cms-a', $a->{admin}{email}, $a->{admin}{password})->{status}, 401, '... the old one does not');

# delete: nothing left
$t->delete_leaves_nothing('cms-a');
is(edge('cms-b.localhost', GET => '/server/health')->{status}, 200, 'cms-b still answers');

$t->stop_provisioner;
Tenant::Test::finish();
