
/*
 * A compact JWS (RFC 7515) as tenant_jwt checks it: split and decoded,
 * its signature verified with OpenSSL against one public key, its claims
 * (RFC 7519) checked.  Plain functions over the request's pool: no state.
 */


#ifndef _NGX_HTTP_TENANT_JWT_TOKEN_H_INCLUDED_
#define _NGX_HTTP_TENANT_JWT_TOKEN_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <jansson.h>
#include <openssl/evp.h>


typedef struct {
    ngx_str_t                       signed_part;   /* header "." payload */
    ngx_str_t                       payload_b64;
    ngx_str_t                       signature;     /* decoded */
    ngx_uint_t                      alg;           /* NGX_HTTP_TENANT_JWT_* */
    ngx_str_t                       kid;           /* empty: none */
} ngx_http_tenant_jwt_token_t;


/* what the claims must be, from the location's directives */
typedef struct {
    ngx_str_t                       issuer;        /* empty: any */
    ngx_str_t                       audience;      /* empty: any */
    ngx_str_t                       claim;         /* the tenant's */
    ngx_str_t                       approved;      /* empty: not checked */
    time_t                          leeway;
} ngx_http_tenant_jwt_rules_t;


/* what the claims said */
typedef struct {
    time_t                          exp;
    time_t                          nbf;
    ngx_str_t                       tenant;        /* in the pool */
    ngx_str_t                       sub;           /* in the pool */
    ngx_str_t                       subject;       /* rules->approved's */
} ngx_http_tenant_jwt_claims_t;


/*
 * NGX_OK, or NGX_DECLINED with *why (static text) set: not three parts,
 * not base64url, a header that is not a JSON object, an algorithm other
 * than RS256 and ES256 ("none" and HS256 included), "crit".
 */
ngx_int_t ngx_http_tenant_jwt_token_parse(ngx_pool_t *pool, ngx_str_t *raw,
    ngx_http_tenant_jwt_token_t *tok, const char **why);

/* NGX_OK when tok is signed by key for alg; NGX_DECLINED otherwise */
ngx_int_t ngx_http_tenant_jwt_token_verify(ngx_http_tenant_jwt_token_t *tok,
    EVP_PKEY *key, ngx_uint_t alg);

/*
 * The payload decoded and checked against rules at now: NGX_OK, or
 * NGX_DECLINED with *why.  A missing tenant claim is not refused here: the
 * caller answers 403, not 401, for it.
 */
ngx_int_t ngx_http_tenant_jwt_token_claims(ngx_pool_t *pool,
    ngx_http_tenant_jwt_token_t *tok, ngx_http_tenant_jwt_rules_t *rules,
    time_t now, ngx_http_tenant_jwt_claims_t *out, const char **why);

/* the payload as JSON (the caller json_decref()s it), or NULL */
json_t *ngx_http_tenant_jwt_token_payload(ngx_pool_t *pool,
    ngx_str_t *payload_b64);


#endif /* _NGX_HTTP_TENANT_JWT_TOKEN_H_INCLUDED_ */
