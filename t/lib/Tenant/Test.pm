package Tenant::Test;

# Per-test-file fixtures: a throwaway PostgreSQL cluster and an nginx with
# the built module, in a temp dir, on free loopback ports. Everything started
# here is stopped in END, also when the test dies, so test files are
# independent and `prove -j2` works.
#
# This file holds the object, the small helpers and the end of a test; the
# fixtures themselves are in Tenant/Test/*.pm, one concern each (Registry,
# Nginx, Http, Load, Provisioner), all methods of Tenant::Test.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use Fcntl qw(:flock);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);
use Test::More;
use JSON::PP ();

our $TOP = abs_path(dirname(__FILE__) . '/../../..');
our $BUILD = "$TOP/build";
our $PGBIN = do {
    my @v = sort { $b <=> $a } map { m{/(\d+)$} ? $1 : () }
        glob('/usr/lib/postgresql/*');
    @v ? "/usr/lib/postgresql/$v[0]/bin" : die "PostgreSQL server binaries not found: run auto/deps\n";
};

my @instances;

# TEST_VALGRIND=1: nginx and the provisioner run under valgrind (memcheck);
# time limits in tests are multiplied by $SLOW.
our $VALGRIND = $ENV{TEST_VALGRIND} ? 1 : 0;
our $SLOW = $VALGRIND ? 20 : 1;
# the provisioner binary: auto/test points this at a sanitizer build
our $PROVISIONER = $ENV{TENANT_PROVISIONER} // "$BUILD/provisioner";

sub valgrind_cmd {
    my ($log) = @_;
    return ('valgrind', '--quiet', "--log-file=$log.%p", '--leak-check=full',
            '--show-leak-kinds=definite', '--errors-for-leak-kinds=definite',
            '--num-callers=30', "--suppressions=$TOP/t/valgrind.supp");
}

sub new {
    my ($class, %opt) = @_;
    my $dir = tempdir('tenant-test-XXXXXX', TMPDIR => 1, CLEANUP => 0);
    chmod 0755, $dir;
    my $self = bless { dir => $dir, owner => $$, %opt }, $class;
    push @instances, $self;
    return $self;
}

sub dir { $_[0]{dir} }


my $port_lock;

sub port_block {
    my $dir = '/tmp/ngx-tenant-test-ports';
    make_path($dir);
    my $first = ($$ % 100);
    for my $i (0 .. 99) {
        my $block = ($first + $i) % 100;
        open my $fh, '>', "$dir/$block" or die "port_block: $dir/$block: $!";
        if (flock $fh, LOCK_EX | LOCK_NB) {
            $port_lock = $fh;
            return 10000 + $block * 100;
        }
        close $fh;
    }
    die "port_block: all 100 port blocks are held by other tests";
}

# The kernel may hand the same ephemeral port out twice once it is closed;
# two backends on one port would make nginx answer both from the first
# server block, so a port is never given out twice in a process.
my %given_ports;

sub free_port {
    for (1 .. 100) {
        my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1',
                                      LocalPort => 0, Proto => 'tcp')
            or die "free_port: $!";
        my $port = $s->sockport;
        close $s;
        return $port unless $given_ports{$port}++;
    }
    die "free_port: no unused port found";
}

sub run_cmd {
    my (@cmd) = @_;
    my $out = `@{[ join ' ', map { shell_quote($_) } @cmd ]} 2>&1`;
    return ($? >> 8, $out);
}

sub shell_quote {
    my ($s) = @_;
    return $s if $s =~ m{^[\w./=:,+-]+$};
    $s =~ s/'/'\\''/g;
    return "'$s'";
}


# --- helpers --------------------------------------------------------------

sub slurp {
    my ($f) = @_;
    open my $fh, '<', $f or return '';
    local $/;
    return <$fh>;
}

sub write_file {
    my ($f, $data) = @_;
    open my $fh, '>', $f or die "$f: $!";
    print $fh $data;
    close $fh or die "$f: $!";
}

sub trim { my $s = shift // ''; $s =~ s/^\s+|\s+$//g; return $s }

sub percentile {
    my ($p, @v) = @_;
    @v = sort { $a <=> $b } @v;
    return 0 unless @v;
    my $i = int($p / 100 * $#v + 0.5);
    return $v[$i];
}

sub wait_until {
    my ($cond, $timeout, $step) = @_;
    my $deadline = time + ($timeout // 10) * $SLOW;
    while (time < $deadline) {
        return 1 if $cond->();
        sleep($step // 0.05);
    }
    return $cond->() ? 1 : 0;
}

sub cleanup {
    my ($self) = @_;
    return if $self->{cleaned}++;
    $self->stop_nginx;
    $self->stop_provisioner($_) for keys %{ $self->{prov} || {} };
    $self->stop_podman;
    $self->stop_dockerd;
    # tenant services are process groups of their own: end them all
    kill 'KILL', map { -$_ } $self->tenant_pids if $self->{state_dir};
    kill 'KILL', $self->stray_processes;
    kill 'KILL', map { (split ' ')[0] } $self->podman_processes;
    kill 'KILL', map { (split ' ')[0] } $self->dockerd_processes;
    $self->remove_cgroups;
    $self->{dbh}->disconnect if $self->{dbh};
    $self->stop_pg('immediate');
    $self->stop_ha unless $self->{ha_shared};
    $_->() for @{ $self->{on_cleanup} || [] };
    remove_tree($self->{dir}) unless $ENV{TEST_KEEP};
}

# Ends a test file: no nginx of this file may have logged an alert, a
# critical error or an emergency (those the test causes on purpose aside).
sub finish {
    my (%o) = @_;
    my @mine = grep { $_->{owner} == $$ } @instances;
    for my $t (grep { $_->{ngxdir} } @mine) {
        my @bad = grep { !($o{allow} && /$o{allow}/) }
            $t->error_log =~ /^(.*\[(?:alert|crit|emerg)\].*)$/mg;
        is(scalar @bad, 0, 'no alert, crit or emerg in the nginx error log')
            or diag(join "\n", @bad[0 .. ($#bad > 9 ? 9 : $#bad)]);
    }
    for my $t (grep { $_->{prov} } @mine) {
        my $logs = join '', map { slurp($_->{log}) } values %{ $t->{prov} };
        unlike($logs, qr/(AddressSanitizer|LeakSanitizer|runtime error:)/,
               'no sanitizer report in the provisioner log');
    }
    if ($VALGRIND) {
        # reports are written at exit: stop everything first
        for my $t (@mine) {
            $t->stop_nginx;
            $t->stop_provisioner($_) for keys %{ $t->{prov} || {} };
        }
        my @logs = map { glob("$_->{dir}/nginx/logs/valgrind.*"), glob("$_->{dir}/prov/valgrind-*") } @mine;
        my ($errors, $lost) = (0, 0);
        for my $f (@logs) {
            my $v = slurp($f);
            my @e = $v =~ /^==\d+== (Invalid .*|Conditional jump .*|Syscall param .*|Use of uninitialised .*|.*definitely lost in .*)$/mg;
            $errors += scalar @e;
            diag("$f:\n$v") if @e;
        }
        is($errors, 0, 'valgrind: no invalid access and no definite leak in ' . scalar(@logs) . ' processes');
    }
    done_testing();
}

sub on_cleanup { push @{ $_[0]{on_cleanup} }, $_[1] }

END {
    my $rc = $?;
    # forked helpers (concurrent clients) must not tear down the fixtures
    $_->cleanup for grep { $_->{owner} == $$ } reverse @instances;
    $? = $rc;
}

# also SIGPIPE: a reader that goes away (prove | head) must not skip the
# cleanup in END
$SIG{INT} = $SIG{TERM} = $SIG{PIPE} = sub { exit 130 };

require Tenant::Test::Registry;
require Tenant::Test::Nginx;
require Tenant::Test::Http;
require Tenant::Test::Load;
require Tenant::Test::Provisioner;
require Tenant::Test::Acme;
require Tenant::Test::Ha;

1;

