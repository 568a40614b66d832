
/*
 * The one LISTEN tenant_changed connection of an nginx instance.
 */


#ifndef _NGX_HTTP_TENANT_LISTEN_H_INCLUDED_
#define _NGX_HTTP_TENANT_LISTEN_H_INCLUDED_


#include "ngx_http_tenant_module.h"
#include "ngx_http_tenant_cache.h"
#include "ngx_http_tenant_filter.h"
#include "ngx_http_tenant_certs.h"
#include "ngx_http_tenant_jwt_keys.h"


ngx_http_tenant_listen_t *ngx_http_tenant_listen_init_process(
    ngx_cycle_t *cycle, ngx_http_tenant_cache_t *cache,
    ngx_http_tenant_filter_t *filter, ngx_http_tenant_certs_t *certs,
    ngx_http_tenant_jwt_keys_t *jwt);
void ngx_http_tenant_listen_exit_process(ngx_http_tenant_listen_t *lst);


#endif /* _NGX_HTTP_TENANT_LISTEN_H_INCLUDED_ */
