# Hostile input to the admin API: every request gets a 4xx with a JSON
# error, and the registry is exactly as it was before.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Tenant::Test;
use Tenant::Conf;

my $t = Tenant::Test->new->start_pg;
$t->migrate;
$t->start_nginx(http => Tenant::Conf::http());
$t->psql(q{INSERT INTO blueprints (name, themes) VALUES ('static', '{default,fashion}')});
$t->{api_key} = $t->create_api_key('hostile');
is($t->api(POST => 'tenants', { name => 'victim', blueprint => 'static' })->{status}, 202, 'one honest tenant');

my $snapshot = sub {
    join "\n", map { $t->psql("SELECT md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) || ':' || count(*) FROM $_ x") }
        qw(tenants tenant_hosts tenant_endpoints jobs audit_log api_keys blueprints);
};
my $before = $snapshot->();

my $deep = ('[' x 5000) . (']' x 5000);
my $deep_obj = '{"name":' . ('{"a":' x 3000) . '1' . ('}' x 3000) . ',"blueprint":"static"}';
my @corpus = (
    # malformed JSON
    [POST => 'tenants', '{'], [POST => 'tenants', '{"name":}'], [POST => 'tenants', 'null'],
    [POST => 'tenants', '"just a string"'], [POST => 'tenants', ''], [POST => 'tenants', "\x00\x01\x02"],
    [POST => 'tenants', '{"name":"acme","blueprint":"static"} trailing'],
    [POST => 'tenants', $deep], [POST => 'tenants', $deep_obj],
    # wrong types and huge numbers
    [POST => 'tenants', '{"name":true,"blueprint":"static"}'],
    [POST => 'tenants', '{"name":"acme","blueprint":12345678901234567890123456789}'],
    [POST => 'tenants', '{"name":"acme","blueprint":1e999}'],
    [POST => 'tenants', '{"name":{"$gt":""},"blueprint":"static"}'],
    [POST => 'tenants', '{"name":null,"blueprint":"static"}'],
    # invalid UTF-8, NUL bytes
    [POST => 'tenants', qq~{"name":"ac\xffme","blueprint":"static"}~],
    [POST => 'tenants', qq~{"name":"ac\xc3\x28me","blueprint":"static"}~],
    [POST => 'tenants', '{"name":"ac\u0000me","blueprint":"static"}'],
    [POST => 'tenants', qq~{"name":"acme","blueprint":"static","display_name":"a\x00b"}~],
    [POST => 'tenants', '{"name":"acme2","blueprint":"static","display_name":"line\nbreak"}'],
    # SQL metacharacters
    [POST => 'tenants', q~{"name":"x'); DROP TABLE tenants;--","blueprint":"static"}~],
    [POST => 'tenants', q~{"name":"acme2","blueprint":"static' OR '1'='1"}~],
    [POST => 'tenants', q~{"name":"acme2","blueprint":"static","theme":"fashion'--"}~],
    [POST => 'tenants/victim/domains', q~{"host":"x.com'); DELETE FROM tenants;--"}~],
    [GET => "tenants?after=a'%20OR%201=1--"],
    [GET => "tenants/victim'%20OR%20'1'='1"],
    # overlong values
    [POST => 'tenants', '{"name":"' . ('a' x 10000) . '","blueprint":"static"}'],
    [POST => 'tenants', '{"name":"acme2","blueprint":"' . ('b' x 5000) . '"}'],
    [POST => 'tenants', '{"name":"acme2","blueprint":"static","display_name":"' . ('d' x 300) . '"}'],
    [POST => 'tenants/victim/domains', '{"host":"' . ('h' x 300) . '.com"}'],
    # path traversal and odd paths
    [GET => 'tenants/%2e%2e'], [DELETE => 'tenants/..'],
    [GET => 'jobs/-1'], [GET => 'jobs/99999999999999999999999'],
    [DELETE => 'tenants/victim/domains/..%2F..'],
    # header injection attempts in names
    [POST => 'tenants', '{"name":"acme\r\nX-Injected: 1","blueprint":"static"}'],
    [POST => 'tenants/victim/domains', '{"host":"evil.com\r\nSet-Cookie: x=1"}'],
    # bad query parameters
    [GET => 'tenants?limit=-5'], [GET => 'tenants?limit=99999999999999999999'],
    [GET => 'jobs/1?wait=-1'], [GET => 'jobs/1?wait=abc'],
    # methods and routes
    [PATCH => 'tenants/victim'], [PUT => 'tenants'], [DELETE => 'jobs/1'], [GET => 'tenants/victim/nope'],
);

my ($all_4xx, $all_json) = (1, 1);
for my $c (@corpus) {
    my ($method, $path, $body) = @$c;
    my $r = $t->api($method, $path, $body);
    my $label = "$method $path " . (defined $body ? substr($body =~ s/[^\x20-\x7e]/?/gr, 0, 40) : '');
    if ($r->{status} < 400 || $r->{status} > 499) {
        $all_4xx = 0;
        diag("not a 4xx: $label -> $r->{status} $r->{body}");
    }
    if (!$r->{json} || !$r->{json}{error}{code}) {
        $all_json = 0;
        diag("no JSON error: $label -> $r->{status} " . substr($r->{body}, 0, 100));
    }
    unlike($r->{headers}{'x-injected'} // '', qr/1/, "no injected header: $label");
}
# nginx refuses these before any location: a NUL in the path is a 400 from
# its URI parser, and ../ segments are resolved first, so the request leaves
# /api/ and never reaches the API. 4xx, nothing written; the body is nginx's.
for my $c ([GET => 'tenants/..%2F..%2Fetc%2Fpasswd'], [POST => 'tenants/%00/suspend'],
           [GET => 'tenants/%2e%2e%2f%2e%2e%2fjobs']) {
    my $r = $t->api(@$c);
    ok($r->{status} >= 400 && $r->{status} < 500, "$c->[0] $c->[1]: $r->{status} from nginx, before the API");
}

ok($all_4xx, scalar(@corpus) . ' hostile requests all answered 4xx');
ok($all_json, '... each with a JSON error');
is($snapshot->(), $before, 'the registry is unchanged: same rows in every table');
is($t->api(GET => 'tenants/victim')->{status}, 200, 'the honest tenant is still there');
is($t->api(GET => 'health', undef, nokey => 1)->{status}, 200, 'nginx still healthy');

Tenant::Test::finish();
