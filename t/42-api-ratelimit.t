# Tenant creation is rate-limited per API key with nginx's own limit_req
# (5 a minute, as configured in conf/nginx.conf); the 429 is JSON.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Tenant::Test;
use Tenant::Conf;

my $t = Tenant::Test->new->start_pg;
$t->migrate;
$t->start_nginx(http => Tenant::Conf::http(ratelimit => 1), workers => 1);
$t->psql(q{INSERT INTO blueprints (name) VALUES ('static')});
$t->{api_key} = $t->create_api_key('busy');
my $other = $t->create_api_key('other');

my @codes = map { $t->api(POST => 'tenants', { name => "burst$_", blueprint => 'static' })->{status} } 1 .. 7;
is_deeply([ @codes[0 .. 4] ], [ (202) x 5 ], 'five creations in a row are accepted');
my $r = $t->api(POST => 'tenants', { name => 'burst8', blueprint => 'static' });
is($r->{status}, 429, 'then 429');
is($r->{json}{error}{code}, 'rate_limited', '... with a JSON error');
is($t->psql("SELECT count(*) FROM tenants WHERE id = 'burst8'"), 0, 'the refused creation wrote nothing');
is($t->api(GET => 'tenants')->{status}, 200, 'reads are not limited');
is($t->api(POST => 'tenants/burst1/suspend')->{status}, 409, 'other mutations are not limited (409: not active)');
is($t->api(POST => 'tenants', { name => 'fresh1', blueprint => 'static' },
           headers => { Authorization => "Bearer $other" })->{status}, 202, 'another key has its own budget');

Tenant::Test::finish();
