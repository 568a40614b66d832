# auto/run starts the platform once, a second run starts no second copy,
# and auto/run stop leaves no process and no listening port behind.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Tenant::Test;

my $t = Tenant::Test->new;
my $var = $t->dir . '/var';
my $http = Tenant::Test::free_port();
my $pg = Tenant::Test::free_port();
local $ENV{TENANT_VAR_DIR} = $var;
local $ENV{TENANT_HTTP_PORT} = $http;
local $ENV{TENANT_PG_PORT} = $pg;
my $run = "$Tenant::Test::TOP/auto/run";

# whatever happens, stop what auto/run started
$t->on_cleanup(sub { system("$run stop >/dev/null 2>&1") });

my ($rc, $out) = Tenant::Test::run_cmd($run);
is($rc, 0, 'auto/run succeeds') or diag $out;
like($out, qr/the platform is running/, 'prints what runs');
like($out, qr/127\.0\.0\.1:$http/, 'says where nginx listens');

my %pids = pids();
ok($pids{nginx} && $pids{postgres} && $pids{provisioner}, 'nginx, PostgreSQL and the provisioner run');

my $r = $t->request(port => $http, host => 'nobody.localhost');
is($r->{status}, 404, 'nginx with the module answers on the configured port');

my $key = Tenant::Test::slurp("$var/admin-api-key");
like($key, qr/^tk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}\n$/, 'admin API key created');
is((stat "$var/admin-api-key")[2] & 07777, 0600, 'admin API key file is mode 0600');

# the registry works and routes a tenant, through auto/run's own nginx
my $db = `sed -n 's/^db = //p' $var/provisioner.conf`;
chomp $db;
system('psql', '-X', '-q', '-d', $db, '-c',
    "INSERT INTO tenants (id, blueprint, status) VALUES ('demo', 'static', 'suspended')") == 0
    or BAIL_OUT('cannot write to the registry');
$r = $t->request(port => $http, host => 'demo.localhost');
is($r->{status}, 503, 'a tenant in the registry is routed by auto/run\'s nginx (suspended: 503)');

($rc, $out) = Tenant::Test::run_cmd($run);
is($rc, 0, 'auto/run again succeeds');
my %again = pids();
is_deeply(\%again, \%pids, 'a second auto/run starts no second copy');
my $key2 = Tenant::Test::slurp("$var/admin-api-key");
is($key2, $key, 'the admin key is created only once');

($rc, $out) = Tenant::Test::run_cmd($run, 'stop');
is($rc, 0, 'auto/run stop succeeds') or diag $out;
ok(Tenant::Test::wait_until(sub { !grep { $_ } values %{ { pids() } } }, 10),
   'no process left behind');
my $listening = `ss -Hltn '( sport = :$http or sport = :$pg )'`;
is($listening, '', 'no listening port left behind');

sub pids {
    my %p;
    for my $line (split /\n/, `ps -eo pid=,args=`) {
        my ($pid, $args) = $line =~ /^\s*(\d+)\s+(.*)$/ or next;
        next unless index($args, $var) >= 0;
        $p{nginx} = $pid if $args =~ /^nginx: master/;
        $p{postgres} = $pid if $args =~ m{/postgres -D};
        $p{provisioner} = $pid if $args =~ m{provisioner .* run$};
    }
    return %p;
}

done_testing();
