
/*
 * What the module answers by itself: the JSON replies of the admin API and
 * the cache API, and the headers that go with them.
 */


#ifndef _NGX_HTTP_TENANT_REPLY_H_INCLUDED_
#define _NGX_HTTP_TENANT_REPLY_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <jansson.h>


ngx_int_t ngx_http_tenant_reply_json(ngx_http_request_t *r,
    ngx_uint_t status, json_t *body);
ngx_int_t ngx_http_tenant_reply_text(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *body);
json_t *ngx_http_tenant_reply_error(const char *code, const char *message,
    const char *field);
ngx_int_t ngx_http_tenant_reply_header(ngx_http_request_t *r,
    const char *key, size_t max, const char *fmt, ...);
void ngx_http_tenant_reply_path(ngx_http_request_t *r, ngx_str_t *path);


#endif /* _NGX_HTTP_TENANT_REPLY_H_INCLUDED_ */
