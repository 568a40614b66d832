# Tenant creation is limited per API key by the API itself
# (tenant_admin_api_create_limit): only accepted creates count, the 429 is
# JSON and carries Retry-After, and each key has its own budget.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Tenant::Test;
use Tenant::Conf;

my $t = Tenant::Test->new->start_pg;
$t->migrate;
$t->start_nginx(http => Tenant::Conf::http(ratelimit => '5 1m'), workers => 1);
$t->psql(q{INSERT INTO blueprints (name) VALUES ('static')});
$t->{api_key} = $t->create_api_key('busy');
my $other = $t->create_api_key('other');

# refused creates are not counted: ten bad ones first
my @bad = map { $t->api(POST => 'tenants', { name => "bad$_", blueprint => 'nope' })->{status} } 1 .. 5;
push @bad, map { $t->api(POST => 'tenants', { name => 'x', blueprint => 'static' })->{status} } 1 .. 5;
is_deeply(\@bad, [ (422) x 10 ], 'ten refused creates (unknown blueprint, bad name)');

my @codes = map { $t->api(POST => 'tenants', { name => "burst$_", blueprint => 'static' })->{status} } 1 .. 5;
is_deeply(\@codes, [ (202) x 5 ], 'five accepted creations: the refused ones did not use the budget');
my $r = $t->api(POST => 'tenants', { name => 'burst6', blueprint => 'static' });
is($r->{status}, 429, 'the sixth: 429');
is($r->{json}{error}{code}, 'rate_limited', '... with a JSON error');
like($r->{headers}{'retry-after'} // '', qr/^\d+$/, '... and Retry-After');
ok(($r->{headers}{'retry-after'} // 0) >= 1 && $r->{headers}{'retry-after'} <= 60,
   'Retry-After is within the one-minute window (' . ($r->{headers}{'retry-after'} // '-') . ' s)');
is($t->psql("SELECT count(*) FROM tenants WHERE id = 'burst6'"), 0, 'the refused creation wrote nothing');
is($t->api(GET => 'tenants')->{status}, 200, 'reads are not limited');
is($t->api(POST => 'tenants/burst1/suspend')->{status}, 409, 'other mutations are not limited (409: not active)');
is($t->api(POST => 'tenants', { name => 'fresh1', blueprint => 'static' },
           headers => { Authorization => "Bearer $other" })->{status}, 202, 'another key has its own budget');

# concurrent creates cannot race past the limit
my $third = $t->create_api_key('third');
my @kids;
for my $i (1 .. 10) {
    my $pid = fork // die;
    if (!$pid) {
        my $x = $t->api(POST => 'tenants', { name => "race$i", blueprint => 'static' },
                        headers => { Authorization => "Bearer $third" });
        POSIX::_exit($x->{status} == 202 ? 0 : $x->{status} == 429 ? 1 : 2);
    }
    push @kids, $pid;
}
my %st;
for (@kids) { waitpid $_, 0; $st{$? >> 8}++ }
is($st{0}, 5, 'ten concurrent creates with a fresh key: exactly five accepted');
is($st{1}, 5, '... and five 429');

Tenant::Test::finish();
