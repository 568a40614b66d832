
/*
 * The tree is keyed by a fast, non-cryptographic hash of the token's last
 * bytes (its signature's: they differ from token to token); an entry
 * matches only when the whole token is byte for byte the same, so a token
 * made to collide with a verified one gains nothing.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_http_tenant_jwt_cache.h"


static uint32_t ngx_http_tenant_jwt_cache_hash(ngx_str_t *token);
static ngx_int_t ngx_http_tenant_jwt_cache_cmp(ngx_str_t *token,
    void *rules, ngx_http_tenant_jwt_cached_t *c);
static void ngx_http_tenant_jwt_cache_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);


ngx_http_tenant_jwt_cache_t *
ngx_http_tenant_jwt_cache_create(ngx_pool_t *pool, ngx_uint_t max)
{
    ngx_http_tenant_jwt_cache_t  *cache;

    cache = ngx_pcalloc(pool, sizeof(ngx_http_tenant_jwt_cache_t));
    if (cache == NULL) {
        return NULL;
    }

    ngx_rbtree_init(&cache->tree, &cache->sentinel,
                    ngx_http_tenant_jwt_cache_insert);
    ngx_queue_init(&cache->lru);
    cache->max = max;

    return cache;
}


void
ngx_http_tenant_jwt_cache_destroy(ngx_http_tenant_jwt_cache_t *cache)
{
    ngx_queue_t  *q;

    while (!ngx_queue_empty(&cache->lru)) {
        q = ngx_queue_head(&cache->lru);
        ngx_http_tenant_jwt_cache_remove(cache,
                     ngx_queue_data(q, ngx_http_tenant_jwt_cached_t, queue));
    }
}


ngx_http_tenant_jwt_cached_t *
ngx_http_tenant_jwt_cache_find(ngx_http_tenant_jwt_cache_t *cache,
    ngx_str_t *token, void *rules)
{
    uint32_t                       hash;
    ngx_int_t                      rc;
    ngx_rbtree_node_t             *node, *sentinel;
    ngx_http_tenant_jwt_cached_t  *c;

    hash = ngx_http_tenant_jwt_cache_hash(token);

    node = cache->tree.root;
    sentinel = cache->tree.sentinel;

    while (node != sentinel) {

        if (hash != node->key) {
            node = (hash < node->key) ? node->left : node->right;
            continue;
        }

        c = (ngx_http_tenant_jwt_cached_t *) node;

        rc = ngx_http_tenant_jwt_cache_cmp(token, rules, c);

        if (rc == 0) {
            ngx_queue_remove(&c->queue);
            ngx_queue_insert_head(&cache->lru, &c->queue);
            return c;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


ngx_http_tenant_jwt_cached_t *
ngx_http_tenant_jwt_cache_add(ngx_http_tenant_jwt_cache_t *cache,
    ngx_str_t *token, void *rules, ngx_str_t *tenant, ngx_str_t *sub,
    ngx_str_t *subject)
{
    u_char                        *p;
    ngx_queue_t                   *q;
    ngx_http_tenant_jwt_cached_t  *c;

    if (cache->n >= cache->max && !ngx_queue_empty(&cache->lru)) {
        q = ngx_queue_last(&cache->lru);
        ngx_http_tenant_jwt_cache_remove(cache,
                     ngx_queue_data(q, ngx_http_tenant_jwt_cached_t, queue));
    }

    c = ngx_alloc(offsetof(ngx_http_tenant_jwt_cached_t, data) + token->len
                  + tenant->len + sub->len + subject->len, ngx_cycle->log);
    if (c == NULL) {
        return NULL;
    }

    c->rules = rules;
    c->approved = 0;
    c->approved_at = 0;

    p = c->data;
    c->token.data = p;
    c->token.len = token->len;
    p = ngx_cpymem(p, token->data, token->len);
    c->tenant.data = p;
    c->tenant.len = tenant->len;
    p = ngx_cpymem(p, tenant->data, tenant->len);
    c->sub.data = p;
    c->sub.len = sub->len;
    p = ngx_cpymem(p, sub->data, sub->len);
    c->subject.data = p;
    c->subject.len = subject->len;
    ngx_memcpy(p, subject->data, subject->len);

    c->node.key = ngx_http_tenant_jwt_cache_hash(token);

    ngx_rbtree_insert(&cache->tree, &c->node);
    ngx_queue_insert_head(&cache->lru, &c->queue);
    cache->n++;

    return c;
}


void
ngx_http_tenant_jwt_cache_remove(ngx_http_tenant_jwt_cache_t *cache,
    ngx_http_tenant_jwt_cached_t *c)
{
    ngx_rbtree_delete(&cache->tree, &c->node);
    ngx_queue_remove(&c->queue);
    cache->n--;
    ngx_free(c);
}


#define NGX_HTTP_TENANT_JWT_CACHE_HASHED  64

static uint32_t
ngx_http_tenant_jwt_cache_hash(ngx_str_t *token)
{
    size_t  n;

    n = ngx_min(token->len, NGX_HTTP_TENANT_JWT_CACHE_HASHED);

    return ngx_murmur_hash2(token->data + token->len - n, n);
}


/* entries of one hash ordered by rules, then token: lengths first */

static ngx_int_t
ngx_http_tenant_jwt_cache_cmp(ngx_str_t *token, void *rules,
    ngx_http_tenant_jwt_cached_t *c)
{
    if (rules != c->rules) {
        return ((uintptr_t) rules < (uintptr_t) c->rules) ? -1 : 1;
    }

    if (token->len != c->token.len) {
        return (token->len < c->token.len) ? -1 : 1;
    }

    return ngx_memcmp(token->data, c->token.data, token->len);
}


static void
ngx_http_tenant_jwt_cache_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t             **p;
    ngx_http_tenant_jwt_cached_t   *c;

    c = (ngx_http_tenant_jwt_cached_t *) node;

    for ( ;; ) {
        if (node->key != temp->key) {
            p = (node->key < temp->key) ? &temp->left : &temp->right;

        } else {
            p = (ngx_http_tenant_jwt_cache_cmp(&c->token, c->rules,
                              (ngx_http_tenant_jwt_cached_t *) temp) < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}
