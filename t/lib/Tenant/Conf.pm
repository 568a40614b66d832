package Tenant::Conf;

# The http block most data-plane tests share: one host pattern with roles,
# the tenant upstream with keepalive, and variables echoed in headers so
# tests can see what the module decided.

use strict;
use warnings;

sub http {
    my (%o) = @_;
    my $zone = $o{zone} // '4m';
    my $extra = $o{extra} // '';
    my $timeout = $o{timeout} // '1s';
    my $ttl = $o{ttl} // '60s';
    # tenant creation limited per API key: accepted creates only
    my $api_limit = $o{ratelimit}
        ? "            tenant_admin_api_create_limit $o{ratelimit};\n" : '';
    # ssl => {port, cert, key, key_file[, redirect]}: an HTTPS server with
    # tenant_ssl beside the plain one
    my ($ssl_zone, $ssl_server, $redirect) = ('', '', '');
    if (my $s = $o{ssl}) {
        $ssl_zone = "    tenant_ssl_zone certs:${\($s->{zone} // '1m')} key_file=$s->{key_file}"
            . ($s->{cache} ? " cache=$s->{cache}" : '') . ";";
        $redirect = $s->{redirect} ? "        tenant_ssl_redirect $s->{port};" : '';
        $ssl_server = <<"SSL";
    server {
        listen 127.0.0.1:$s->{port} ssl;
        ssl_certificate $s->{cert};
        ssl_certificate_key $s->{key};
        tenant on;
        tenant_ssl on;
        add_header X-Tenant-ID \$tenant_id always;
        add_header Strict-Transport-Security \$tenant_hsts always;
        location / {
            proxy_pass http://tenant_backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Tenant-ID \$tenant_id;
        }
    }
SSL
    }
    return <<"CONF";
    tenant_registry "%%DB%%";
    tenant_registry_connections ${\($o{connections} // 2)};
    tenant_registry_timeout $timeout;
    tenant_registry_retry ${\($o{retry} // '500ms')};
    tenant_cache_zone tenants:$zone;
    tenant_cache_ttl $ttl;
    tenant_cache_negative_ttl ${\($o{negative_ttl} // '5s')};
    tenant_cache_max_stale ${\($o{max_stale} // '1h')};
    tenant_host_pattern "^(?:(?<role>admin)\\.)?(?<tenant>[a-z0-9-]+)\\.localhost\$";
${\($o{filter} ? "    tenant_host_filter hosts:$o{filter};" : '')}
${\($o{traffic} ? "    tenant_traffic_zone $o{traffic};" : '')}
$ssl_zone

    upstream tenant_backend {
        tenant_upstream max_fails=1 fail_timeout=10s;
        keepalive 16;
    }

$ssl_server
    server {
        listen 127.0.0.1:%%PORT%%;
        tenant on;
$redirect
        add_header X-Tenant-ID \$tenant_id always;
        add_header X-Tenant-Role \$tenant_role always;
        add_header X-Tenant-Status \$tenant_status always;
        add_header X-Tenant-Blueprint \$tenant_blueprint always;
        add_header X-Tenant-Cache \$tenant_cache_status always;

        location / {
            proxy_pass http://tenant_backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Tenant-ID \$tenant_id;
            proxy_set_header X-Tenant-Role \$tenant_role;
            proxy_next_upstream error timeout;
            proxy_connect_timeout 1s;
        }
        location /tenant-cache/ {
            tenant off;
            tenant_cache_api %%DIR%%/cache-api-token;
            allow 127.0.0.1;
            deny all;
        }

        location /api/ {
            tenant off;
            tenant_admin_api;
            tenant_admin_api_openapi $Tenant::Test::TOP/docs/openapi.json;
            # custom domains: claims proven by DNS (t/19), or trusted
            tenant_admin_api_domain_verification ${\($o{verify_domains} ? 'on' : 'off')};
            client_max_body_size 1m;   # the API itself refuses over 64 KiB, in JSON
$api_limit        }

        location = /metrics {
            tenant off;
            tenant_metrics;
            allow 127.0.0.1;
            deny all;
        }

        location /dashboard/ {
            tenant off;
            alias $Tenant::Test::TOP/dashboard/;
            types { text/html html; text/css css; application/javascript js; image/svg+xml svg; }
            charset utf-8;
            add_header Content-Security-Policy "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'" always;
            add_header X-Content-Type-Options nosniff always;
        }

        location /not-the-api/ {
            tenant off;
            return 404;
        }
$extra
    }
CONF
}

1;
