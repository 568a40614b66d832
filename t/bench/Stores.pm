package Bench::Stores;

# auto/bench's figures for real applications on the process driver:
# ecommerce (Medusa) and cms (Directus) creates timed from the API's POST
# to the first 200 through the edge, the admin's sign-in tried at that
# moment with the credentials the job handed out; the first create of
# each (which builds the blueprint's template database) apart from the
# rest; then N stores running at once, each asked for its front page, and
# the memory of each idle store (its processes' RSS).

use strict;
use warnings;
use JSON::PP;
use Time::HiRes qw(time sleep);
use Tenant::Test;
use Tenant::Conf;

sub pct {
    my ($p, @v) = @_;
    @v = sort { $a <=> $b } @v;
    return $v[ int(($p / 100) * $#v + 0.5) ];
}

sub edge {
    my ($t, $host, $method, $path, $body) = @_;
    my $r = $t->request(method => $method, path => $path, host => $host, timeout => 30,
                        ($body ? (body => encode_json($body)) : ()),
                        headers => { 'Content-Type' => 'application/json' });
    $r->{json} = eval { decode_json($r->{body}) } if ($r->{body} // '') =~ /^\s*[{\[]/;
    return $r;
}

my %app = (
    ecommerce => { ready => '/', sign_in => sub {
        my ($t, $name, $a) = @_;
        my $r = edge($t, "admin.$name.localhost", POST => '/auth/user/emailpass',
                     { email => $a->{email}, password => $a->{password} });
        return $r->{json} && $r->{json}{token};
    } },
    cms => { ready => '/server/health', sign_in => sub {
        my ($t, $name, $a) = @_;
        my $r = edge($t, "admin.$name.localhost", POST => '/auth/login',
                     { email => $a->{email}, password => $a->{password} });
        return $r->{json} && $r->{json}{data}{access_token};
    } },
);

# POST, then the job's credentials, then the first 200 and a sign-in
sub create {
    my ($t, $bp, $name) = @_;
    my $t0 = time;
    my $r = $t->api(POST => 'tenants?wait=60', { name => $name, blueprint => $bp });
    $r = $t->api(GET => "jobs/$r->{json}{job}{id}") if $r->{status} == 202 && $t->wait_job($r->{json}{job}{id}, 300);
    die "$name: create failed: $r->{body}\n" unless ($r->{json}{job}{status} // '') eq 'done';
    my $admin = $r->{json}{job}{result}{admin};
    Tenant::Test::wait_until(sub { edge($t, "$name.localhost", GET => $app{$bp}{ready})->{status} == 200 }, 120, 0.05)
        or die "$name never answered 200\n";
    my $s = time - $t0;
    return { seconds => $s, signed_in => $app{$bp}{sign_in}->($t, $name, $admin) ? 1 : 0 };
}

# the RSS of a tenant's processes and their children, in kB
sub tenant_rss_kb {
    my ($t, $name) = @_;
    my (%kids, %rss);
    for (split /\n/, `ps -e -o pid=,ppid=,rss=`) {
        my ($pid, $ppid, $rss) = split ' ';
        push @{ $kids{$ppid} }, $pid;
        $rss{$pid} = $rss;
    }
    my ($sum, @todo) = (0, $t->tenant_pids($name));
    while (my $pid = shift @todo) {
        $sum += $rss{$pid} // 0;
        push @todo, @{ $kids{$pid} || [] };
    }
    return $sum;
}

sub bench {
    my (%o) = @_;
    for my $rt (qw(medusa directus)) {
        system("$Tenant::Test::TOP/auto/runtimes", 'install', $rt) == 0 or die "auto/runtimes install $rt failed\n";
    }
    my $t = Tenant::Test->new->start_pg;
    $t->migrate;
    $t->start_nginx(workers => 2, http => Tenant::Conf::http());
    $t->start_provisioner(extra => ['workers = 4', 'admin_email_domain = example.com', 'lease = 10']);
    $t->{api_key} = $t->create_api_key('bench');
    my %res;

    for my $bp (qw(ecommerce cms)) {
        my $first = create($t, $bp, "$bp-first");
        my @runs = map { create($t, $bp, "$bp-$_") } 1 .. $o{runs};
        my @s = map { $_->{seconds} } @runs;
        $res{$bp} = { first_s => $first->{seconds}, runs => $o{runs}, p50_s => pct(50, @s), max_s => pct(100, @s),
                      signed_in => (grep { $_->{signed_in} } $first, @runs) + 0, tried => 1 + @runs };
        sleep 10;    # idle: started, answered, nothing asked since
        my @kb = map { tenant_rss_kb($t, $_) } "$bp-first", map { "$bp-$_" } 1 .. $o{runs};
        $res{$bp}{rss_mb} = { min => pct(0, @kb) / 1024, p50 => pct(50, @kb) / 1024, max => pct(100, @kb) / 1024 };
    }

    # stores at once: the ones above and more, all asked for their page
    my $have = 1 + $o{runs};
    my $t0 = time;
    my @jobs = map { $t->api(POST => 'tenants', { name => "shop$_", blueprint => 'ecommerce' })->{json}{job}{id} }
               1 .. $o{stores} - $have;
    $t->wait_job($_, 600) for @jobs;
    my @names = ('ecommerce-first', (map { "ecommerce-$_" } 1 .. $o{runs}), map { "shop$_" } 1 .. $o{stores} - $have);
    Tenant::Test::wait_until(sub { !grep { edge($t, "$_.localhost", GET => '/')->{status} != 200 } @names }, 120, 1);
    $res{stores} = { stores => scalar @names, added_s => time - $t0,
                     answering => scalar(grep { edge($t, "$_.localhost", GET => '/')->{status} == 200 } @names) };
    sleep 10;
    my @kb = map { tenant_rss_kb($t, $_) } @names;
    my $sum = 0;
    $sum += $_ for @kb;
    $res{stores}{rss_total_mb} = $sum / 1024;
    $res{stores}{rss_p50_mb} = pct(50, @kb) / 1024;
    ($res{stores}{mem_available_mb}) = map { /MemAvailable:\s+(\d+)/ ? $1 / 1024 : () } split /\n/, `cat /proc/meminfo`;
    $t->cleanup;
    return \%res;
}

sub report {
    my ($r) = @_;
    my $out = '';
    for my $bp (qw(ecommerce cms)) {
        my $x = $r->{$bp};
        $out .= sprintf("- %s, API create -> first 200 through the edge: first create (builds the template) %.1f s; then %d creates: p50 %.1f s, max %.1f s; admin signed in with the handed-out credentials at that moment: %d of %d\n",
                        $bp, $x->{first_s}, $x->{runs}, $x->{p50_s}, $x->{max_s}, $x->{signed_in}, $x->{tried});
        $out .= sprintf("- %s, idle memory per tenant (RSS of its processes): min %.0f MB, p50 %.0f MB, max %.0f MB\n",
                        $bp, @{ $x->{rss_mb} }{qw(min p50 max)});
    }
    my $s = $r->{stores};
    $out .= sprintf("- %d ecommerce stores running at once: %d answering their front page; the last %d added in %.0f s (4 workers); RSS of all stores %.0f MB (p50 %.0f MB a store); memory still available %.0f MB\n",
                    $s->{stores}, $s->{answering}, $s->{stores} - 1 - $r->{ecommerce}{runs}, $s->{added_s},
                    $s->{rss_total_mb}, $s->{rss_p50_mb}, $s->{mem_available_mb});
    return $out;
}

1;
