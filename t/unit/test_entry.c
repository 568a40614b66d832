
/*
 * Unit tests for the packed endpoints of cache entries
 * (ngx_http_tenant_entry.c): each family packs into its few bytes and comes
 * back the same address, port and name; prints TAP for prove.  The pool
 * functions are malloc here; ngx_sock_ntop (nginx's, used for IPv6 and
 * unix names) is stood in for by inet_ntop.
 *
 * sources: ngx_tenant_module/ngx_http_tenant_entry.c
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_http_tenant_entry.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static int  ntests;


void *
ngx_palloc(ngx_pool_t *pool, size_t size)
{
    return malloc(size);
}


void *
ngx_pnalloc(ngx_pool_t *pool, size_t size)
{
    return malloc(size);
}


void *
ngx_pcalloc(ngx_pool_t *pool, size_t size)
{
    return calloc(1, size);
}


size_t
ngx_sock_ntop(struct sockaddr *sa, socklen_t socklen, u_char *text,
    size_t len, ngx_uint_t port)
{
    struct sockaddr_in6  *sin6;

    if (sa->sa_family == AF_UNIX) {
        return snprintf((char *) text, len, "unix:%s",
                        ((struct sockaddr_un *) sa)->sun_path);
    }

    sin6 = (struct sockaddr_in6 *) sa;
    text[0] = '[';
    inet_ntop(AF_INET6, &sin6->sin6_addr, (char *) text + 1, len - 1);

    return strlen((char *) text);
}


static void
ok(int cond, const char *what)
{
    ntests++;
    printf("%s %d - %s\n", cond ? "ok" : "not ok", ntests, what);
}


/* packs ep, unpacks it through an entry's layout, returns the copy */
static ngx_http_tenant_endpoint_t *
round_trip(ngx_http_tenant_endpoint_t *ep, size_t *packed)
{
    u_char                       buf[sizeof(ngx_http_tenant_node_ep_t)
                                     + NGX_HTTP_TENANT_ADDR_MAX];
    u_char                       family;
    ngx_http_tenant_node_ep_t   *nep;
    ngx_http_tenant_endpoint_t  *out;

    nep = (ngx_http_tenant_node_ep_t *) buf;
    memset(buf, 0, sizeof(buf));

    *packed = ngx_http_tenant_addr_pack((u_char *) (nep + 1), ep, &family);
    if (*packed == 0) {
        return NULL;
    }

    nep->family = family;
    nep->addr_len = (u_short) *packed;
    nep->weight = (u_char) ep->weight;

    out = calloc(1, sizeof(*out));
    if (ngx_http_tenant_addr_unpack(NULL, nep, out) != NGX_OK) {
        return NULL;
    }

    return out;
}


static int
name_is(ngx_http_tenant_endpoint_t *ep, const char *want)
{
    return ep->name.len == strlen(want)
           && memcmp(ep->name.data, want, ep->name.len) == 0;
}


int
main(void)
{
    size_t                       packed;
    struct sockaddr_in           sin;
    struct sockaddr_in6          sin6;
    struct sockaddr_un           saun;
    ngx_http_tenant_endpoint_t   ep, *got;
    struct {
        const char  *addr;
        int          port;
        const char  *name;
    } v4[] = {
        { "127.0.0.1", 8080, "127.0.0.1:8080" },
        { "10.20.30.40", 1, "10.20.30.40:1" },
        { "255.255.255.255", 65535, "255.255.255.255:65535" },
        { "0.0.0.0", 80, "0.0.0.0:80" },
        { "192.168.100.9", 10000, "192.168.100.9:10000" }
    };
    size_t                       i;

    printf("1..%d\n", (int) (3 * (sizeof(v4) / sizeof(v4[0])) + 7));

    for (i = 0; i < sizeof(v4) / sizeof(v4[0]); i++) {
        memset(&sin, 0, sizeof(sin));
        sin.sin_family = AF_INET;
        inet_pton(AF_INET, v4[i].addr, &sin.sin_addr);
        sin.sin_port = htons(v4[i].port);

        memset(&ep, 0, sizeof(ep));
        ep.sockaddr = (struct sockaddr *) &sin;
        ep.socklen = sizeof(sin);
        ep.weight = 3;

        got = round_trip(&ep, &packed);

        ok(packed == 6, "IPv4 packs into 6 bytes");
        ok(got && got->socklen == sizeof(sin)
           && memcmp(got->sockaddr, &sin, sizeof(sin)) == 0
           && got->weight == 3, "IPv4 address, port and weight come back");
        ok(got && name_is(got, v4[i].name), v4[i].name);
    }

    memset(&sin6, 0, sizeof(sin6));
    sin6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "2001:db8::7", &sin6.sin6_addr);
    sin6.sin6_port = htons(8443);
    ep.sockaddr = (struct sockaddr *) &sin6;
    ep.socklen = sizeof(sin6);

    got = round_trip(&ep, &packed);
    ok(packed == 18, "IPv6 packs into 18 bytes");
    ok(got && got->socklen == sizeof(sin6)
       && memcmp(got->sockaddr, &sin6, sizeof(sin6)) == 0,
       "IPv6 address and port come back");

    memset(&saun, 0, sizeof(saun));
    saun.sun_family = AF_UNIX;
    strcpy(saun.sun_path, "/run/ngx-tenant/shop1/web.sock");
    ep.sockaddr = (struct sockaddr *) &saun;
    ep.socklen = sizeof(saun);

    got = round_trip(&ep, &packed);
    ok(packed == strlen(saun.sun_path), "a unix path packs as itself");
    ok(got && strcmp(((struct sockaddr_un *) got->sockaddr)->sun_path,
                     saun.sun_path) == 0
       && got->sockaddr->sa_family == AF_UNIX, "the unix path comes back");
    ok(got && name_is(got, "unix:/run/ngx-tenant/shop1/web.sock"),
       "its name");

    /* a path that fills sun_path has no room for its NUL: refused */
    memset(saun.sun_path, 'a', sizeof(saun.sun_path));
    ok(round_trip(&ep, &packed) == NULL && packed == 0,
       "a unix path without room for its NUL is refused");

    /* a family the cache does not know is refused, not guessed */
    saun.sun_family = AF_APPLETALK;
    ok(round_trip(&ep, &packed) == NULL && packed == 0,
       "an unknown family is refused");

    return 0;
}
