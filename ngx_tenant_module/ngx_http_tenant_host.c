
/*
 * Host normalisation.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_http_tenant_host.h"
#include "ngx_http_tenant_module.h"


static ngx_int_t ngx_http_tenant_host_is_ipv4(u_char *host, size_t len);


ngx_int_t
ngx_http_tenant_host_normalize(u_char *buf, u_char *host, size_t len)
{
    u_char      ch, *p, *last;
    size_t      n, label;
    ngx_uint_t  dot, port;

    if (len == 0) {
        return NGX_ERROR;
    }

    /* bracketed IPv6 literal, with or without a port */

    if (host[0] == '[') {
        return ngx_strlchr(host, host + len, ']') ? 0 : NGX_ERROR;
    }

    last = host + len;

    /* strip the port: digits only, at most 5 of them */

    p = ngx_strlchr(host, last, ':');

    if (p) {
        if (last - p < 2 || last - p > 6) {
            return NGX_ERROR;
        }

        port = 0;

        for (n = 1; n < (size_t) (last - p); n++) {
            ch = p[n];
            if (ch < '0' || ch > '9') {
                return NGX_ERROR;
            }

            port = port * 10 + (ch - '0');
        }

        if (port > 65535) {
            return NGX_ERROR;
        }

        last = p;
    }

    if (last > host && last[-1] == '.') {
        last--;
    }

    n = last - host;

    if (n == 0 || n > NGX_HTTP_TENANT_HOST_MAX) {
        return NGX_ERROR;
    }

    /*
     * Labels of [a-z0-9-], 1..63 long, not starting or ending with a hyphen.
     * Stricter than RFC 7230 on purpose: anything else cannot be a tenant
     * host, and refusing it early keeps odd bytes out of logs and queries.
     */

    label = 0;
    dot = 1;

    for (p = host; p < last; p++) {
        ch = *p;

        if (ch >= 'A' && ch <= 'Z') {
            ch |= 0x20;
        }

        if (ch == '.') {
            if (dot || p[-1] == '-') {
                return NGX_ERROR;
            }

            dot = 1;
            label = 0;

        } else if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')
                   || (ch == '-' && !dot))
        {
            if (++label > 63) {
                return NGX_ERROR;
            }

            dot = 0;

        } else {
            return NGX_ERROR;
        }

        buf[p - host] = ch;
    }

    /* only one trailing dot was stripped: an empty last label is left */

    if (dot || last[-1] == '-') {
        return NGX_ERROR;
    }

    if (ngx_http_tenant_host_is_ipv4(buf, n)) {
        return 0;
    }

    return n;
}


/*
 * An address, never a name: a top-level label is never numeric (RFC 1123
 * 2.1, RFC 3696 2), so a host whose last label is a number, decimal or
 * 0x-hex, is taken for what inet_aton() would make of it (127.1,
 * 0x7f.0.0.1, 2130706433: every form has a numeric last part).
 */

static ngx_int_t
ngx_http_tenant_host_is_ipv4(u_char *host, size_t len)
{
    u_char  *p, *label;

    for (label = host + len; label > host && label[-1] != '.'; label--) {
        /* void */
    }

    p = label;

    if (host + len - p >= 2 && p[0] == '0' && p[1] == 'x') {
        p += 2;

        for ( /* void */ ; p < host + len; p++) {
            if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) {
                return 0;
            }
        }

        return 1;
    }

    for ( /* void */ ; p < host + len; p++) {
        if (*p < '0' || *p > '9') {
            return 0;
        }
    }

    return 1;
}


ngx_int_t
ngx_http_tenant_role_parse(u_char *s, size_t len)
{
    if (len == 4 && ngx_strncmp(s, "site", 4) == 0) {
        return NGX_HTTP_TENANT_ROLE_SITE;
    }

    if (len == 5 && ngx_strncmp(s, "admin", 5) == 0) {
        return NGX_HTTP_TENANT_ROLE_ADMIN;
    }

    return NGX_ERROR;
}
