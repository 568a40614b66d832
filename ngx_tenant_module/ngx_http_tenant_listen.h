
/*
 * The one LISTEN tenant_changed connection of an nginx instance.
 */


#ifndef _NGX_HTTP_TENANT_LISTEN_H_INCLUDED_
#define _NGX_HTTP_TENANT_LISTEN_H_INCLUDED_


#include "ngx_http_tenant_module.h"


void ngx_http_tenant_listen_init_process(ngx_cycle_t *cycle);
void ngx_http_tenant_listen_exit_process(void);


#endif /* _NGX_HTTP_TENANT_LISTEN_H_INCLUDED_ */
