
/*
 * The set of every routable host: a Bloom filter in shared memory.
 */


#ifndef _NGX_HTTP_TENANT_FILTER_H_INCLUDED_
#define _NGX_HTTP_TENANT_FILTER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


typedef struct {
    ngx_atomic_t                    active;    /* which array answers: 0, 1 */
    ngx_atomic_t                    ready;     /* it holds every host */
    ngx_atomic_t                    loader;    /* pid filling the other one */
    ngx_atomic_t                    keys;      /* loaded into the active one */
    ngx_atomic_t                    loading_keys;
    ngx_atomic_t                    skipped;   /* answered without a query */
    ngx_atomic_t                    loads;     /* completed loads */
    size_t                          words;     /* per array */
    ngx_atomic_uint_t              *array[2];
} ngx_http_tenant_filter_sh_t;


typedef struct {
    ngx_http_tenant_filter_sh_t    *sh;
    ngx_slab_pool_t                *shpool;
    size_t                          size;      /* bytes per array */
} ngx_http_tenant_filter_t;


char *ngx_http_tenant_filter_zone(ngx_conf_t *cf, ngx_str_t *value,
    ngx_shm_zone_t **zone);

/* 1: maybe present, 0: certainly absent, NGX_DECLINED: not loaded yet */
ngx_int_t ngx_http_tenant_filter_test(ngx_http_tenant_filter_t *f,
    u_char prefix, ngx_str_t *key);
void ngx_http_tenant_filter_add(ngx_http_tenant_filter_t *f, u_char prefix,
    ngx_str_t *key);

/* fills the spare array from the registry, then makes it the active one */
void ngx_http_tenant_filter_load(ngx_http_tenant_filter_t *f);


#endif /* _NGX_HTTP_TENANT_FILTER_H_INCLUDED_ */
