
/*
 * libFuzzer target: host normalisation (ngx_http_tenant_host.c).
 * Invariants: a normalised host is lowercase [a-z0-9.-], at most 253 bytes,
 * and normalising it again changes nothing.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_http_tenant_host.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char     buf[NGX_HTTP_TENANT_HOST_MAX], again[NGX_HTTP_TENANT_HOST_MAX];
    ngx_int_t  n, m, i;

    if (size > 4096) {
        return 0;
    }

    n = ngx_http_tenant_host_normalize(buf, (u_char *) data, size);

    if (n <= 0) {
        return 0;
    }

    if (n > NGX_HTTP_TENANT_HOST_MAX) {
        __builtin_trap();
    }

    for (i = 0; i < n; i++) {
        if (!((buf[i] >= 'a' && buf[i] <= 'z') || (buf[i] >= '0'
              && buf[i] <= '9') || buf[i] == '-' || buf[i] == '.'))
        {
            __builtin_trap();
        }
    }

    m = ngx_http_tenant_host_normalize(again, buf, n);

    if (m != n || ngx_memcmp(again, buf, n) != 0) {
        __builtin_trap();
    }

    return 0;
}
