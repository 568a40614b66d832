
/*
 * The packed form of an endpoint in a shared cache entry: its balancer
 * state and its address in as few bytes as the family allows, so a typical
 * entry fits a 128-byte slab slot; and the way back, on every request, to a
 * sockaddr and a name in the request's pool.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_http_tenant_entry.h"


static u_char *ngx_http_tenant_inet_name(u_char *p, u_char *addr,
    u_char *port);


/* addresses are packed: 6 bytes for IPv4, 18 for IPv6, the path for unix */

size_t
ngx_http_tenant_addr_pack(u_char *dst, ngx_http_tenant_endpoint_t *ep,
    u_char *family)
{
    size_t                len;
    struct sockaddr_in   *sin;
#if (NGX_HAVE_INET6)
    struct sockaddr_in6  *sin6;
#endif
#if (NGX_HAVE_UNIX_DOMAIN)
    struct sockaddr_un   *saun;
#endif

    *family = (u_char) ep->sockaddr->sa_family;

    switch (ep->sockaddr->sa_family) {

    case AF_INET:
        sin = (struct sockaddr_in *) ep->sockaddr;
        ngx_memcpy(dst, &sin->sin_addr, 4);
        ngx_memcpy(dst + 4, &sin->sin_port, 2);
        return 6;

#if (NGX_HAVE_INET6)
    case AF_INET6:
        sin6 = (struct sockaddr_in6 *) ep->sockaddr;
        ngx_memcpy(dst, &sin6->sin6_addr, 16);
        ngx_memcpy(dst + 16, &sin6->sin6_port, 2);
        return 18;
#endif

#if (NGX_HAVE_UNIX_DOMAIN)
    case AF_UNIX:
        saun = (struct sockaddr_un *) ep->sockaddr;
        len = ngx_strlen(saun->sun_path);
        if (len == 0 || len >= sizeof(saun->sun_path)) {
            return 0;
        }
        ngx_memcpy(dst, saun->sun_path, len);
        return len;
#endif
    }

    (void) len;

    return 0;
}


/* "a.b.c.d:port" from a packed address and port (network order) */

static u_char *
ngx_http_tenant_inet_name(u_char *p, u_char *addr, u_char *port)
{
    ngx_uint_t  i, n, d;

    for (i = 0; i < 4; i++) {
        n = addr[i];

        if (n >= 100) {
            *p++ = (u_char) ('0' + n / 100);
        }

        if (n >= 10) {
            *p++ = (u_char) ('0' + n / 10 % 10);
        }

        *p++ = (u_char) ('0' + n % 10);
        *p++ = (i < 3) ? '.' : ':';
    }

    n = (port[0] << 8) | port[1];

    for (d = 10000; d > 1 && d > n; d /= 10) { /* void */ }

    for ( /* void */ ; d; d /= 10) {
        *p++ = (u_char) ('0' + n / d % 10);
    }

    return p;
}


ngx_int_t
ngx_http_tenant_addr_unpack(ngx_pool_t *pool, ngx_http_tenant_node_ep_t *nep,
    ngx_http_tenant_endpoint_t *ep)
{
    u_char               *src, *p;
    size_t                len;
    struct sockaddr_in   *sin;
#if (NGX_HAVE_INET6)
    struct sockaddr_in6  *sin6;
#endif
#if (NGX_HAVE_UNIX_DOMAIN)
    struct sockaddr_un   *saun;
#endif

    src = (u_char *) (nep + 1);
    ep->weight = nep->weight;

    switch (nep->family) {

    case AF_INET:
        /* the common case, on every request: one allocation, no sprintf */
        p = ngx_palloc(pool, sizeof(struct sockaddr_in)
                             + NGX_INET_ADDRSTRLEN + sizeof(":65535"));
        if (p == NULL) {
            return NGX_ERROR;
        }
        sin = (struct sockaddr_in *) p;
        ngx_memzero(sin, sizeof(struct sockaddr_in));
        sin->sin_family = AF_INET;
        ngx_memcpy(&sin->sin_addr, src, 4);
        ngx_memcpy(&sin->sin_port, src + 4, 2);
        ep->sockaddr = (struct sockaddr *) sin;
        ep->socklen = sizeof(struct sockaddr_in);
        ep->name.data = p + sizeof(struct sockaddr_in);
        ep->name.len = ngx_http_tenant_inet_name(ep->name.data, src, src + 4)
                       - ep->name.data;
        return NGX_OK;

#if (NGX_HAVE_INET6)
    case AF_INET6:
        sin6 = ngx_pcalloc(pool, sizeof(struct sockaddr_in6));
        if (sin6 == NULL) {
            return NGX_ERROR;
        }
        sin6->sin6_family = AF_INET6;
        ngx_memcpy(&sin6->sin6_addr, src, 16);
        ngx_memcpy(&sin6->sin6_port, src + 16, 2);
        ep->sockaddr = (struct sockaddr *) sin6;
        ep->socklen = sizeof(struct sockaddr_in6);
        len = NGX_SOCKADDR_STRLEN;
        break;
#endif

#if (NGX_HAVE_UNIX_DOMAIN)
    case AF_UNIX:
        saun = ngx_pcalloc(pool, sizeof(struct sockaddr_un));
        if (saun == NULL) {
            return NGX_ERROR;
        }
        saun->sun_family = AF_UNIX;
        ngx_memcpy(saun->sun_path, src, nep->addr_len);
        ep->sockaddr = (struct sockaddr *) saun;
        ep->socklen = sizeof(struct sockaddr_un);
        len = NGX_SOCKADDR_STRLEN;
        break;
#endif

    default:
        return NGX_ERROR;
    }

    p = ngx_pnalloc(pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ep->name.data = p;
    ep->name.len = ngx_sock_ntop(ep->sockaddr, ep->socklen, p, len, 1);

    return NGX_OK;
}
