
/*
 * A worker's tokens whose signatures it has verified: a bounded LRU, so a
 * token seen again costs a hash and a compare instead of a signature
 * check.  An entry is good for the key set it was verified against and
 * the rules (the location's directives) it was checked by.
 */


#ifndef _NGX_HTTP_TENANT_JWT_CACHE_H_INCLUDED_
#define _NGX_HTTP_TENANT_JWT_CACHE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


typedef struct {
    ngx_rbtree_node_t               node;      /* key: the token's hash */
    ngx_queue_t                     queue;     /* LRU: newest first */
    void                           *rules;
    ngx_atomic_uint_t               serial;    /* of the key set */
    time_t                          exp;
    time_t                          nbf;
    ngx_uint_t                      approved;  /* the registry's last word */
    time_t                          approved_at;
    size_t                          payload;   /* its offset in token */
    size_t                          payload_len;
    ngx_str_t                       token;     /* these four in data */
    ngx_str_t                       tenant;
    ngx_str_t                       sub;
    ngx_str_t                       subject;
    u_char                          data[1];
} ngx_http_tenant_jwt_cached_t;


typedef struct {
    ngx_rbtree_t                    tree;
    ngx_rbtree_node_t               sentinel;
    ngx_queue_t                     lru;
    ngx_uint_t                      n;
    ngx_uint_t                      max;
} ngx_http_tenant_jwt_cache_t;


ngx_http_tenant_jwt_cache_t *ngx_http_tenant_jwt_cache_create(
    ngx_pool_t *pool, ngx_uint_t max);
void ngx_http_tenant_jwt_cache_destroy(ngx_http_tenant_jwt_cache_t *cache);

/* the entry of this token checked by these rules, or NULL */
ngx_http_tenant_jwt_cached_t *ngx_http_tenant_jwt_cache_find(
    ngx_http_tenant_jwt_cache_t *cache, ngx_str_t *token, void *rules);

/* the oldest entry goes when the cache is full; NULL: no memory */
ngx_http_tenant_jwt_cached_t *ngx_http_tenant_jwt_cache_add(
    ngx_http_tenant_jwt_cache_t *cache, ngx_str_t *token, void *rules,
    ngx_str_t *tenant, ngx_str_t *sub, ngx_str_t *subject);

void ngx_http_tenant_jwt_cache_remove(ngx_http_tenant_jwt_cache_t *cache,
    ngx_http_tenant_jwt_cached_t *c);


#endif /* _NGX_HTTP_TENANT_JWT_CACHE_H_INCLUDED_ */
