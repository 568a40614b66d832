
/*
 * Registry look-ups of hosts: one in flight per host per worker.
 */


#ifndef _NGX_HTTP_TENANT_LOOKUP_H_INCLUDED_
#define _NGX_HTTP_TENANT_LOOKUP_H_INCLUDED_


#include "ngx_http_tenant_module.h"
#include "ngx_http_tenant_cache.h"


ngx_http_tenant_lookups_t *ngx_http_tenant_lookup_init_process(
    ngx_cycle_t *cycle, ngx_http_tenant_cache_t *cache);
ngx_int_t ngx_http_tenant_lookup_start(ngx_http_tenant_lookups_t *lks,
    ngx_http_tenant_ctx_t *ctx);
void ngx_http_tenant_lookup_cancel(ngx_http_tenant_ctx_t *ctx);
ngx_int_t ngx_http_tenant_record_copy(ngx_pool_t *pool,
    ngx_http_tenant_record_t *dst, ngx_http_tenant_record_t *src);


#endif /* _NGX_HTTP_TENANT_LOOKUP_H_INCLUDED_ */
