
/*
 * Host normalisation: free of nginx runtime state, so unit tests and
 * fuzzers run it on its own.
 */


#ifndef _NGX_HTTP_TENANT_HOST_H_INCLUDED_
#define _NGX_HTTP_TENANT_HOST_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


#define NGX_HTTP_TENANT_HOST_MAX  253


/*
 * Normalises host[0..len) into buf (at least NGX_HTTP_TENANT_HOST_MAX bytes):
 * lowercase, port and one trailing dot stripped.  Returns the normalised
 * length, 0 for an IP literal (never a tenant), or NGX_ERROR for an empty,
 * over-long or malformed host.
 */
ngx_int_t ngx_http_tenant_host_normalize(u_char *buf, u_char *host,
    size_t len);

ngx_int_t ngx_http_tenant_role_parse(u_char *s, size_t len);


#endif /* _NGX_HTTP_TENANT_HOST_H_INCLUDED_ */
