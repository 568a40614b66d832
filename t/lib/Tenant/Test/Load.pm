package Tenant::Test;

# Tenant::Test, load: keepalive clients in forked processes that count
# what they were served while a test breaks something.

use strict;
use warnings;
use File::Path qw(make_path remove_tree);
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);
use Test::More;

# --- load -------------------------------------------------------------------

# Starts $o{clients} processes sending GETs on keepalive connections for
# $o{seconds} to random hosts of @{$o{hosts}}. Like real clients, a GET is
# retried once when the server closed an idle connection before answering
# a byte (RFC 9112 9.3.1). Counts per status, in windows of $o{window} s.
sub start_load {
    my ($self, %o) = @_;
    my $file = "$self->{dir}/load-" . int(rand 1e9);
    my @pids;
    for my $c (1 .. ($o{clients} // 2)) {
        my $pid = fork // die;
        if (!$pid) {
            srand($$);
            my %count;
            my (@win, @slowest);
            my $t0 = time;
            my $s;
            while (time - $t0 < $o{seconds}) {
                my $host = $o{hosts}[rand @{ $o{hosts} }];
                my $resp;
                my $sent = time;
                for my $try (1, 2) {
                    $s ||= IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                        PeerPort => $o{port} // $self->{port}, Proto => 'tcp', Timeout => 5);
                    if (!$s) { $resp = 'connect'; last }
                    print $s "GET / HTTP/1.1\r\nHost: $host\r\n\r\n";
                    $resp = read_keepalive($s);
                    last if $resp ne 'closed';
                    close $s;
                    undef $s;
                }
                $count{$resp}++;
                my $w = int((time - $t0) / ($o{window} // 1));
                $win[$w]{$resp}++;
                $slowest[$w] = time - $sent if time - $sent > ($slowest[$w] // 0);
                if ($resp !~ /^\d+$/) { close $s if $s; undef $s }
            }
            open my $fh, '>', "$file.$c" or die;
            print $fh JSON::PP::encode_json({ count => \%count, windows => \@win,
                                             slowest => \@slowest });
            close $fh;
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }
    return { pids => \@pids, file => $file, clients => scalar @pids };
}

# one response on a keepalive connection: its status, or 'closed' when the
# server closed before sending anything, or an error word
sub read_keepalive {
    my ($s) = @_;
    my $buf = '';
    my $sel = '';
    vec($sel, fileno($s), 1) = 1;
    while (1) {
        my $r = $sel;
        return 'timeout' unless select($r, undef, undef, 5);
        my $n = sysread($s, $buf, 65536, length $buf);
        return length $buf ? 'reset' : 'closed' if !$n;
        if ($buf =~ /^HTTP\/1\.1 (\d{3}).*?\r\n\r\n/s) {
            my $status = $1;
            my ($len) = $buf =~ /\r\nContent-Length: (\d+)/i;
            my $head = index($buf, "\r\n\r\n") + 4;
            if (defined $len) {
                next if length($buf) - $head < $len;
            } elsif ($buf =~ /Transfer-Encoding: chunked/i) {
                next unless $buf =~ /\r\n0\r\n\r\n$/;
            }
            return $status;
        }
    }
}

# waits for the load and sums it: {count => {status => n}, windows => [...],
# slowest => [the longest a request took in each window, seconds]}
sub finish_load {
    my ($self, $load) = @_;
    waitpid $_, 0 for @{ $load->{pids} };
    require JSON::PP;
    my (%count, @win, @slowest);
    for my $c (1 .. $load->{clients}) {
        my $r = JSON::PP::decode_json(slurp("$load->{file}.$c"));
        $count{$_} += $r->{count}{$_} for keys %{ $r->{count} };
        for my $i (0 .. $#{ $r->{windows} }) {
            $win[$i]{$_} += $r->{windows}[$i]{$_} for keys %{ $r->{windows}[$i] || {} };
        }
        for my $i (0 .. $#{ $r->{slowest} || [] }) {
            my $v = $r->{slowest}[$i] // 0;
            $slowest[$i] = $v if $v > ($slowest[$i] // 0);
        }
    }
    return { count => \%count, windows => \@win, slowest => \@slowest };
}

1;
