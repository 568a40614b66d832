
/*
 * Propagation lag, measured: the listener's own notifications through the
 * registry, timed on this edge's clock.
 */


#ifndef _NGX_HTTP_TENANT_PROBE_H_INCLUDED_
#define _NGX_HTTP_TENANT_PROBE_H_INCLUDED_


#include "ngx_http_tenant_module.h"
#include "ngx_http_tenant_cache.h"


typedef struct ngx_http_tenant_probe_s  ngx_http_tenant_probe_t;


ngx_http_tenant_probe_t *ngx_http_tenant_probe_create(ngx_cycle_t *cycle,
    ngx_http_tenant_cache_t *cache);
/* the listener LISTENs: sends a probe if one is due */
void ngx_http_tenant_probe_tick(ngx_http_tenant_probe_t *pr);
/* a "probe:" notification's payload, after the prefix */
void ngx_http_tenant_probe_arrived(ngx_http_tenant_probe_t *pr, u_char *p,
    size_t len);


#endif /* _NGX_HTTP_TENANT_PROBE_H_INCLUDED_ */
