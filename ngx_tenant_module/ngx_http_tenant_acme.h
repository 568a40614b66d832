
/*
 * ACME HTTP-01 answers every edge gives, from the registry through the
 * certificate zone's shared memory.
 */


#ifndef _NGX_HTTP_TENANT_ACME_H_INCLUDED_
#define _NGX_HTTP_TENANT_ACME_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_http_tenant_certs.h"


#define NGX_HTTP_TENANT_ACME_PREFIX  "/.well-known/acme-challenge/"


/* the key authorisation for host and token, copied into pool */
ngx_int_t ngx_http_tenant_acme_answer(ngx_http_tenant_certs_t *certs,
    ngx_str_t *host, ngx_str_t *token, ngx_pool_t *pool, ngx_str_t *out);
void ngx_http_tenant_acme_load(ngx_http_tenant_certs_t *certs);
/* a notification: "acme:<host> <token>" reloads one, "acme:*" all */
void ngx_http_tenant_acme_changed(ngx_http_tenant_certs_t *certs,
    u_char *payload, size_t len);


#endif /* _NGX_HTTP_TENANT_ACME_H_INCLUDED_ */
