package Tenant::Test;

# Tenant::Test, the HTTP client: raw requests to the test's nginx (Host
# header of the test's choosing, responses parsed by hand), and the admin
# API with the test's key.

use strict;
use warnings;
use File::Path qw(make_path remove_tree);
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);
use Test::More;

# --- HTTP -----------------------------------------------------------------

# Raw HTTP/1.1 so tests can send any Host header, malformed ones included.
# Returns a hash: status, headers (lowercased names), body, time (seconds).
sub request {
    my ($self, %o) = @_;
    my $t0 = time;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
        PeerPort => $o{port} // $self->{port}, Proto => 'tcp',
        Timeout => $o{timeout} // 10)
        or return { status => 0, error => "connect: $!" };
    my $req = $o{raw} // do {
        my $r = ($o{method} // 'GET') . ' ' . ($o{path} // '/') . " HTTP/1.1\r\n";
        $r .= "Host: $o{host}\r\n" if defined $o{host};
        my %h = %{ $o{headers} || {} };
        if (defined $o{body}) {
            $h{'Content-Type'} //= 'application/json';
            $h{'Content-Length'} = length $o{body};
        }
        $r .= "$_: $h{$_}\r\n" for sort grep { defined $h{$_} } keys %h;
        $r . "Connection: close\r\n\r\n" . ($o{body} // '');
    };
    print $s $req;
    my $resp = read_response($s, $o{timeout} // 10);
    close $s;
    $resp->{time} = time - $t0;
    return $resp;
}

sub read_response {
    my ($s, $timeout) = @_;
    my $data = '';
    my $deadline = time + $timeout;
    $s->blocking(0);
    my $sel = '';
    vec($sel, fileno($s), 1) = 1;
    while (time < $deadline) {
        my $r = $sel;
        my $n = select($r, undef, undef, 0.5);
        next unless $n;
        my $got = sysread($s, my $buf, 65536);
        last if !defined $got && !$!{EAGAIN};
        last if defined $got && $got == 0;
        $data .= $buf if $got;
    }
    my ($head, $body) = split /\r\n\r\n/, $data, 2;
    return { status => 0, error => 'no response', body => '' } unless $head;
    my ($status_line, @lines) = split /\r\n/, $head;
    my ($status) = $status_line =~ m{^HTTP/\d\.\d (\d{3})};
    my %h = map { my ($k, $v) = split /:\s*/, $_, 2; (lc $k, $v) } @lines;
    if (($h{'transfer-encoding'} // '') =~ /chunked/i) {
        my $out = '';
        while ($body =~ s/^([0-9a-fA-F]+)\r\n//) {
            my $len = hex $1;
            last if $len == 0;
            $out .= substr($body, 0, $len, '');
            $body =~ s/^\r\n//;
        }
        $body = $out;
    }
    return { status => $status // 0, headers => \%h, body => $body // '' };
}

sub get {
    my ($self, $host, $path, %o) = @_;
    return $self->request(host => $host, path => $path // '/', %o);
}

# sends $n requests at once on $n connections, then reads all answers
sub concurrent_get {
    my ($self, $host, $n) = @_;
    my @socks;
    for (1 .. $n) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
            PeerPort => $self->{port}, Proto => 'tcp', Timeout => 5)
            or die "connect: $!";
        push @socks, $s;
    }
    print $_ "GET / HTTP/1.1\r\nHost: $host\r\nConnection: close\r\n\r\n"
        for @socks;
    my @res = map { read_response($_, 10) } @socks;
    close $_ for @socks;
    return @res;
}


sub api {
    my ($self, $method, $path, $body, %o) = @_;
    require JSON::PP;
    my %h = (%{ $o{headers} || {} });
    $h{Authorization} //= "Bearer $self->{api_key}" if $self->{api_key} && !$o{nokey};
    my $r = $self->request(method => $method, host => 'localhost',
        path => "/api/$path", headers => \%h, timeout => 90,
        body => ref $body ? JSON::PP->new->canonical->encode($body) : $body);
    $r->{json} = eval { JSON::PP::decode_json($r->{body}) };
    return $r;
}

sub create_api_key {
    my ($self, $name) = @_;
    my ($rc, $key) = $self->provisioner('apikey', 'create', $name // 'test');
    die "apikey create: $key" if $rc;
    chomp $key;
    return $key;
}

1;
