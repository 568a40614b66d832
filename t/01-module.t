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

# the production example in conf/ is valid (paths and TLS adapted to the test)
my $example = Tenant::Test::slurp("$Tenant::Test::TOP/conf/nginx.example.conf");
$example =~ s{/usr/lib/nginx/modules/ngx_http_tenant_module\.so}{$Tenant::Test::BUILD/ngx_http_tenant_module.so};
$example =~ s{/var/log/nginx/}{$dir/logs/}g;
$example =~ s{/usr/share/ngx-tenant/openapi\.json}{$Tenant::Test::TOP/docs/openapi.json};
Tenant::Test::write_file("$dir/cache.token", "example-token-0123456789\n");
$example =~ s{/etc/nginx/tenant-cache-api\.token}{$dir/cache.token};
$example =~ s{^\s*(listen 443 ssl|ssl_certificate).*\n}{}mg;
$example =~ s{^(load_module .*\n)}{$1error_log $dir/logs/error.log;\npid $dir/nginx.pid;\n}m;
Tenant::Test::write_file("$dir/example.conf", $example);
($rc, $out) = Tenant::Test::run_cmd('/usr/sbin/nginx', '-t', '-p', $dir,
    '-c', "$dir/example.conf");
is($rc, 0, 'conf/nginx.example.conf passes nginx -t') or diag $out;

Tenant::Test::finish();
