# Sign-ups with approval: a public, rate-limited request to join a tenant
# that takes sign-ups; pending until the tenant's admin (its own key)
# approves or rejects it (reason kept); each decision audited and posted to
# the tenant's own stack as a webhook signed with HMAC-SHA256 under the
# tenant's secret, checked here by the stack's receiver's records; a 503
# is retried, and each decision is delivered by exactly one job.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use Digest::SHA qw(hmac_sha256_hex);
use Tenant::Test;
use Tenant::Conf;
use Tenant::Blueprints;

my $t = Tenant::Test->new->start_pg;
$t->migrate;
$t->start_nginx(http => Tenant::Conf::http());
$t->start_provisioner(blueprints => Tenant::Blueprints::make($t));
my $platform = $t->{api_key} = $t->create_api_key('platform');

for my $n (qw(club other)) {
    my $r = $t->api(POST => 'tenants?wait=60', { name => $n, blueprint => 'hookapp', display_name => ucfirst $n });
    is($r->{json}{job}{status}, 'done', "$n created");
}
my $home = "$t->{state_dir}/club/home";
my ($rc, $out) = $t->cli('apikey', 'create', 'club admin', '--tenant', 'club');
my ($club_key) = $out =~ /^(tk_\S+)$/m;
($rc, $out) = $t->cli('apikey', 'create', 'other admin', '--tenant', 'other');
my ($other_key) = $out =~ /^(tk_\S+)$/m;
ok($club_key && $other_key, 'a key for each tenant');

# the public request: no key
sub ask { $t->api(POST => 'signups', $_[0], nokey => 1) }
my $r = ask({ tenant => 'club', email => 'ann@example.com', name => 'Ann' });
is($r->{status}, 404, 'a tenant that does not take sign-ups: 404');
my $off = $r->{json}{error}{message};
is(ask({ tenant => 'nobody', email => 'ann@example.com' })->{json}{error}{message}, $off,
   '... the same answer as no tenant at all');

$t->{api_key} = $club_key;
$r = $t->api(PUT => 'tenants/club/signups', { enabled => JSON::PP::true, webhook_path => '/cgi-bin/hook' });
is($r->{status}, 200, 'its admin turns sign-ups on, with the path its stack takes decisions at');
$r = $t->api(PUT => 'tenants/club/signups', { enabled => JSON::PP::true, webhook_path => "/x\r\nHost: evil" });
is($r->{status}, 422, 'a webhook path with a line break: 422');
is($r->{json}{error}{field}, 'webhook_path', '... naming it');
$r = $t->api(PUT => 'tenants/other/signups', { enabled => JSON::PP::true });
is($r->{status}, 404, 'not for another tenant: 404');

$r = ask({ tenant => 'club', email => 'Ann@Example.com', name => 'Ann' });
is($r->{status}, 202, 'POST signups: 202');
is($r->{json}{signup}{status}, 'pending', '... pending');
my $ann = $r->{json}{signup}{id};
is(ask({ tenant => 'club', email => 'ann@example.com' })->{status}, 409, 'the same email again: 409');
$r = ask({ tenant => 'club', email => 'not an address' });
is($r->{status}, 422, 'a bad email: 422');
is($r->{json}{error}{field}, 'email', '... naming it');
$r = ask({ tenant => 'club', email => 'a@b.test', role => 'admin' });
is($r->{status}, 400, 'an unknown field: refused') if $r->{status} == 400;
isnt($r->{status}, 202, 'an unknown field is not taken');
my @ids = ($ann);
for my $who (qw(bob cat dan eve fay gus hal ivy)) {
    $r = ask({ tenant => 'club', email => "$who\@example.com", name => ucfirst $who });
    push @ids, $r->{json}{signup}{id} if $r->{status} == 202;
}
is(scalar @ids, 9, '9 sign-ups from one address');
is(ask({ tenant => 'club', email => 'jon@example.com' })->{status}, 202, 'the 10th');
$r = ask({ tenant => 'club', email => 'kim@example.com' });
is($r->{status}, 429, 'the 11th in an hour from one address: 429');
ok(($r->{headers}{'retry-after'} // 0) > 0, '... with Retry-After');
is($t->psql("SELECT count(*) FROM tenant_signups WHERE status = 'pending'"), 10, '10 pending');
is($t->psql("SELECT email FROM tenant_signups WHERE id = $ann"), 'ann@example.com', 'emails are kept in lower case');

# the tenant's admin decides
$r = $t->api(GET => 'tenants/club/signups?status=pending');
is(scalar @{ $r->{json}{signups} }, 10, 'its admin lists the pending ones');
$t->{api_key} = $other_key;
is($t->api(GET => 'tenants/club/signups')->{status}, 404, 'another tenant\'s admin cannot: 404');
is($t->api(POST => "tenants/club/signups/$ann/approve")->{status}, 404, '... nor decide');
is($t->api(POST => "tenants/other/signups/$ann/approve")->{status}, 404, '... not even through its own tenant');
$t->{api_key} = $club_key;

sub delivered {
    my ($job) = @_;
    return Tenant::Test::wait_until(sub { -e "$home/hooks/$job.body" }, 30);
}
my $secret = Tenant::Test::slurp("$home/webhook_secret");
ok(length($secret) >= 32, 'the stack was given the tenant\'s webhook secret');

$r = $t->api(POST => "tenants/club/signups/$ann/approve");
is($r->{status}, 200, 'approve: 200');
is($r->{json}{signup}{status}, 'approved', '... approved');
my $job = $r->{json}{job}{id};
ok(delivered($job), 'the webhook reached the tenant\'s stack');
my $body = Tenant::Test::slurp("$home/hooks/$job.body");
is(Tenant::Test::slurp("$home/hooks/$job.sig"), 'sha256=' . hmac_sha256_hex($body, $secret),
   'signed: HMAC-SHA256 of the body under the tenant\'s secret');
my $hook = decode_json($body);
is($hook->{event}, 'signup.approved', 'event signup.approved');
is($hook->{signup}{email}, 'ann@example.com', 'for ann');
is($hook->{delivery}, $job, 'its delivery id is the job\'s');
is($t->wait_job($job, 30), 'done', 'the webhook job is done');

$r = $t->api(POST => "tenants/club/signups/$ids[1]/reject", { reason => 'not a member of the club' });
is($r->{json}{signup}{status}, 'rejected', 'reject, with a reason');
ok(delivered($r->{json}{job}{id}), 'delivered');
$hook = decode_json(Tenant::Test::slurp("$home/hooks/$r->{json}{job}{id}.body"));
is($hook->{event} . ' ' . $hook->{signup}{reason}, 'signup.rejected not a member of the club', 'the rejection and its reason');
is($t->psql("SELECT reason FROM tenant_signups WHERE id = $ids[1]"), 'not a member of the club', 'the reason is kept');

$r = $t->api(POST => "tenants/club/signups/$ann/reject");
is($r->{status}, 409, 'deciding again: 409');
like($r->{json}{error}{message}, qr/approved already/, '... saying it was approved');
is($t->api(POST => 'tenants/club/signups/99999/approve')->{status}, 404, 'no such sign-up: 404');
is($t->api(POST => 'tenants/club/signups/x/approve')->{status}, 404, 'a sign-up id that cannot exist: 404');

# the stack answers 503 once: retried with backoff, delivered once
Tenant::Test::write_file("$home/fail-next", '');
$r = $t->api(POST => "tenants/club/signups/$ids[2]/approve");
my $retried = $r->{json}{job}{id};
ok(delivered($retried), 'after a 503 the webhook is retried and delivered');
is(Tenant::Test::slurp("$home/hooks/$retried.tries") + 0, 2, 'two tries');
is($t->wait_job($retried, 30), 'done', '... and the job is done');
is($t->psql("SELECT attempts FROM jobs WHERE id = $retried"), 2, 'in its second attempt');

is($t->psql("SELECT count(*) FROM jobs WHERE kind = 'webhook'"), 3, 'one webhook job per decision');
is($t->psql("SELECT string_agg(action, ',' ORDER BY id) FROM audit_log WHERE action LIKE 'signup.%' AND action <> 'signup.request'"),
   'signup.settings,signup.approve,signup.reject,signup.approve', 'settings and decisions are audited');
is($t->psql("SELECT count(DISTINCT actor) FROM audit_log WHERE action IN ('signup.approve', 'signup.reject')"), 1,
   '... under the tenant\'s key');

# the platform sees them too; a tenant gone takes its sign-ups with it
$t->{api_key} = $platform;
is(scalar @{ $t->api(GET => 'tenants/club/signups')->{json}{signups} }, 10, 'the platform key lists them');
$t->api(DELETE => 'tenants/club?wait=60');
is($t->psql("SELECT count(*) FROM tenant_signups"), 0, 'deleted with the tenant');

Tenant::Test::finish();
