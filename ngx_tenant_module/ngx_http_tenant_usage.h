
/*
 * Monthly quotas across edges: the traffic zone's counts, summed in the
 * registry.
 */


#ifndef _NGX_HTTP_TENANT_USAGE_H_INCLUDED_
#define _NGX_HTTP_TENANT_USAGE_H_INCLUDED_


#include "ngx_http_tenant_module.h"
#include "ngx_http_tenant_traffic.h"


ngx_http_tenant_usage_t *ngx_http_tenant_usage_init_process(
    ngx_cycle_t *cycle, ngx_http_tenant_traffic_t *tt);
void ngx_http_tenant_usage_exit_process(ngx_http_tenant_usage_t *us);


#endif /* _NGX_HTTP_TENANT_USAGE_H_INCLUDED_ */
