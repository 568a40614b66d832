
/*
 * Unit tests for host normalisation; prints TAP for prove.
 *
 * sources: ngx_tenant_module/ngx_http_tenant_host.c
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_http_tenant_host.h"

#include <stdio.h>
#include <string.h>


static int  ntests;
static int  nfailed;


static void
check(const char *in, ngx_int_t want_rc, const char *want)
{
    u_char     buf[NGX_HTTP_TENANT_HOST_MAX];
    ngx_int_t  rc;
    int        ok;

    rc = ngx_http_tenant_host_normalize(buf, (u_char *) in, strlen(in));

    ok = (rc == want_rc);

    if (ok && rc > 0) {
        ok = ((size_t) rc == strlen(want) && memcmp(buf, want, rc) == 0);
    }

    ntests++;

    if (!ok) {
        nfailed++;
    }

    printf("%s %d - \"%s\" -> %ld%s%.*s\n", ok ? "ok" : "not ok", ntests, in,
           (long) rc, rc > 0 ? " " : "", rc > 0 ? (int) rc : 0,
           rc > 0 ? (char *) buf : "");
}


int
main(void)
{
    char  label64[80], long_host[300];
    int   i;

    printf("1..33\n");

    check("acme.localhost", 14, "acme.localhost");
    check("ACME.LocalHost", 14, "acme.localhost");
    check("acme.localhost:8080", 14, "acme.localhost");
    check("acme.localhost.", 14, "acme.localhost");
    check("acme.localhost.:80", 14, "acme.localhost");
    check("admin.acme.shop.example.com", 27, "admin.acme.shop.example.com");
    check("a-b.example.com", 15, "a-b.example.com");
    check("localhost", 9, "localhost");

    /* IP literals are never tenants */
    check("127.0.0.1", 0, NULL);
    check("127.0.0.1:8080", 0, NULL);
    check("[::1]", 0, NULL);
    check("[::1]:8080", 0, NULL);

    /* malformed */
    check("", NGX_ERROR, NULL);
    check(".", NGX_ERROR, NULL);
    check("acme..localhost", NGX_ERROR, NULL);
    check(".acme.localhost", NGX_ERROR, NULL);
    check("acme.localhost..", NGX_ERROR, NULL);
    check("-acme.localhost", NGX_ERROR, NULL);
    check("acme-.localhost", NGX_ERROR, NULL);
    check("acme.localhost-", NGX_ERROR, NULL);
    check("ac me.localhost", NGX_ERROR, NULL);
    check("acme_x.localhost", NGX_ERROR, NULL);
    check("acme.localhost:", NGX_ERROR, NULL);
    check("acme.localhost:80a", NGX_ERROR, NULL);
    check("acme.localhost:123456", NGX_ERROR, NULL);
    check("acme.localhost:65536", NGX_ERROR, NULL);
    check("acme.localhost:65535", 14, "acme.localhost");
    check("acme/../x.localhost", NGX_ERROR, NULL);
    check("[::1", NGX_ERROR, NULL);

    /* a NUL byte inside the host */
    {
        u_char  buf[NGX_HTTP_TENANT_HOST_MAX];
        ngx_int_t rc = ngx_http_tenant_host_normalize(buf,
                                              (u_char *) "ac\0me.localhost", 15);
        ntests++;
        printf("%s %d - NUL byte refused\n", rc == NGX_ERROR ? "ok" : "not ok",
               ntests);
        if (rc != NGX_ERROR) {
            nfailed++;
        }
    }

    /* label and total length limits */
    memset(label64, 'a', 64);
    strcpy(label64 + 64, ".localhost");
    check(label64, NGX_ERROR, NULL);
    label64[63] = '.';
    memmove(label64 + 63, ".localhost", 11);
    check(label64, 73, label64);

    for (i = 0; i < 254; i += 2) {
        long_host[i] = 'a';
        long_host[i + 1] = '.';
    }
    long_host[253] = 'a';
    long_host[254] = '\0';
    check(long_host, NGX_ERROR, NULL);

    return nfailed ? 1 : 0;
}
