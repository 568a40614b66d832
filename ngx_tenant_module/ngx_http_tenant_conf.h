
/*
 * Directive arguments the module's zones share.
 */


#ifndef _NGX_HTTP_TENANT_CONF_H_INCLUDED_
#define _NGX_HTTP_TENANT_CONF_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


char *ngx_http_tenant_conf_zone(ngx_conf_t *cf, ngx_str_t *arg, size_t min,
    ngx_str_t *name, ssize_t *size);


#endif /* _NGX_HTTP_TENANT_CONF_H_INCLUDED_ */
