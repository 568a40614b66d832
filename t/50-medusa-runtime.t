# The Medusa runtime (issue 18's groundwork): installed once per machine
# from the committed lock file by auto/runtimes into the shared cache,
# never again while the lock is unchanged; a template database migrated
# once and each store's database made from it (CREATE DATABASE ...
# TEMPLATE); two stores from the one install (blueprints/ecommerce/),
# each with its own database, secrets and admin (admin-login.js, from the
# environment): a product made in one is on its store API and its themed
# front page, escaped, and not on the other's; one store's admin token is
# refused by the other; resetting the admin's password takes the old one
# away. Not yet: the ecommerce blueprint running this through the platform.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);
use Tenant::Test;

my $top = $Tenant::Test::TOP;
my ($rc, $out) = Tenant::Test::run_cmd("$top/auto/runtimes", 'install', 'medusa');
is($rc, 0, 'auto/runtimes install medusa') or diag($out);
($rc, $out) = Tenant::Test::run_cmd("$top/auto/runtimes", 'install', 'medusa');
like($out, qr/medusa: installed at /, 'asked again: already installed, nothing downloaded');
unlike($out, qr/installing/, '... no install ran');
(undef, my $rt) = Tenant::Test::run_cmd("$top/auto/runtimes", 'path', 'medusa');
chomp $rt;
my $pkg = decode_json(Tenant::Test::slurp("$rt/node_modules/\@medusajs/medusa/package.json"));
is($pkg->{version}, '2.21.2', 'the runtime is the pinned @medusajs/medusa 2.21.2');
like($rt, qr{/medusa-[0-9a-f]{16}$}, '... in a directory named by its lock file');
ok(-f "$rt/built/index.html", '... with the admin dashboard built once beside it');
($rc, $out) = Tenant::Test::run_cmd("$top/auto/runtimes", 'path', 'nosuch');
like($out, qr/no runtime named nosuch .*known: .*medusa/, 'an unknown runtime is named, with the known ones');

my $t = Tenant::Test->new->start_pg;
my $db = "postgres://postgres\@127.0.0.1:$t->{pgport}";

# a store's project: its config and package file, the runtime's modules
sub project {
    my ($name) = @_;
    my $dir = $t->dir . "/$name";
    my ($rc, $out) = Tenant::Test::run_cmd('cp', '-r', "$top/blueprints/ecommerce", $dir);
    die "cp: $out" if $rc;
    symlink "$rt/node_modules", "$dir/node_modules" or die "symlink: $!";
    # the admin dashboard auto/runtimes built once (runtimes/medusa/build.js)
    mkdir "$dir/public" or die "mkdir: $!";
    symlink "$rt/built", "$dir/public/admin" or die "symlink: $!";
    return $dir;
}

sub medusa {
    my ($dir, $dbname, @args) = @_;
    my %extra = ref $args[0] ? %{ shift @args } : ();
    local %ENV = (%ENV, DATABASE_URL => "$db/$dbname", JWT_SECRET => "jwt-$dbname",
                  COOKIE_SECRET => "cookie-$dbname", MEDUSA_DISABLE_TELEMETRY => 'true', %extra);
    return Tenant::Test::run_cmd('sh', '-c', "cd " . Tenant::Test::shell_quote($dir)
        . " && exec node node_modules/\@medusajs/cli/cli.js "
        . join(' ', map { Tenant::Test::shell_quote($_) } @args));
}

# --- the template: migrated once; stores are copies ---------------------------------
my $tmpl = project('template');
$t->psql('CREATE DATABASE medusa_template');
my $t0 = time;
($rc, $out) = medusa($tmpl, 'medusa_template', 'db:migrate');
is($rc, 0, 'the template database is migrated') or diag(substr($out, -2000));
diag(sprintf 'migrating the template took %.1f s', time - $t0);

my %store;
for my $s (qw(alpha bravo)) {
    my $t1 = time;
    $t->psql("CREATE DATABASE store_$s TEMPLATE medusa_template");
    diag(sprintf "store $s: its database copied from the template in %.2f s", time - $t1);
    is($t->psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", '-d', "$db/store_$s") > 100 ? 1 : 0, 1,
       "store $s: its database is a copy of the migrated template");
    my $dir = project($s);
    ($rc, $out) = medusa($dir, "store_$s", { ADMIN_EMAIL => "admin\@$s.test", ADMIN_PASSWORD => "pass-$s-1" },
                         'exec', './admin-login.js');
    like($out, qr/admin created/, "store $s: its admin user is created") or diag(substr($out, -1000));
    my $port = Tenant::Test::free_port();
    my $pid = fork // die;
    if (!$pid) {
        chdir $dir or die;
        open STDOUT, '>', "$dir/medusa.log";
        open STDERR, '>&', \*STDOUT;
        setpgrp(0, 0);
        %ENV = (%ENV, DATABASE_URL => "$db/store_$s", JWT_SECRET => "jwt-$s-" . rand(),
                COOKIE_SECRET => "cookie-$s-" . rand(), PORT => $port, NODE_ENV => 'production',
                MEDUSA_DISABLE_TELEMETRY => 'true', NODE_OPTIONS => '--max-old-space-size=512',
                STORE_NAME => "Store $s", STORE_THEME => ($s eq 'alpha' ? 'electronics' : 'fashion'));
        exec 'node', 'node_modules/@medusajs/cli/cli.js', 'start', '-H', '127.0.0.1', '-p', $port or die;
    }
    $t->on_cleanup(sub { kill 'KILL', -$pid; waitpid $pid, 0 });
    $store{$s} = { port => $port, pid => $pid, dir => $dir, started => time };
}

sub call {
    my ($s, $method, $path, %o) = @_;
    my $r = $t->request(port => $store{$s}{port}, method => $method, path => $path, host => '127.0.0.1',
                        ($o{body} ? (body => encode_json($o{body})) : ()),
                        headers => { ($o{token} ? (Authorization => "Bearer $o{token}") : ()),
                                     ($o{key} ? ('x-publishable-api-key' => $o{key}) : ()),
                                     'Content-Type' => 'application/json' });
    $r->{json} = eval { decode_json($r->{body}) } if ($r->{body} // '') =~ /^\s*[{\[]/;
    return $r;
}

for my $s (sort keys %store) {
    ok(Tenant::Test::wait_until(sub { (call($s, GET => '/health')->{status} // 0) == 200 }, 120, 0.2),
       "store $s answers /health")
        or diag(Tenant::Test::slurp("$store{$s}{dir}/medusa.log"));
    diag(sprintf "store $s: /health after %.1f s", time - $store{$s}{started});
    my $r = call($s, POST => '/auth/user/emailpass', body => { email => "admin\@$s.test", password => "pass-$s-1" });
    ok($r->{json} && $r->{json}{token}, "store $s: its admin signs in") or diag($r->{body});
    $store{$s}{token} = $r->{json}{token};
    $r = call($s, POST => '/auth/user/emailpass', body => { email => "admin\@$s.test", password => 'wrong' });
    is($r->{status}, 401, "store $s: a wrong password is refused");
    $r = call($s, GET => '/admin/api-keys', token => $store{$s}{token});
    my ($pk) = grep { $_->{type} eq 'publishable' } @{ $r->{json}{api_keys} || [] };
    ok($pk, "store $s: has a publishable key of its own");
    $store{$s}{key} = $pk->{token};
    (my $rss = `ps -o rss= -p $store{$s}{pid}` // 0) =~ s/\s//g;
    diag(sprintf "store $s: RSS %.0f MB idle", ($rss || 0) / 1024);
}
isnt($store{alpha}{key}, $store{bravo}{key}, 'the two stores have different publishable keys');

my $r = call('alpha', GET => '/admin/sales-channels', token => $store{alpha}{token});
my $sc = $r->{json}{sales_channels}[0]{id};
$r = call('alpha', POST => '/admin/products', token => $store{alpha}{token}, body => {
    title => 'Alpha Blue Mug', status => 'published', options => [{ title => 'Size', values => ['One'] }],
    sales_channels => [{ id => $sc }] });
is($r->{status}, 200, 'alpha creates a product through its admin API');

$r = call('alpha', GET => '/store/products?fields=title', key => $store{alpha}{key});
is_deeply([map { $_->{title} } @{ $r->{json}{products} || [] }], ['Alpha Blue Mug'], "it is on alpha's store API");
$r = call('bravo', GET => '/store/products?fields=title', key => $store{bravo}{key});
is_deeply($r->{json}{products}, [], "... and not on bravo's");
is(call('bravo', GET => '/store/products', key => $store{alpha}{key})->{status}, 400,
   "alpha's publishable key means nothing to bravo");
is(call('bravo', GET => '/admin/products', token => $store{alpha}{token})->{status}, 401,
   "alpha's admin token is refused by bravo");
is(call('alpha', GET => '/store/products')->{status}, 400, 'the store API wants a publishable key');

# --- the front page: the store's products, escaped, in its theme -------------------------
call('alpha', POST => '/admin/products', token => $store{alpha}{token}, body => {
    title => q{<script>alert("x")</script> & Co}, status => 'published',
    options => [{ title => 'Size', values => ['One'] }], sales_channels => [{ id => $sc }] });
$r = call('alpha', GET => '/');
is($r->{status}, 200, "alpha's front page answers");
like($r->{body}, qr{<li class="product">Alpha Blue Mug</li>}, '... listing its product');
like($r->{body}, qr{&lt;script&gt;alert\(&quot;x&quot;\)&lt;/script&gt; &amp; Co}, '... a title with markup escaped');
unlike($r->{body}, qr{<script>}, '... never as markup');
like($r->{body}, qr{class="theme-electronics"}, '... in its theme');
$r = call('bravo', GET => '/');
like($r->{body}, qr{No products yet\..*}s, "bravo's front page has none of alpha's products");
like($r->{body}, qr{class="theme-fashion"}, '... and its own theme');

# --- the admin's password reset: the new one signs in, the old one does not -------------
($rc, $out) = medusa($store{alpha}{dir}, 'store_alpha', { ADMIN_EMAIL => 'admin@alpha.test', ADMIN_PASSWORD => 'pass-alpha-2' },
                     'exec', './admin-login.js');
like($out, qr/admin password reset/, "alpha's admin password is reset");
is(call('alpha', POST => '/auth/user/emailpass', body => { email => 'admin@alpha.test', password => 'pass-alpha-2' })->{status},
   200, '... the new password signs in');
is(call('alpha', POST => '/auth/user/emailpass', body => { email => 'admin@alpha.test', password => 'pass-alpha-1' })->{status},
   401, '... the old one does not');

Tenant::Test::finish();
