# The module loads into the distro nginx and a request is served.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Tenant::Test;

my $t = Tenant::Test->new;

ok(-f "$Tenant::Test::BUILD/ngx_http_tenant_module.so", 'module built');

my $http = <<'CONF';
    tenant_registry "%%DB%%";
    tenant_cache_zone tenants:1m;
    tenant_host_pattern "^(?<tenant>[a-z0-9-]+)\.localhost$";
    upstream tenant_backend { tenant_upstream; }
    server {
        listen 127.0.0.1:%%PORT%%;
        location / { tenant on; proxy_pass http://tenant_backend; }
        location = /plain { return 200 "served by the distro nginx\n"; }
    }
CONF

# nginx -t with load_module, before starting
my $dir = $t->dir . '/check';
mkdir $dir;
mkdir "$dir/logs";
Tenant::Test::write_file("$dir/nginx.conf", <<"CONF" =~ s/%%DB%%/host=127.0.0.1 port=1/r =~ s/%%PORT%%/1/r);
load_module $Tenant::Test::BUILD/ngx_http_tenant_module.so;
error_log $dir/logs/error.log;
pid $dir/nginx.pid;
events {}
http {
$http
}
CONF
my ($rc, $out) = Tenant::Test::run_cmd('/usr/sbin/nginx', '-t', '-p', $dir,
    '-c', "$dir/nginx.conf");
is($rc, 0, 'nginx -t accepts load_module and the tenant directives') or diag $out;
like($out, qr/test is successful/, 'nginx -t reports success');

$t->start_nginx(http => $http);
my $r = $t->get('localhost', '/plain');
is($r->{status}, 200, 'a request is served');
like($r->{body}, qr/served by the distro nginx/, 'body from nginx');

# a misconfiguration is refused with a clear message
Tenant::Test::write_file("$dir/nginx.conf", <<"CONF");
load_module $Tenant::Test::BUILD/ngx_http_tenant_module.so;
error_log $dir/logs/error.log;
pid $dir/nginx.pid;
events {}
http { server { listen 127.0.0.1:1; location / { tenant on; } } }
CONF
($rc, $out) = Tenant::Test::run_cmd('/usr/sbin/nginx', '-t', '-p', $dir,
    '-c', "$dir/nginx.conf");
isnt($rc, 0, '"tenant on" without a zone and registry is refused');
like($out, qr/needs "tenant_cache_zone"/, 'with a message naming the directive');

Tenant::Test::write_file("$dir/nginx.conf", <<"CONF");
load_module $Tenant::Test::BUILD/ngx_http_tenant_module.so;
error_log $dir/logs/error.log;
pid $dir/nginx.pid;
events {}
http { tenant_host_pattern "^(?<name>[a-z]+)\\.x\$"; }
CONF
($rc, $out) = Tenant::Test::run_cmd('/usr/sbin/nginx', '-t', '-p', $dir,
    '-c', "$dir/nginx.conf");
like($out, qr/has no \(\?<tenant>\.\.\.\) capture/, 'pattern without a tenant capture is refused');

# TLS directives refuse what cannot work, saying what would
sub conf_check {
    my ($http) = @_;
    Tenant::Test::write_file("$dir/tls.conf", "load_module $Tenant::Test::BUILD/ngx_http_tenant_module.so;\n"
        . "error_log $dir/logs/error.log;\npid $dir/nginx.pid;\nevents {}\nhttp { $http }\n");
    return Tenant::Test::run_cmd('/usr/sbin/nginx', '-t', '-p', $dir, '-c', "$dir/tls.conf");
}
Tenant::Test::write_file("$dir/short-key", "abcd\n");
chmod 0600, "$dir/short-key";
Tenant::Test::write_file("$dir/open-key", ('0f' x 32) . "\n");
chmod 0644, "$dir/open-key";
($rc, $out) = conf_check("tenant_ssl_zone certs:1m key_file=$dir/open-key;");
isnt($rc, 0, 'a key file others may read is refused');
like($out, qr/may be read by others \(mode 644\): it must be 0600/, '... saying so');
($rc, $out) = conf_check('tenant_ssl_zone certs:1m;');
isnt($rc, 0, 'tenant_ssl_zone without key_file is refused');
like($out, qr/needs key_file=path/, '... naming key_file');
($rc, $out) = conf_check("tenant_ssl_zone certs:1m key_file=$dir/short-key;");
isnt($rc, 0, 'a key file without 64 hex digits is refused');
like($out, qr/expected 64 hex digits/, '... saying what it must hold');
($rc, $out) = conf_check("tenant_ssl_zone certs:1m key_file=$dir/nope;");
like($out, qr/cannot open .*nope/, 'a missing key file is named');
($rc, $out) = conf_check('server { listen 127.0.0.1:1; tenant_ssl on; }');
isnt($rc, 0, 'tenant_ssl without tenant_ssl_zone is refused');
like($out, qr/needs "tenant_ssl_zone"/, '... naming it');
Tenant::Test::write_file("$dir/good-key", ('0f' x 32) . "\n");
chmod 0600, "$dir/good-key";
($rc, $out) = conf_check("tenant_ssl_zone certs:1m key_file=$dir/good-key;"
    . ' server { listen 127.0.0.1:1; tenant_ssl on; }');
isnt($rc, 0, 'tenant_ssl in a server without TLS is refused');
like($out, qr/needs a "listen \.\.\. ssl" server with "ssl_certificate"/, '... saying what it needs');
($rc, $out) = conf_check('server { listen 127.0.0.1:1; tenant_ssl_redirect 70000; }');
like($out, qr/"off" or the HTTPS port/, 'a bad redirect port is refused');

# the production example in conf/ is valid (paths and TLS adapted to the test)
my $example = Tenant::Test::slurp("$Tenant::Test::TOP/conf/nginx.example.conf");
$example =~ s{/usr/lib/nginx/modules/ngx_http_tenant_module\.so}{$Tenant::Test::BUILD/ngx_http_tenant_module.so};
$example =~ s{/var/log/nginx/}{$dir/logs/}g;
$example =~ s{/usr/share/ngx-tenant/openapi\.json}{$Tenant::Test::TOP/docs/openapi.json};
Tenant::Test::write_file("$dir/cache.token", "example-token-0123456789\n");
$example =~ s{/etc/nginx/tenant-cache-api\.token}{$dir/cache.token};
# TLS with a throwaway certificate and certificate key of the test's
Tenant::Test::run_cmd('openssl', qw(req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1),
    '-subj', '/CN=*.shop.example.com', '-keyout', "$dir/wild.key", '-out', "$dir/wild.pem");
Tenant::Test::write_file("$dir/cert-key", ('ab' x 32) . "\n");
chmod 0600, "$dir/cert-key";
$example =~ s{/etc/nginx/tls/wildcard\.shop\.example\.com\.pem}{$dir/wild.pem};
$example =~ s{/etc/nginx/tls/wildcard\.shop\.example\.com\.key}{$dir/wild.key};
$example =~ s{/etc/ngx-tenant/cert-key}{$dir/cert-key};
$example =~ s{listen 80 default_server;}{listen 127.0.0.1:1080 default_server;};
$example =~ s{listen 443 ssl default_server;}{listen 127.0.0.1:1443 ssl default_server;};
$example =~ s{^(load_module .*\n)}{$1error_log $dir/logs/error.log;\npid $dir/nginx.pid;\n}m;
Tenant::Test::write_file("$dir/example.conf", $example);
($rc, $out) = Tenant::Test::run_cmd('/usr/sbin/nginx', '-t', '-p', $dir,
    '-c', "$dir/example.conf");
is($rc, 0, 'conf/nginx.example.conf passes nginx -t') or diag $out;

Tenant::Test::finish();
