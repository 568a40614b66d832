# The edge's token check (tenant_jwt): a request reaches its tenant's stack
# only with a token signed by one of the registry's keys (RS256, ES256),
# current, from the issuer for the audience, and naming the Host's tenant
# in the tenant claim (namespaced here). Every refused token (missing,
# expired, not yet valid, another issuer or audience, another tenant's,
# alg none, tampered, HS256 keyed with the public key, oversized,
# malformed) is counted at the stack: none reaches it. Claims reach the
# stack as headers, never with a line break. Keys come from an upload and
# from an issuer's JWKS fetched by the provisioner; rotating the JWKS and
# removing a key take effect without a reload, verified tokens included.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use MIME::Base64 qw(encode_base64url decode_base64url);
use Time::HiRes qw(time sleep);
use Crypt::JWT qw(encode_jwt);
use Crypt::PK::RSA;
use Crypt::PK::ECC;
use Tenant::Test;
use Tenant::Conf;

my $t = Tenant::Test->new->start_pg;
$t->migrate;
my $dir = $t->dir;
my $stack = Tenant::Test::free_port();
my $jwks_port = Tenant::Test::free_port();
mkdir "$dir/jwks";

my $ns = 'https://example.test/tenant_id';
my $http = Tenant::Conf::http(extra => <<"EXTRA") . <<"SERVERS";
        location /app/ {
            tenant_jwt on;
            tenant_jwt_issuer https://id.example.test/;
            tenant_jwt_audience shop;
            tenant_jwt_claim $ns;
            tenant_jwt_cookie session;
            tenant_jwt_max_size 4k;
            proxy_pass http://tenant_backend;
            proxy_set_header X-Tenant-ID \$tenant_id;
            proxy_set_header X-Jwt-Sub \$tenant_jwt_sub;
            proxy_set_header X-Jwt-Email \$tenant_jwt_claim_email;
            proxy_set_header X-Jwt-Roles \$tenant_jwt_claim_roles;
        }
        location /plain/ {
            tenant_jwt on;
            proxy_pass http://tenant_backend;
        }
        location /members/ {
            tenant_jwt on;
            tenant_jwt_approved email;
            proxy_pass http://tenant_backend;
        }
EXTRA
    server {
        listen 127.0.0.1:$stack;
        access_log $dir/stack.log;
        location / {
            return 200 "stack tenant=\$http_x_tenant_id sub=\$http_x_jwt_sub email=\$http_x_jwt_email roles=\$http_x_jwt_roles evil=\$http_x_evil\\n";
        }
    }
    server {
        listen 127.0.0.1:$jwks_port;
        access_log off;
        root $dir/jwks;
    }
SERVERS
$t->start_nginx(http => $http);
$t->start_provisioner(extra => ['jwks_pass_interval = 1']);
$t->add_tenant($_, site => ["127.0.0.1:$stack"], admin => ["127.0.0.1:$stack"]) for qw(club other);

# the stack's access log line is written after its answer is sent: count
# once the log has stopped growing
sub reached {
    my $lines = sub { my @l = split /\n/, Tenant::Test::slurp("$dir/stack.log"); scalar @l };
    my ($was, $n) = (-1, $lines->());
    while ($n != $was) { sleep 0.2; ($was, $n) = ($n, $lines->()) }
    return $n;
}

# keys: RSA 2048 and P-256 uploaded; others for the JWKS later
my $rsa = Crypt::PK::RSA->new; $rsa->generate_key(256);
my $ec = Crypt::PK::ECC->new; $ec->generate_key('secp256r1');
Tenant::Test::write_file("$dir/rsa.pem", $rsa->export_key_pem('public'));
Tenant::Test::write_file("$dir/ec.pem", $ec->export_key_pem('public'));

my ($rc, $out) = $t->cli('jwt', 'upload', 'rsa-1', "$dir/rsa.pem");
is($rc, 0, 'jwt upload of an RSA key') or diag $out;
like($out, qr/rsa-1 RS256/, '... stored for RS256');
($rc, $out) = $t->cli('jwt', 'upload', 'ec-1', "$dir/ec.pem");
like($out, qr/ec-1 ES256/, 'a P-256 key: ES256');

# what is refused at upload, naming the field, changing nothing
($rc, $out) = $t->cli('jwt', 'upload', 'ec-1', "$dir/ec.pem");
is($rc, 4, 'a kid taken: exit 4');
($rc, $out) = $t->cli('jwt', 'upload', 'bad kid', "$dir/ec.pem");
is($rc, 2, 'a kid with a space: exit 2');
like($out, qr/KID/, '... naming KID');
my $weak = Crypt::PK::RSA->new; $weak->generate_key(128);
Tenant::Test::write_file("$dir/weak.pem", $weak->export_key_pem('public'));
($rc, $out) = $t->cli('jwt', 'upload', 'weak', "$dir/weak.pem");
is($rc, 2, 'an RSA key of 1024 bits: refused');
like($out, qr/FILE .*1024 bits: 2048 to 8192/, '... saying why');
my $p384 = Crypt::PK::ECC->new; $p384->generate_key('secp384r1');
Tenant::Test::write_file("$dir/p384.pem", $p384->export_key_pem('public'));
($rc, $out) = $t->cli('jwt', 'upload', 'p384', "$dir/p384.pem");
like($out, qr/only P-256/, 'a P-384 key: refused');
Tenant::Test::write_file("$dir/junk.pem", "not a key\n");
($rc, $out) = $t->cli('jwt', 'upload', 'junk', "$dir/junk.pem");
like($out, qr/no PEM public key/, 'not a key: refused');
is($t->psql('SELECT count(*) FROM jwt_keys'), 2, 'two keys stored, no more');

my $now = time;
sub claims { return { iss => 'https://id.example.test/', aud => 'shop', sub => 'user-1',
                      exp => int($now) + 3600, iat => int($now), $ns => 'club',
                      email => 'ann@example.com', roles => ['buyer'], @_ } }
sub rs { encode_jwt(payload => claims(@_), key => $rsa, alg => 'RS256', extra_headers => { kid => 'rsa-1' }) }
sub es { encode_jwt(payload => claims(@_), key => $ec, alg => 'ES256', extra_headers => { kid => 'ec-1' }) }
sub app {
    my ($token, %o) = @_;
    my %h = defined $token ? (Authorization => "Bearer $token") : ();
    %h = (Cookie => "theme=dark; session=$token") if $o{cookie};
    return $t->get($o{host} // 'club.localhost', $o{path} // '/app/', headers => \%h);
}

Tenant::Test::wait_until(sub { app(rs())->{status} == 200 }, 10) or diag 'the keys did not reach the edge';
my $before = reached();
my $r = app(rs());
is($r->{status}, 200, 'RS256, the tenant\'s claim: 200');
like($r->{body}, qr/tenant=club sub=user-1 email=ann\@example.com roles=\["buyer"\]/,
     'claims reach the stack as headers ($tenant_jwt_sub, $tenant_jwt_claim_*)');
is(app(es())->{status}, 200, 'ES256: 200');
is(app(es(), cookie => 1)->{status}, 200, 'the token in the named cookie: 200');
is(app(rs(aud => ['billing', 'shop']))->{status}, 200, 'an audience list with ours: 200');
is(app(rs(), host => 'admin.club.localhost')->{status}, 200, 'the tenant\'s admin host: the same tenant');
is(app(rs(exp => int($now) - 5))->{status}, 200, 'expired 5 s ago, within the leeway (30 s): 200');
is(reached() - $before, 6, 'six answered by the stack');

# refused: none of these reaches the stack
$before = reached();
sub refused {
    my ($name, $token, $status, $error, %o) = @_;
    my $r = app($token, %o);
    is($r->{status}, $status, "$name: $status");
    my $www = $r->{headers}{'www-authenticate'} // '';
    if ($error) {
        like($www, qr/^Bearer realm="tenant", error="\Q$error\E"/, "... WWW-Authenticate error=\"$error\"");
    } else {
        is($www, 'Bearer realm="tenant"', '... a bare challenge');
    }
    return $www;
}
refused('no token', undef, 401, '');
{
    my $r = $t->get('club.localhost', '/app/', headers => { Authorization => 'Basic dXNlcjpwYXNz' });
    is($r->{status}, 401, 'Basic credentials: 401');
}
like(refused('expired', rs(exp => int($now) - 120), 401, 'invalid_token'), qr/expired/, '... "expired"');
like(refused('not valid yet', rs(nbf => int($now) + 600), 401, 'invalid_token'), qr/not valid yet/, '... "not valid yet"');
like(refused('no exp', rs(exp => undef), 401, 'invalid_token'), qr/no "exp"/, '... "no exp"');
like(refused('another issuer', rs(iss => 'https://evil.test/'), 401, 'invalid_token'), qr/issuer/, '... "issuer"');
like(refused('another audience', rs(aud => 'billing'), 401, 'invalid_token'), qr/audience/, '... "audience"');
like(refused('another tenant\'s token', rs($ns => 'other'), 403, 'insufficient_scope'), qr/not for this tenant/,
     '... "not for this tenant"');
refused('no tenant claim', rs($ns => undef), 403, 'insufficient_scope');
refused('the claim under its plain name only', rs($ns => undef, tenant_id => 'club'), 403, 'insufficient_scope');
refused('a number for the tenant', rs($ns => 7), 403, 'insufficient_scope');

my $good = rs();
my ($h, $p, $s) = split /\./, $good;
my $none_h = encode_base64url(encode_json({ alg => 'none', typ => 'JWT' }));
like(refused('alg none, no signature', "$none_h.$p.", 401, 'invalid_token'), qr/not signed/, '... "not signed"');
like(refused('alg none, any signature', "$none_h.$p.$s", 401, 'invalid_token'), qr/algorithm/, '... "algorithm"');
my $none_kid = encode_base64url(encode_json({ alg => 'none', kid => 'rsa-1' }));
refused('alg none naming a key', "$none_kid.$p.$s", 401, 'invalid_token');
my $t2 = $s; substr($t2, 100, 1) = substr($t2, 100, 1) eq 'A' ? 'B' : 'A';
like(refused('a tampered signature', "$h.$p.$t2", 401, 'invalid_token'), qr/signature/, '... "signature"');
my $p2 = encode_base64url(encode_json(claims($ns => 'club', sub => 'admin')));
refused('a payload changed under a good signature', "$h.$p2.$s", 401, 'invalid_token');
my ($eh, $ep, $es) = split /\./, rs($ns => 'other');
refused('another tenant\'s payload under our signature', "$h.$ep.$s", 401, 'invalid_token');
# key confusion: HS256 keyed with the public key the edge holds
for my $pem ($rsa->export_key_pem('public'), $ec->export_key_pem('public')) {
    my $hs = encode_jwt(payload => claims(), key => $pem, alg => 'HS256', extra_headers => { kid => 'rsa-1' });
    like(refused('HS256 with the public key as its secret', $hs, 401, 'invalid_token'), qr/algorithm/, '... "algorithm"');
}
my $es_as_rs = encode_jwt(payload => claims(), key => $ec, alg => 'ES256', extra_headers => { kid => 'rsa-1' });
refused('ES256 naming the RSA key', $es_as_rs, 401, 'invalid_token');
my $rs_nokid = encode_jwt(payload => claims(), key => $rsa, alg => 'RS256');
is(app($rs_nokid)->{status}, 200, 'no kid: the keys of its algorithm are tried');
$before++;
my $stranger = Crypt::PK::ECC->new; $stranger->generate_key('secp256r1');
refused('signed by a key the platform does not have', encode_jwt(payload => claims(), key => $stranger, alg => 'ES256', extra_headers => { kid => 'ec-1' }), 401, 'invalid_token');
my $big = rs(padding => 'x' x 5000);
like(refused('oversized (over tenant_jwt_max_size 4k)', $big, 401, 'invalid_token'), qr/too long/, '... "too long"');
my $crit = encode_base64url(encode_json({ alg => 'RS256', kid => 'rsa-1', crit => ['exp'] }));
refused('crit', "$crit.$p.$s", 401, 'invalid_token');
for my $m ('abc', 'a.b', "$h.$p", "$h.$p.$s.x", "$h..$s", ".$p.$s", "$h.$p.$s=", "$h.$p.!!!!",
           encode_base64url('not json') . ".$p.$s", "$h." . encode_base64url('[1,2]') . ".$s",
           encode_base64url('{"alg":"RS256","alg":"none"}') . ".$p.$s", "\x01\x02") {
    (my $shown = $m) =~ s/[^\x20-\x7e]/?/g;
    refused('malformed: ' . substr($shown, 0, 40), $m, 401, 'invalid_token');
}
# a token signed over a payload with a duplicated member
my $dup = encode_base64url('{"exp":' . (int($now) + 3600) . ',"exp":1,"' . $ns . '":"club"}');
refused('duplicate claims', "$h.$dup.$s", 401, 'invalid_token');
is(reached() - $before, 0, 'none of the refused tokens reached the stack');

# the default claim name on /plain/
is(app(rs(tenant_id => 'club'), path => '/plain/')->{status}, 200, 'default claim tenant_id: 200');
is(app(rs(), path => '/plain/')->{status}, 403, '... the namespaced one is not it: 403');
is(app(rs(tenant_id => 'club'), host => 'other.localhost', path => '/plain/')->{status}, 403,
   'club\'s token on other\'s host: 403');

# claims with a line break never become header lines
$r = app(rs(email => "a\@b.test\r\nX-Evil: 1", sub => "u\n1"));
is($r->{status}, 200, 'a claim with CR LF: the request goes on');
like($r->{body}, qr/sub= email= roles=\S+ evil=\n/, '... without those claims, and no injected header');

# tenant_jwt_approved email: the token's email must be an approved sign-up
# of the Host's tenant; the registry is asked without blocking
sub member { app(rs(tenant_id => 'club', @_), path => '/members/') }
$r = member(email => 'cat@example.com');
is($r->{status}, 403, 'no sign-up: 403');
like($r->{headers}{'www-authenticate'}, qr/not an approved sign-up/, '... saying why');
$t->psql("INSERT INTO tenant_signups (tenant_id, email) VALUES ('club', 'cat\@example.com')");
sleep 1.1;
is(member(email => 'cat@example.com')->{status}, 403, 'a pending sign-up: 403');
$t->psql("UPDATE tenant_signups SET status = 'approved' WHERE email = 'cat\@example.com'");
ok(Tenant::Test::wait_until(sub { member(email => 'cat@example.com')->{status} == 200 }, 5),
   'approved: 200 within a second or so');
is(member(email => 'Cat@Example.COM')->{status}, 200, 'the address in another case: the same sign-up');
$t->psql("INSERT INTO tenant_signups (tenant_id, email, status) VALUES ('other', 'dan\@example.com', 'approved')");
is(member(email => 'dan@example.com')->{status}, 403, 'approved by another tenant only: 403');
is(member(email => undef)->{status}, 403, 'no email claim: 403');
is(member(email => 'cat@example.com', tenant_id => 'other')->{status}, 403,
   'an approved subject does not make another tenant\'s token good');
# the registry frozen: a subject not yet answered for is not let in
member(email => 'eve@example.com');   # the tenant and the token warm
$t->pg_freeze;
my $frozen = member(email => 'fay@example.com');
$t->pg_cont;
is($frozen->{status}, 503, 'the registry does not answer: 503, not a yes');
is(member(email => 'cat@example.com')->{status}, 200, '... and an approval it gave is served again after');

# verified tokens are remembered; nginx does not reload for key changes
my @workers = $t->nginx_worker_pids;
is(app($good)->{status}, 200, 'a verified token again');

# the JWKS: the provisioner fetches it, the edge follows
my $k2 = Crypt::PK::ECC->new; $k2->generate_key('secp256r1');
my $k3 = Crypt::PK::RSA->new; $k3->generate_key(256);
sub jwk { my ($k, $kid, $alg) = @_; my $j = $k->export_key_jwk('public', 1); $j->{kid} = $kid; $j->{alg} = $alg; $j->{use} = 'sig'; $j }
sub jwks { Tenant::Test::write_file("$dir/jwks/keys.json.tmp", encode_json({ keys => [@_] }));
           rename "$dir/jwks/keys.json.tmp", "$dir/jwks/keys.json" }
my $url = "http://127.0.0.1:$jwks_port/keys.json";
($rc, $out) = $t->cli('jwt', 'jwks', "http://127.0.0.1:$jwks_port/missing.json");
is($rc, 1, 'a JWKS URL that answers 404: exit 1');
like($out, qr/answered 404/, '... saying so');
is($t->psql('SELECT count(*) FROM jwks_sources'), 0, '... and no source is kept');
jwks(jwk($k2, 'ec-2', 'ES256'), { kty => 'oct', kid => 'sym', k => 'c2VjcmV0' },
     { %{ jwk($k3, 'rs-enc', 'RS256') }, use => 'enc' });
($rc, $out) = $t->cli('jwt', 'jwks', $url, '--refresh', '1');
is($rc, 0, 'jwt jwks URL') or diag $out;
like($out, qr/: 1 keys/, '... one usable key (an "oct" key and an encryption key skipped)');
sub es2 { encode_jwt(payload => claims(@_), key => $k2, alg => 'ES256', extra_headers => { kid => 'ec-2' }) }
ok(Tenant::Test::wait_until(sub { app(es2())->{status} == 200 }, 10), 'a token of the JWKS key: 200');

# rotation: the issuer publishes k3, drops k2
sub rs3 { encode_jwt(payload => claims(@_), key => $k3, alg => 'RS256', extra_headers => { kid => 'rs-3' }) }
my ($old, $new) = (es2(), rs3());
is(app($new)->{status}, 401, 'the next key before it is published: 401');
my $t0 = time;
jwks(jwk($k3, 'rs-3', 'RS256'));
ok(Tenant::Test::wait_until(sub { app($new)->{status} == 200 }, 20), 'rotated: the new key\'s token is taken');
my $rotation = time - $t0;
ok(Tenant::Test::wait_until(sub { app($old)->{status} == 401 }, 10), '... the dropped key\'s token, verified before, is not');
diag(sprintf 'JWKS rotation live at the edge in %.2f s (refresh 1 s)', $rotation);
like(($t->cli('jwt', 'keys'))[1], qr/rs-3\s+RS256\s+jwks/, 'jwt keys lists it as from the JWKS');

# a broken JWKS changes nothing
jwks();
sleep 2.5;
is(app($new)->{status}, 200, 'an empty JWKS leaves the keys as they were');
like(($t->cli('jwt', 'sources'))[1], qr/no RS256 or ES256 signing key/, '... and jwt sources says why');
Tenant::Test::write_file("$dir/jwks/keys.json", '{"keys": [');
sleep 2.5;
is(app($new)->{status}, 200, 'a JWKS that is not JSON: the same');

# an uploaded key removed: its verified tokens stop at once
($rc, $out) = $t->cli('jwt', 'remove', 'rsa-1');
is($rc, 0, 'jwt remove rsa-1');
ok(Tenant::Test::wait_until(sub { app($good)->{status} == 401 }, 10), '... its token, verified and cached, is refused');
is(app(es())->{status}, 200, 'the other keys still serve');
is(($t->cli('jwt', 'remove', 'rsa-1'))[0], 3, 'removing it again: exit 3');
($rc, $out) = $t->cli('jwt', 'remove', $url);
ok(Tenant::Test::wait_until(sub { app($new)->{status} == 401 }, 10), 'the JWKS source removed: its keys go');

# the same over the admin API (platform keys only)
$t->{api_key} = $t->create_api_key('platform');
my $k4 = Crypt::PK::ECC->new; $k4->generate_key('secp256r1');
sub es4 { encode_jwt(payload => claims(@_), key => $k4, alg => 'ES256', extra_headers => { kid => 'api-1' }) }
$r = $t->api(POST => 'jwt/keys', { kid => 'api-1', pem => $k4->export_key_pem('public') });
is($r->{status}, 201, 'POST jwt/keys: 201');
is($r->{json}{key}{alg}, 'ES256', '... ES256');
ok(Tenant::Test::wait_until(sub { app(es4())->{status} == 200 }, 10), '... its tokens taken at the edge');
$r = $t->api(POST => 'jwt/keys', { kid => 'api-1', pem => $k4->export_key_pem('public') });
is($r->{status}, 409, 'the same kid again: 409');
$r = $t->api(POST => 'jwt/keys', { kid => 'weak', pem => $weak->export_key_pem('public') });
is($r->{status}, 422, 'a 1024-bit RSA key: 422');
is($r->{json}{error}{field}, 'pem', '... naming pem');
like($r->{json}{error}{message}, qr/2048 to 8192/, '... saying what is taken');
$r = $t->api(POST => 'jwt/keys', { kid => "a b", pem => $k4->export_key_pem('public') });
is($r->{json}{error}{field}, 'kid', 'a kid with a space: 422 naming kid');
$r = $t->api(POST => 'jwt/keys', { kid => 'x', pem => $k4->export_key_pem('public'), alg => 'HS256' });
is($r->{status}, 422, 'an unknown field (alg): 422');
is($r->{json}{error}{code}, 'unknown_field', '... unknown_field');
is($t->psql("SELECT count(*) FROM jwt_keys WHERE kid IN ('weak', 'a b', 'x')"), 0, '... none of them stored');
$r = $t->api(GET => 'jwt/keys');
is_deeply([map { $_->{kid} } @{ $r->{json}{keys} }], ['api-1', 'ec-1'], 'GET jwt/keys');
$r = $t->api(POST => 'jwt/sources', { url => $url, refresh => 1 });
is($r->{status}, 202, 'POST jwt/sources: 202, for the provisioner to fetch');
my $sid = $r->{json}{source}{id};
jwks(jwk($k3, 'rs-3', 'RS256'));
ok(Tenant::Test::wait_until(sub { app($new)->{status} == 200 }, 15), '... fetched by the provisioner, its key live');
$r = $t->api(GET => 'jwt/sources');
is($r->{json}{sources}[0]{keys}, 1, 'GET jwt/sources: one key from it');
is($t->api(POST => 'jwt/sources', { url => $url })->{status}, 409, 'the same URL again: 409');
is($t->api(POST => 'jwt/sources', { url => 'ftp://x' })->{json}{error}{field}, 'url', 'not http(s): 422 naming url');
is($t->api(POST => 'jwt/sources', { url => "$url?a", refresh => 0 })->{json}{error}{field}, 'refresh',
   'refresh 0: 422 naming refresh');
is($t->api(DELETE => "jwt/sources/$sid")->{status}, 200, 'DELETE jwt/sources/{id}');
ok(Tenant::Test::wait_until(sub { app($new)->{status} == 401 }, 10), '... its key gone at the edge');
is($t->api(DELETE => 'jwt/keys/api-1')->{status}, 200, 'DELETE jwt/keys/{kid}');
ok(Tenant::Test::wait_until(sub { app(es4())->{status} == 401 }, 10), '... its token refused');
$r = $t->api(DELETE => 'jwt/keys/api-1');
is($r->{status}, 404, '... and again: 404');
is($r->{json}{error}{code}, 'no_such_key', '... no_such_key');
(undef, $out) = $t->cli('apikey', 'create', 'club admin', '--tenant', 'club');
my ($club_key) = $out =~ /^(tk_\S+)$/m;
is($t->api(GET => 'jwt/keys', undef, headers => { Authorization => "Bearer $club_key" })->{status}, 403, 'a tenant\'s key: 403');

is_deeply([$t->nginx_worker_pids], \@workers, 'no reload: the same workers throughout');
like($t->psql("SELECT string_agg(action, ',' ORDER BY id) FROM audit_log WHERE action LIKE 'jwt.%'"),
     qr/^jwt\.key\.upload,jwt\.key\.upload,jwt\.jwks\.add,jwt\.key\.remove,jwt\.jwks\.remove/,
     'uploads, the source and removals audited (the failed add left none)');
Tenant::Test::finish();
