
/*
 * Admin API input validation: pure functions, fuzzed on their own.
 */


#ifndef _NGX_HTTP_TENANT_API_VALIDATE_H_INCLUDED_
#define _NGX_HTTP_TENANT_API_VALIDATE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include "tenant_names.h"


/* each returns NULL when valid, else why not (a static message) */
const char *ngx_http_tenant_api_check_email(u_char *s, size_t len);
const char *ngx_http_tenant_api_check_password(u_char *s, size_t len);
const char *ngx_http_tenant_api_check_text(u_char *s, size_t len,
    size_t max);
const char *ngx_http_tenant_api_check_domain(u_char *buf, u_char *s,
    size_t len, size_t *out);


#endif /* _NGX_HTTP_TENANT_API_VALIDATE_H_INCLUDED_ */
