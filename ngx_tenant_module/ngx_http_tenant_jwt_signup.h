
/*
 * tenant_jwt_approved: whether a token's subject is an approved sign-up of
 * the Host's tenant (migration 018), asked of the registry without
 * blocking.  The answer comes to a completion handler from the event loop.
 */


#ifndef _NGX_HTTP_TENANT_JWT_SIGNUP_H_INCLUDED_
#define _NGX_HTTP_TENANT_JWT_SIGNUP_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


#define NGX_HTTP_TENANT_JWT_SIGNUP_UNKNOWN   0
#define NGX_HTTP_TENANT_JWT_SIGNUP_APPROVED  1
#define NGX_HTTP_TENANT_JWT_SIGNUP_NOT       2   /* pending, rejected, none */
#define NGX_HTTP_TENANT_JWT_SIGNUP_FAILED    3   /* the registry did not say */


typedef struct ngx_http_tenant_jwt_signup_s  ngx_http_tenant_jwt_signup_t;

typedef void (*ngx_http_tenant_jwt_signup_pt)(ngx_http_request_t *r,
    ngx_uint_t answer);


/* NGX_OK: asked, the handler will be called unless _cancel()ed first */
ngx_int_t ngx_http_tenant_jwt_signup_ask(ngx_http_request_t *r,
    ngx_str_t *tenant, ngx_str_t *subject,
    ngx_http_tenant_jwt_signup_pt handler,
    ngx_http_tenant_jwt_signup_t **ask);

/* the request is going away: its answer is dropped when it comes */
void ngx_http_tenant_jwt_signup_cancel(ngx_http_tenant_jwt_signup_t *ask);


#endif /* _NGX_HTTP_TENANT_JWT_SIGNUP_H_INCLUDED_ */
