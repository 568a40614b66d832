# The operator's health checks: `provisioner check` (disk, database size,
# failed and stuck jobs, certificate expiry, unreachable tenant services,
# each with warning/critical thresholds and the monitoring-plugin exit
# codes), the daemon storing them for GET /api/health?deep and writing its
# metrics file, and the Prometheus alert rules shipped in conf/.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP qw(decode_json);
use Tenant::Test;
use Tenant::Conf;

my $t = Tenant::Test->new->start_pg;
$t->migrate;
$t->start_nginx(backends => ['b1'], http => Tenant::Conf::http());
$t->{api_key} = $t->create_api_key('health');
my $dir = $t->dir;

# a small disk of its own for the tenants' state, to fill
my $disk = "$dir/disk";
mkdir $disk or die;
my ($rc, $out) = Tenant::Test::run_cmd('mount', '-t', 'tmpfs', '-o', 'size=4m,mode=0755', 'tmpfs', $disk);
is($rc, 0, 'a 4 MB tmpfs for the state directory') or diag($out);
$t->on_cleanup(sub { system('umount', '-l', $disk) });

sub check {
    my (@extra) = @_;
    Tenant::Test::write_file("$dir/check.conf", join "\n", 'db = ' . $t->conninfo,
                             "state_dir = $disk", @extra, '');
    my ($rc, $out) = Tenant::Test::run_cmd($Tenant::Test::PROVISIONER, '-c', "$dir/check.conf", 'check', '--json');
    my $j = eval { decode_json($out) } or diag("not JSON: $out");
    my %by = map { $_->{name} => $_ } @{ $j->{checks} || [] };
    return ($rc, \%by, $j);
}

my ($code, $c, $j) = check();
is($code, 0, 'a quiet platform: exit 0');
is_deeply([ sort keys %$c ], [ sort qw(disk database_size failed_jobs stuck_jobs certificates tenant_services) ],
          'six checks');
is(scalar(grep { $_->{status} ne 'ok' } values %$c), 0, 'all ok')
    or diag(explain($j));
is($j->{status}, 'ok', '... and the whole says ok');

# the disk fills up
system("dd if=/dev/zero of=$disk/fill bs=64k 2>/dev/null");
($code, $c) = check();
is($code, 2, 'a full disk: exit 2');
is($c->{disk}{status}, 'critical', 'disk: critical');
ok($c->{disk}{value} >= 99, "... at $c->{disk}{value}% used");
like($c->{disk}{detail}, qr/\Q$disk\E: 100% used/, '... saying where');
($code, $c) = check('check_disk_warning = 100', 'check_disk_critical = 100');
is($c->{disk}{status}, 'critical', 'thresholds from the config: 100% is still critical at 100');
unlink "$disk/fill";
($code, $c) = check();
is($c->{disk}{status}, 'ok', 'room again: ok');

# a failed job, one out of the window, and thresholds
$t->psql(q{INSERT INTO jobs (tenant_id, kind, status, finished_at, error)
           VALUES ('gone', 'create', 'failed', now(), 'setup exited 1'),
                  ('old', 'create', 'failed', now() - interval '25 hours', 'long ago'),
                  ('any', 'logs', 'failed', now(), 'logs jobs do not count')});
($code, $c) = check();
is($code, 1, 'one failed job, default thresholds (warning 1, critical 3): exit 1');
is($c->{failed_jobs}{status}, 'warning', 'failed_jobs: warning');
is($c->{failed_jobs}{value}, 1, '... one (the one of 25 hours ago and the logs job do not count)');
like($c->{failed_jobs}{detail}, qr/create gone: setup exited 1/, '... naming it and why');
($code, $c) = check('check_failed_jobs_critical = 1');
is($code, 2, 'check_failed_jobs_critical = 1: exit 2');
is($c->{failed_jobs}{status}, 'critical', '... critical');
($code, $c) = check('check_failed_hours = 48', 'check_failed_jobs_warning = 5', 'check_failed_jobs_critical = 9');
is($c->{failed_jobs}{value}, 2, 'a 48-hour window counts both');
is($c->{failed_jobs}{status}, 'ok', '... under the thresholds given');

# a job nobody took
$t->psql(q{INSERT INTO jobs (tenant_id, kind, status, run_after) VALUES ('late', 'suspend', 'queued', now() - interval '1 hour')});
($code, $c) = check();
is($c->{stuck_jobs}{status}, 'warning', 'a job due an hour ago and not claimed: stuck_jobs warning');
like($c->{stuck_jobs}{detail}, qr/1 jobs not moving for 15 minutes; oldest: job \d+/, '... saying which');

# services: one answers, one refuses
my $dead = Tenant::Test::free_port();
$t->add_tenant('liveshop', site => ["127.0.0.1:$t->{backend}{b1}"]);
$t->add_tenant('deadshop', site => ["127.0.0.1:$dead"]);
$t->add_tenant('sleepy', site => ["127.0.0.1:$dead"], status => 'suspended');
($code, $c) = check();
is($c->{tenant_services}{value}, 1, 'one endpoint of an active tenant refuses connections');
like($c->{tenant_services}{detail}, qr/^1 of 2 endpoints refuse connections: deadshop\/site$/,
     '... naming it (a suspended tenant\'s is not asked)');
is($c->{tenant_services}{status}, 'warning', '... warning');

# a certificate about to expire (the platform's: the edge here has no TLS)
$t->psql(q{INSERT INTO certificates (host, chain, key_nonce, key_sealed, names, issuer, key_type,
                                     not_before, not_after, source)
           VALUES ('soon.example.com', decode(repeat('00', 64), 'hex'), decode(repeat('00', 12), 'hex'),
                   decode(repeat('00', 32), 'hex'), 'soon.example.com', 'test', 'ec',
                   now() - interval '88 days', now() + interval '2 days', 'uploaded')});
($code, $c) = check();
is($c->{certificates}{status}, 'critical', 'a certificate expiring in 2 days: critical (under 3)');
like($c->{certificates}{detail}, qr/soon\.example\.com in 2\.0 days/, '... naming it');
is($code, 2, 'exit 2');

# a tenant database
$t->psql('CREATE DATABASE tenant_liveshop');
($code, $c) = check('check_db_mb_warning = 1', 'check_db_mb_critical = 100000');
is($c->{database_size}{status}, 'warning', 'database_size: the largest tenant database over 1 MB: warning');
like($c->{database_size}{detail}, qr/largest: tenant_liveshop, [\d.]+ MB/, '... naming it');

($rc, $out) = Tenant::Test::run_cmd($Tenant::Test::PROVISIONER, '-c', "$dir/check.conf", 'check');
like($out, qr/^critical\s+certificates\s+soonest: soon\.example\.com/m, 'plain output: a line a check');
($rc, $out) = Tenant::Test::run_cmd($Tenant::Test::PROVISIONER, '-c', "$dir/check.conf", 'check', '--loud');
is($rc, 64, 'an unknown option: exit 64');
like($out, qr/--loud: unknown option/, '... naming it');

# the daemon checks, stores, and writes its metrics file
# (what the daemon would run or refuse goes first)
$t->psql("DELETE FROM certificates; DELETE FROM jobs WHERE tenant_id = 'late'");
my $prom = "$dir/provisioner.prom";
$t->start_provisioner(extra => ['check_interval = 5', "metrics_file = $prom", 'check_failed_jobs_critical = 1']);
ok(Tenant::Test::wait_until(sub { $t->psql("SELECT count(*) FROM health_checks WHERE provisioner = 'p1'") == 6 }, 20),
   'the daemon stores its six checks');
my $r = $t->api(GET => 'health?deep');
is($r->{status}, 503, 'GET /api/health?deep: 503 while a check is critical');
is($r->{json}{status}, 'critical', '... status critical');
my ($fj) = grep { $_->{name} eq 'failed_jobs' } @{ $r->{json}{checks} || [] };
is($fj->{status}, 'critical', '... failed_jobs critical, from provisioner p1') or diag(explain($r->{json}));
is($fj->{provisioner}, 'p1', '... naming the provisioner');
is($t->api(GET => 'health')->{status}, 200, 'GET /api/health (not deep): 200, the registry answers');

ok(Tenant::Test::wait_until(sub { -s $prom }, 20), 'the metrics file is written');
($rc, $out) = Tenant::Test::run_cmd('sh', '-c', "promtool check metrics < $prom");
is($rc, 0, 'promtool check metrics: clean') or diag($out);
my $m = Tenant::Test::slurp($prom);
like($m, qr/^ngx_tenant_check_status\{check="failed_jobs"\} 2$/m, 'metrics: failed_jobs critical');
like($m, qr/^ngx_tenant_provisioner_jobs\{kind="create",status="failed"\} 2$/m, 'metrics: jobs by kind and status');
like($m, qr/^ngx_tenant_tenants\{status="active"\} 2$/m, 'metrics: tenants by status');
like($m, qr/^ngx_tenant_provisioner_reconcile_passes_total [1-9]/m, 'metrics: reconciler passes');
like($m, qr/^ngx_tenant_database_bytes\{database="tenant_liveshop"\} \d+$/m, 'metrics: database sizes');
like($m, qr/^ngx_tenant_provisioner_last_check_timestamp_seconds \d+$/m, 'metrics: when');

# fixed: the next pass says so
$t->psql("DELETE FROM jobs WHERE status = 'failed'");
ok(Tenant::Test::wait_until(sub { $t->api(GET => 'health?deep')->{status} == 200 }, 20),
   'failed jobs gone: health?deep 200 within a check interval');
is($t->api(GET => 'health?deep')->{json}{status}, 'warning', '... still warning (the dead endpoint)');

# a provisioner gone silent is critical
$t->stop_provisioner('p1');
$t->psql("UPDATE health_checks SET checked_at = now() - interval '10 minutes'");
$r = $t->api(GET => 'health?deep');
is($r->{status}, 503, 'checks ten minutes old: 503');
like($r->{json}{checks}[0]{detail}, qr/^not checked since /, '... not checked since');

# the alert rules
($rc, $out) = Tenant::Test::run_cmd('promtool', 'check', 'rules', "$Tenant::Test::TOP/conf/alerts.yml");
is($rc, 0, 'promtool check rules conf/alerts.yml') or diag($out);
($rc, $out) = Tenant::Test::run_cmd('promtool', 'test', 'rules', "$Tenant::Test::TOP/t/alerts-test.yml");
is($rc, 0, 'promtool test rules: each alert fires on its condition') or diag($out);

Tenant::Test::finish();
