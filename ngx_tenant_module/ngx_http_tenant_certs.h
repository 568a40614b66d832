
/*
 * The certificates the edge serves, in shared memory: DER chain and key by
 * host name, loaded from the registry and kept current by its
 * notifications.
 */


#ifndef _NGX_HTTP_TENANT_CERTS_H_INCLUDED_
#define _NGX_HTTP_TENANT_CERTS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include "tenant_seal.h"


typedef struct {
    ngx_rbtree_t                    rbtree;
    ngx_rbtree_node_t               sentinel;
    ngx_atomic_t                    count;
    ngx_atomic_t                    bytes;      /* the entries' own */
    ngx_atomic_t                    serial;     /* of the latest write */
    ngx_atomic_t                    generation; /* of the latest full load */
    ngx_atomic_t                    loader;     /* pid of a load under way */
    ngx_atomic_t                    loads;      /* completed full loads */
    ngx_atomic_t                    refused;    /* rows that did not load */
    ngx_atomic_t                    zone_full;

    /* ACME HTTP-01 answers, by "host token" (ngx_http_tenant_acme.c) */
    ngx_rbtree_t                    acme;
    ngx_rbtree_node_t               acme_sentinel;
    ngx_atomic_t                    acme_count;
    ngx_atomic_t                    acme_generation;
} ngx_http_tenant_certs_sh_t;


typedef struct {
    ngx_http_tenant_certs_sh_t     *sh;
    ngx_slab_pool_t                *shpool;
    u_char                          key[TENANT_SEAL_KEY];
    size_t                          size;
} ngx_http_tenant_certs_t;


/* what a look-up found: the entry's name and version, and its DER */
typedef struct {
    u_char                          host[256];
    size_t                          host_len;
    u_char                          tenant[64];
    size_t                          tenant_len;
    uint32_t                        serial;
    u_char                         *chain;      /* in the caller's pool */
    size_t                          chain_len;
    u_char                         *key;
    size_t                          key_len;
} ngx_http_tenant_cert_t;


/* tenant_ssl_zone name:size key_file=path */
char *ngx_http_tenant_certs_zone(ngx_conf_t *cf, ngx_str_t *name,
    ssize_t size, ngx_str_t *key_file, ngx_shm_zone_t **zone);

/*
 * The entry for name: its own, else "*.parent"'s.  NGX_DECLINED: none.
 * With a pool the DER is copied out (for a parse); without, only the name
 * and serial (to check a parsed copy is current).
 */
ngx_int_t ngx_http_tenant_certs_find(ngx_http_tenant_certs_t *certs,
    u_char *name, size_t len, ngx_pool_t *pool, ngx_http_tenant_cert_t *out);

/* bytes of the zone's pages in use (slab rounding and its own tables in) */
size_t ngx_http_tenant_certs_used(ngx_http_tenant_certs_t *certs);

/* every row of the registry, in chunks; then what was not seen goes */
void ngx_http_tenant_certs_load(ngx_http_tenant_certs_t *certs);

/* a notification: "cert:<host>" reloads one, "cert:*" all */
void ngx_http_tenant_certs_changed(ngx_http_tenant_certs_t *certs,
    u_char *payload, size_t len);


#endif /* _NGX_HTTP_TENANT_CERTS_H_INCLUDED_ */
