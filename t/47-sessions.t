# Operators' sessions, the dashboard's way into the admin API: operators
# made by the CLI (password on stdin, yescrypt), sign-in limited against
# guessing, a session cookie (HttpOnly, SameSite=Strict), CSRF on every
# change, sign-out and revocation, the audit log naming the user; API keys
# keep working beside them.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use POSIX ();
use IO::Socket::SSL;
use Tenant::Test;
use Tenant::Conf;
use Tenant::Tls;

my $t = Tenant::Test->new->start_pg;
$t->migrate;
# the admin API over HTTPS too, where the cookie must be Secure
my $tls = Tenant::Tls->new($t->dir);
my $leaf = $tls->leaf('platform', ['localhost'], by_root => 1);
my $sport = Tenant::Test::free_port();
$t->start_nginx(backends => ['b1'], http => Tenant::Conf::http() . <<"TLS");
    server {
        listen 127.0.0.1:$sport ssl;
        ssl_certificate $leaf->{cert};
        ssl_certificate_key $leaf->{key};
        location /api/ { tenant_admin_api; }
    }
TLS
$t->psql(q{INSERT INTO blueprints (name, themes, modes, definition) VALUES
    ('static', '{default}', '{dedicated}', '{"drivers":["process"]}')});

sub users {
    my ($stdin, @args) = @_;
    my $cmd = join ' ', map { Tenant::Test::shell_quote($_) }
        $Tenant::Test::PROVISIONER, '--db', $t->conninfo, 'users', @args;
    $cmd = 'printf "%s\n" ' . Tenant::Test::shell_quote($stdin) . " | $cmd" if defined $stdin;
    return Tenant::Test::run_cmd('sh', '-c', "$cmd </dev/null") unless defined $stdin;
    return Tenant::Test::run_cmd('sh', '-c', $cmd);
}

# --- operators, from the CLI ---------------------------------------------------
my ($rc, $out) = users('correct horse battery', 'add', 'alice');
is($rc, 0, 'users add alice (password on stdin)') or diag($out);
like($t->psql(q{SELECT password_hash FROM operators WHERE name = 'alice'}), qr/^\$y\$/, '... kept as a yescrypt hash');
($rc, $out) = users('short', 'add', 'bob');
is($rc, 2, 'a password under 12 characters: exit 2');
like($out, qr/password: at least 12 characters/, '... naming the password');
($rc, $out) = users(undef, 'add', 'bob');
is($rc, 2, 'no password on stdin: exit 2');
like($out, qr/password: give it on standard input/, '... saying how');
($rc, $out) = users('correct horse battery', 'add', 'Bob!');
is($rc, 2, 'a bad name: exit 2');
like($out, qr/NAME: starts with a lowercase letter/, '... naming the rule');
($rc, $out) = users('another good password', 'add', 'alice');
is($rc, 4, 'alice again: exit 4 (exists)');
is($t->psql(q{SELECT count(*) FROM operators}), 1, 'nothing else was made');
($rc, $out) = users(undef, 'list');
like($out, qr/^alice\t/m, 'users list shows alice');

# --- sign-in ---------------------------------------------------------------------
sub signin {
    my ($user, $pw, %h) = @_;
    return $t->api(POST => 'session', { user => $user, password => $pw }, nokey => 1, headers => \%h);
}
my $r = signin('alice', 'wrong password here');
is($r->{status}, 401, 'a wrong password: 401');
is($r->{json}{error}{code}, 'bad_credentials', '... bad_credentials');
ok(!$r->{headers}{'set-cookie'}, '... and no cookie');
$r = signin('nobody', 'correct horse battery');
is($r->{status}, 401, 'an unknown user: the same 401');
is($r->{json}{error}{message}, 'wrong user name or password', '... with the same words');
$r = $t->api(POST => 'session', { user => 'alice' }, nokey => 1);
is($r->{status}, 422, 'no password: 422');
is($r->{json}{error}{field}, 'password', '... naming the field');
$r = $t->api(POST => 'session', { user => 'alice', password => 'x', remember => 1 }, nokey => 1);
is($r->{status}, 422, 'an unknown field: 422');

$r = signin('alice', 'correct horse battery', 'User-Agent' => 'the test');
is($r->{status}, 200, 'the right password: 200');
is($r->{json}{user}, 'alice', '... signed in as alice');
my $csrf = $r->{json}{csrf};
like($csrf // '', qr/^[0-9a-f]{64}$/, '... with a CSRF token');
my $cookie = $r->{headers}{'set-cookie'} // '';
like($cookie, qr/^ngx_tenant_session=[A-Za-z0-9_-]{43}; /, 'a session cookie: 32 random bytes');
like($cookie, qr/; HttpOnly/, '... HttpOnly');
like($cookie, qr/; SameSite=Strict/, '... SameSite=Strict');
like($cookie, qr/; Path=\//, '... Path=/');
unlike($cookie, qr/Secure/, '... not Secure over plain HTTP');
my ($token) = $cookie =~ /^ngx_tenant_session=([^;]+)/;

my $s = IO::Socket::SSL->new(PeerAddr => '127.0.0.1', PeerPort => $sport, SSL_hostname => 'localhost',
                             SSL_ca_file => $tls->ca, Timeout => 10) or die "TLS: $SSL_ERROR";
my $sbody = '{"user":"alice","password":"correct horse battery"}';
print $s "POST /api/session HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
    . "Content-Length: " . length($sbody) . "\r\nConnection: close\r\n\r\n$sbody";
my $sresp = Tenant::Test::read_response($s, 10);
close $s;
is($sresp->{status}, 200, 'signed in over HTTPS');
like($sresp->{headers}{'set-cookie'} // '', qr/; SameSite=Strict; Secure$/, '... the cookie is Secure there');
is($t->psql(q{SELECT count(*) FROM operator_sessions WHERE user_agent = 'the test'}), 1, 'the registry has the session');
$t->psql(q{UPDATE operator_sessions SET revoked_at = now() WHERE user_agent <> 'the test'});
is($t->psql("SELECT count(*) FROM operator_sessions WHERE token_hash = decode('"
    . unpack('H*', $token) . "', 'hex')"), 0, '... but never its token (a SHA-256 of it)');

sub as_alice {
    my ($method, $path, $body, %h) = @_;
    return $t->api($method, $path, $body, nokey => 1,
                   headers => { Cookie => "other=1; ngx_tenant_session=$token", %h });
}
$r = as_alice(GET => 'session');
is($r->{status}, 200, 'GET session with the cookie');
is($r->{json}{csrf}, $csrf, '... gives the CSRF token back');
$r = as_alice(GET => 'tenants');
is($r->{status}, 200, 'GET tenants with the cookie: 200');

# --- CSRF -------------------------------------------------------------------------
$r = as_alice(POST => 'tenants', { name => 'shop1', blueprint => 'static' });
is($r->{status}, 403, 'a create with the cookie and no X-CSRF-Token: 403');
is($r->{json}{error}{code}, 'csrf', '... csrf');
$r = as_alice(POST => 'tenants', { name => 'shop1', blueprint => 'static' }, 'X-CSRF-Token' => 'f' x 64);
is($r->{status}, 403, 'with a wrong token: 403');
is($t->psql(q{SELECT count(*) FROM tenants}), 0, 'nothing was made');
$r = as_alice(POST => 'tenants', { name => 'shop1', blueprint => 'static' }, 'X-CSRF-Token' => $csrf);
is($r->{status}, 202, 'with the token: 202') or diag($r->{body});
is($t->psql(q{SELECT actor FROM audit_log WHERE action = 'tenant.create'}), 'user:alice',
   'the audit log names the user');
is($t->psql(q{SELECT count(*) FROM audit_log WHERE action = 'operator.signin' AND actor = 'user:alice'}), 2,
   '... and both sign-ins (HTTP, HTTPS)');

# --- API keys keep working ---------------------------------------------------
$t->{api_key} = $t->create_api_key('machine');
$r = $t->api(POST => 'tenants', { name => 'shop2', blueprint => 'static' });
is($r->{status}, 202, 'an API key changes things without a CSRF token');
$r = $t->api(GET => 'session');
is($r->{json}{key}, substr($t->{api_key}, 3, 16), 'GET session with a key names the key');

# --- sign-out, revocation ---------------------------------------------------------
$r = as_alice(DELETE => 'session', undef, 'X-CSRF-Token' => $csrf);
is($r->{status}, 200, 'DELETE session: signed out');
like($r->{headers}{'set-cookie'} // '', qr/^ngx_tenant_session=; .*Max-Age=0/, '... the cookie cleared');
$r = as_alice(GET => 'tenants');
is($r->{status}, 401, 'the cookie after sign-out: 401');
like($r->{json}{error}{message}, qr/session has ended/, '... saying the session ended');
$r = $t->api(GET => 'tenants', undef, nokey => 1, headers => { Cookie => 'ngx_tenant_session=' . ('A' x 43) });
is($r->{status}, 401, 'a made-up token: 401');

$r = signin('alice', 'correct horse battery');
($token) = ($r->{headers}{'set-cookie'} // '') =~ /^ngx_tenant_session=([^;]+)/;
is(as_alice(GET => 'tenants')->{status}, 200, 'signed in again');
($rc, $out) = users(undef, 'sessions', 'alice');
is(scalar(() = $out =~ /^\d+\talice\t/mg), 1, 'users sessions alice: one live session');
($rc, $out) = users(undef, 'revoke', 'alice');
is($rc, 0, 'users revoke alice') or diag($out);
is(as_alice(GET => 'tenants')->{status}, 401, '... and its session is refused');

$r = signin('alice', 'correct horse battery');
($token) = ($r->{headers}{'set-cookie'} // '') =~ /^ngx_tenant_session=([^;]+)/;
($rc, $out) = users('a brand new password', 'password', 'alice');
is($rc, 0, 'users password alice');
is(as_alice(GET => 'tenants')->{status}, 401, '... ends its sessions');
is(signin('alice', 'correct horse battery')->{status}, 401, '... the old password no longer works');
is(signin('alice', 'a brand new password')->{status}, 200, '... the new one does');

# --- guessing is limited ------------------------------------------------------------
users('the intern password', 'add', 'carol');
my @codes = map { signin('carol', "guess number $_")->{status} } 1 .. 5;
is_deeply(\@codes, [ (401) x 5 ], 'five wrong passwords for carol: 401 each');
$r = signin('carol', 'the intern password');
is($r->{status}, 429, 'the sixth try, even the right password: 429');
ok(($r->{headers}{'retry-after'} // 0) > 0 && $r->{headers}{'retry-after'} <= 900,
   'Retry-After: until the first failure is 15 minutes old (' . ($r->{headers}{'retry-after'} // '-') . ' s)');
is($r->{json}{error}{code}, 'too_many_signins', '... too_many_signins');
is($t->psql(q{SELECT count(*) FROM audit_log WHERE action = 'operator.signin_failed' AND actor = 'user:carol'}), 5,
   'each failure in the audit log');

# --- sign-ins at once, hashed in one worker's thread pool ---------------------------
my $t1 = Tenant::Test->new->share_pg($t);
$t1->start_nginx(workers => 1, backends => ['b1'], http => Tenant::Conf::http());
my @kids;
for my $k (1 .. 4) {
    my $pid = fork // die;
    if (!$pid) {
        my $ok = grep { $t1->api(POST => 'session', { user => 'alice', password => 'a brand new password' },
                                 nokey => 1)->{status} == 200 } 1 .. 5;
        POSIX::_exit($ok == 5 ? 0 : 1);
    }
    push @kids, $pid;
}
my $failed = 0;
for (@kids) { waitpid($_, 0); $failed++ if $? }
is($failed, 0, '20 sign-ins from 4 clients at once on one worker: all 200');
is($t->psql(q{SELECT count(*) FROM operator_sessions WHERE operator = 'alice' AND revoked_at IS NULL}), 21,
   '... 20 sessions, and the one before');

# --- the tenant list the dashboard pages through ------------------------------------
$t->psql(q{INSERT INTO tenants (id, blueprint, status)
           SELECT 'page' || lpad(i::text, 3, '0'), 'static', CASE WHEN i % 10 = 0 THEN 'failed' ELSE 'active' END
             FROM generate_series(1, 120) i});
my @names;
my $after = '';
for (1 .. 5) {
    $r = $t->api(GET => "tenants?prefix=page&limit=50" . ($after ? "&after=$after" : ''));
    push @names, map { $_->{name} } @{ $r->{json}{tenants} };
    last unless $after = $r->{json}{next};
}
is(scalar(@names), 120, 'prefix=page, 50 a page: all 120, once each');
is_deeply([ @names[0, 119] ], [ 'page001', 'page120' ], '... in name order');
$r = $t->api(GET => 'tenants?prefix=page&status=failed&limit=100');
is(scalar(@{ $r->{json}{tenants} }), 12, 'status=failed: the 12 failed');
$r = $t->api(GET => 'tenants?prefix=page1');
is(scalar(@{ $r->{json}{tenants} }), 21, 'prefix=page1: page100-page120 and none else');
$r = $t->api(GET => 'tenants?prefix=Page%27');
is($r->{status}, 400, 'a prefix that is no name start: 400');
is($r->{json}{error}{field}, 'prefix', '... naming it');
is($t->api(GET => 'tenants?status=gone')->{status}, 400, 'an unknown status: 400');

($rc, $out) = users(undef, 'remove', 'alice');
is($rc, 0, 'users remove alice');
is($t->psql(q{SELECT count(*) FROM operator_sessions WHERE operator = 'alice'}), 0, '... and its sessions go');

Tenant::Test::finish();
