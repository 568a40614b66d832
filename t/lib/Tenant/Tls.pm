package Tenant::Tls;

# Certificates for the HTTPS tests, made with the openssl command line in
# the test's own dir: a CA, an intermediate, and leaves signed by either,
# ECDSA P-256 unless asked otherwise; a past validity through `openssl ca`.

use strict;
use warnings;
use File::Path qw(make_path);
use Tenant::Test;

sub new {
    my ($class, $dir) = @_;
    make_path("$dir/tls");
    my $self = bless { dir => "$dir/tls", n => 0 }, $class;
    $self->_run(qw(req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30),
                '-subj', '/CN=Test Root CA', '-keyout', "$self->{dir}/ca.key",
                '-out', "$self->{dir}/ca.crt",
                '-addext', 'basicConstraints=critical,CA:TRUE',
                '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
    $self->{inter} = $self->leaf('Test Intermediate', [], ca => 1);
    return $self;
}

sub _run {
    my ($self, @args) = @_;
    my ($rc, $out) = Tenant::Test::run_cmd('openssl', @args);
    die "openssl @args: $out" if $rc;
    return $out;
}

sub ca { "$_[0]{dir}/ca.crt" }

# the certificate key the edges and the provisioner seal with: 32 random
# bytes in hex, 0600 (a key others may read is refused)
sub seal_key_file {
    my ($self) = @_;
    my $f = "$self->{dir}/cert-key";
    Tenant::Test::write_file($f, join('', map { sprintf '%02x', int rand 256 } 1 .. 32) . "\n");
    chmod 0600, $f;
    return $f;
}

# a leaf (or an intermediate, ca => 1) for the DNS names; returns
# {cert, key, chain (cert + intermediate, when signed by it), pem, key_pem}
sub leaf {
    my ($self, $cn, $names, %o) = @_;
    my $n = ++$self->{n};
    my $d = $self->{dir};
    my ($key, $csr, $crt, $ext) = map { "$d/$n.$_" } qw(key csr crt ext);
    if (($o{type} // 'ec') eq 'ec') {
        $self->_run(qw(genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out), $key);
    } else {
        $self->_run(qw(genpkey -algorithm RSA -pkeyopt), "rsa_keygen_bits:$o{bits}", '-out', $key);
    }
    $self->_run('req', '-new', '-key', $key, '-subj', "/CN=$cn", '-out', $csr);
    Tenant::Test::write_file($ext, $o{ca}
        ? "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
        : "subjectAltName=" . join(',', map { "DNS:$_" } @$names) . "\n");
    my $by = $o{by_root} || $o{ca} ? { cert => $self->ca, key => "$d/ca.key" } : $self->{inter};
    if ($o{expired}) {
        # `openssl ca` sets any dates; req -x509 and x509 -req only from now
        Tenant::Test::write_file("$d/index.txt", '') unless -f "$d/index.txt";
        Tenant::Test::write_file("$d/serial", "1000\n") unless -f "$d/serial";
        Tenant::Test::write_file("$d/ca.cnf", "[ca]\ndefault_ca = c\n[c]\ndatabase = $d/index.txt\n"
            . "new_certs_dir = $d\nserial = $d/serial\ndefault_md = sha256\npolicy = p\n"
            . "unique_subject = no\n[p]\ncommonName = supplied\n");
        $self->_run(qw(ca -batch -notext -config), "$d/ca.cnf", '-cert', $by->{cert},
                    '-keyfile', $by->{key}, '-in', $csr, '-out', $crt,
                    '-startdate', '20200101000000Z', '-enddate', '20200201000000Z',
                    '-extfile', $ext);
    } else {
        $self->_run(qw(x509 -req -days 30 -sha256), '-in', $csr, '-CA', $by->{cert},
                    '-CAkey', $by->{key}, '-CAcreateserial', '-extfile', $ext, '-out', $crt);
    }
    my $pem = Tenant::Test::slurp($crt);
    my $chain = $by->{pem} && !$o{ca} ? $pem . $by->{pem} : $pem;
    return { cert => $crt, key => $key, pem => $pem, chain => $chain,
             key_pem => Tenant::Test::slurp($key) };
}

# what the server presents for a TLS name ('' for none): the leaf's CN, or
# undef when the handshake fails
sub served_cn {
    my ($port, $sni) = @_;
    my @sni = length $sni ? ('-servername', $sni) : ('-noservername');
    my ($rc, $out) = Tenant::Test::run_cmd('sh', '-c',
        'openssl s_client -connect 127.0.0.1:' . $port . ' '
        . join(' ', map { Tenant::Test::shell_quote($_) } @sni)
        . ' </dev/null 2>/dev/null | openssl x509 -noout -subject 2>/dev/null');
    return $out =~ /CN\s*=\s*([^,\n]+)/ ? $1 : undef;
}

1;
