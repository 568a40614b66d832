package Tenant::Test;

# Tenant::Test, ACME: Pebble (an RFC 8555 test CA) and pebble-challtestsrv
# (its mock DNS, with an HTTP API to set TXT records), both from Debian,
# started on loopback ports of the test's own and stopped with it.

use strict;
use warnings;
use JSON::PP;
use Time::HiRes qw(time sleep);

our ($TOP);

# The mock DNS: every A query answers 127.0.0.1 and AAAA nothing, so the
# CA reaches our edges (on 127.0.0.1) for any name. Returns { dns => port, mgmt => port }.
sub start_mock_dns {
    my ($self) = @_;
    return $self->{mock_dns} if $self->{mock_dns};
    my ($dns, $mgmt) = (free_port(), free_port());
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open STDOUT, '>', "$self->{dir}/challtestsrv.log";
        open STDERR, '>&', \*STDOUT;
        exec 'pebble-challtestsrv', '-defaultIPv6', '', '-dns01', "127.0.0.1:$dns", '-management', "127.0.0.1:$mgmt",
             '-http01', '', '-https01', '', '-tlsalpn01', '' or die "exec: $!";
    }
    $self->on_cleanup(sub { kill 'TERM', $pid; waitpid $pid, 0 });
    $self->wait_port($mgmt, 10);
    return $self->{mock_dns} = { dns => $dns, mgmt => $mgmt, pid => $pid };
}

sub _mock_dns_call {
    my ($self, $what, $body) = @_;
    my $r = $self->request(port => $self->{mock_dns}{mgmt}, method => 'POST', path => "/$what",
                           host => 'localhost', body => encode_json($body));
    die "challtestsrv $what: $r->{status}" unless $r->{status} == 200;
}

sub set_txt { $_[0]->_mock_dns_call('set-txt', { host => "$_[1].", value => $_[2] }) }
sub clear_txt { $_[0]->_mock_dns_call('clear-txt', { host => "$_[1]." }) }

# Pebble, its VA reaching the edge at http_port, names resolved by the mock
# DNS. %o: http_port, validity (seconds a certificate lives), tls (a
# Tenant::Tls for its own HTTPS certificate). Returns { directory, ca_file,
# mgmt, log }.
sub start_pebble {
    my ($self, %o) = @_;
    my $dns = $self->start_mock_dns;
    my $leaf = $o{tls}->leaf('pebble', ['localhost'], by_root => 1);
    my ($port, $mgmt) = (free_port(), free_port());
    my $conf = "$self->{dir}/pebble.json";
    write_file($conf, encode_json({ pebble => {
        listenAddress => "127.0.0.1:$port",
        managementListenAddress => "127.0.0.1:$mgmt",
        certificate => $leaf->{cert}, privateKey => $leaf->{key},
        httpPort => $o{http_port} + 0, tlsPort => free_port() + 0,
        ocspResponderURL => '', externalAccountBindingRequired => JSON::PP::false,
        ($o{validity} ? (certificateValidityPeriod => $o{validity} + 0) : ()),
    } }));
    my $log = "$self->{dir}/pebble.log";
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open STDOUT, '>>', $log;
        open STDERR, '>&', \*STDOUT;
        # no random VA delays; the orders list in pages a resumed job reads
        $ENV{PEBBLE_VA_NOSLEEP} = 1;
        $ENV{PEBBLE_WFE_ORDERS_PER_PAGE} = 50;
        # every order proves its names again (Pebble would reuse half of
        # the valid authorisations, and a failing renewal would pass)
        $ENV{PEBBLE_AUTHZREUSE} = 0;
        exec 'pebble', '-config', $conf, '-dnsserver', "127.0.0.1:$dns->{dns}" or die "exec: $!";
    }
    $self->on_cleanup(sub { kill 'TERM', $pid; waitpid $pid, 0 });
    $self->wait_port($port, 20);
    return $self->{pebble} = { directory => "https://localhost:$port/dir", ca_file => $o{tls}->ca,
                               mgmt => $mgmt, log => $log, pid => $pid };
}

# what Pebble's log says it did: the orders it created and the
# certificates it issued
sub pebble_orders { scalar(() = slurp($_[0]{pebble}{log}) =~ /Added order/g) }
sub pebble_issued { scalar(() = slurp($_[0]{pebble}{log}) =~ /Issued certificate serial/g) }

# Pebble's root for this run (it makes a new one each start), PEM
sub pebble_root {
    my ($self) = @_;
    my ($rc, $pem) = run_cmd('curl', '-sf', '--cacert', $self->{pebble}{ca_file},
                             "https://localhost:$self->{pebble}{mgmt}/roots/0");
    die "pebble roots: $pem" if $rc;
    return $pem;
}

1;
