
/*
 * The packed form of an endpoint in a shared cache entry.
 */


#ifndef _NGX_HTTP_TENANT_ENTRY_H_INCLUDED_
#define _NGX_HTTP_TENANT_ENTRY_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_http_tenant_module.h"


/* an endpoint and its balancer state, followed by its packed address */
typedef struct {
    int32_t                         current_weight;
    uint32_t                        checked;
    u_short                         fails;
    u_char                          weight;
    u_char                          family;
    u_short                         addr_len;
    u_short                         reserved;
} ngx_http_tenant_node_ep_t;


#define ngx_http_tenant_align4(n)  (((n) + 3) & ~((size_t) 3))

/* the longest packed address: a unix socket's path */
#define NGX_HTTP_TENANT_ADDR_MAX   128


/* the packed length (0: a family or path that cannot be packed) */
size_t ngx_http_tenant_addr_pack(u_char *dst, ngx_http_tenant_endpoint_t *ep,
    u_char *family);
ngx_int_t ngx_http_tenant_addr_unpack(ngx_pool_t *pool,
    ngx_http_tenant_node_ep_t *nep, ngx_http_tenant_endpoint_t *ep);


#endif /* _NGX_HTTP_TENANT_ENTRY_H_INCLUDED_ */
