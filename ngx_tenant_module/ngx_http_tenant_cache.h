
/*
 * The shared-memory tenant cache, keyed by normalised host.
 */


#ifndef _NGX_HTTP_TENANT_CACHE_H_INCLUDED_
#define _NGX_HTTP_TENANT_CACHE_H_INCLUDED_


#include "ngx_http_tenant_module.h"


typedef struct ngx_http_tenant_node_s  ngx_http_tenant_node_t;


/* registry query time, ms: 1, 5, 25, 100, 1000 and more */
#define NGX_HTTP_TENANT_REGISTRY_BUCKETS  6


typedef struct {
    /*
     * A hash index: one probe per lookup, where a tree walked about twenty
     * nodes scattered over the zone (measured: 0.72x stock nginx's req/s
     * at 1M tenants with the tree, for the same instruction count).
     */
    ngx_http_tenant_node_t        **buckets;
    ngx_uint_t                      nbuckets;    /* a power of two */
    ngx_queue_t                     queue;       /* CLOCK: newest first */

    /*
     * An entry is valid while its stamp equals generation plus the version
     * of its tenant's slot: bumping the generation invalidates everything,
     * bumping a slot invalidates one tenant (and the few sharing its slot),
     * both in O(1).  Both only grow, so the sum changes on either bump.
     */
    uint32_t                        generation;
    uint32_t                        nslots;      /* a power of two */
    uint32_t                       *slots;

    uint32_t                        serial;
    ngx_atomic_t                    entries;

    ngx_atomic_t                    hits;
    ngx_atomic_t                    misses;
    ngx_atomic_t                    stale;
    ngx_atomic_t                    evictions;
    ngx_atomic_t                    zone_full;
    ngx_atomic_t                    notifications;

    /* registry look-ups (ngx_http_tenant_lookup.c), for tenant_metrics */
    ngx_atomic_t                    queries;
    ngx_atomic_t                    query_errors;   /* no answer, or SQL's */
    ngx_atomic_t                    query_ms;       /* sum */
    ngx_atomic_t                    query_buckets[NGX_HTTP_TENANT_REGISTRY_BUCKETS];
    ngx_atomic_t                    listener_connects;

    /*
     * Propagation: the listener's own notifications, timed from the query
     * that sends one to its arrival (ngx_http_tenant_listen.c); same
     * buckets as the look-ups', in microseconds.
     */
    ngx_atomic_t                    probes_sent;
    ngx_atomic_t                    probes_received;
    ngx_atomic_t                    probe_us;       /* sum */
    ngx_atomic_t                    probe_last_us;
    ngx_atomic_t                    probe_buckets[NGX_HTTP_TENANT_REGISTRY_BUCKETS];

    /* the one LISTEN connection of this nginx instance (ngx_http_tenant_listen.c) */
    ngx_atomic_t                    listener_pid;    /* claimed by */
    ngx_atomic_t                    listener_ready;  /* LISTENing: pid */
    ngx_atomic_t                    handover;        /* exiting owner's pid */
    ngx_atomic_t                    configs;         /* configurations loaded */
} ngx_http_tenant_cache_sh_t;


typedef struct {
    size_t                          size;
    size_t                          free;
    ngx_uint_t                      entries;
    ngx_uint_t                      generation;
} ngx_http_tenant_cache_usage_t;


struct ngx_http_tenant_cache_s {
    ngx_http_tenant_cache_sh_t     *sh;
    ngx_slab_pool_t                *shpool;
    time_t                          ttl;
    time_t                          negative_ttl;
    time_t                          max_stale;
    ngx_atomic_uint_t               config;     /* this cycle's, see configs */
};


/* results of ngx_http_tenant_cache_get() */
#define NGX_HTTP_TENANT_CACHE_FRESH      0
#define NGX_HTTP_TENANT_CACHE_OLD        1   /* expired: refresh it */
#define NGX_HTTP_TENANT_CACHE_ABSENT     2


ngx_int_t ngx_http_tenant_cache_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
ngx_int_t ngx_http_tenant_cache_get(ngx_http_tenant_cache_t *cache,
    ngx_str_t *host, ngx_pool_t *pool, ngx_http_tenant_record_t *rec,
    void **node, uint32_t *serial, time_t *age);
ngx_int_t ngx_http_tenant_cache_put(ngx_http_tenant_cache_t *cache,
    ngx_str_t *host, ngx_str_t *tenant, ngx_http_tenant_record_t *rec,
    void **node, uint32_t *serial);

ngx_int_t ngx_http_tenant_cache_purge_host(ngx_http_tenant_cache_t *cache,
    ngx_str_t *host);
void ngx_http_tenant_cache_purge_tenant(ngx_http_tenant_cache_t *cache,
    ngx_str_t *tenant);
void ngx_http_tenant_cache_purge_all(ngx_http_tenant_cache_t *cache);
void ngx_http_tenant_cache_usage(ngx_http_tenant_cache_t *cache,
    ngx_http_tenant_cache_usage_t *u);

/* balancer state kept in the entry so every worker shares it */
ngx_int_t ngx_http_tenant_cache_pick(ngx_http_tenant_cache_t *cache,
    void *node, uint32_t serial, uint64_t tried, ngx_uint_t max_fails,
    time_t fail_timeout);
void ngx_http_tenant_cache_mark(ngx_http_tenant_cache_t *cache, void *node,
    uint32_t serial, ngx_uint_t i, ngx_uint_t failed, time_t fail_timeout);


#endif /* _NGX_HTTP_TENANT_CACHE_H_INCLUDED_ */
