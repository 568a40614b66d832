
/*
 * Per-tenant traffic in shared memory: what each tenant's requests did
 * (for tenant_metrics) and what its limits allow.
 */


#ifndef _NGX_HTTP_TENANT_TRAFFIC_H_INCLUDED_
#define _NGX_HTTP_TENANT_TRAFFIC_H_INCLUDED_


#include "ngx_http_tenant_module.h"


#define NGX_HTTP_TENANT_CLASSES           5   /* 1xx .. 5xx */
/* upstream response time, ms: 5, 25, 100, 500, 2500 and more */
#define NGX_HTTP_TENANT_UPSTREAM_BUCKETS  6
#define NGX_HTTP_TENANT_CACHE_STATUSES    7   /* NGX_HTTP_TENANT_CACHE_* */
#define NGX_HTTP_TENANT_PROCS             64
#define NGX_HTTP_TENANT_SERIES_MAX        65535
#define NGX_HTTP_TENANT_ID_MAX            32

/* ctx->refused: the limit that refused a request */
#define NGX_HTTP_TENANT_REFUSED_NONE      0
#define NGX_HTTP_TENANT_REFUSED_RATE      1
#define NGX_HTTP_TENANT_REFUSED_CONNS     2
#define NGX_HTTP_TENANT_REFUSED_QUOTA     3
#define NGX_HTTP_TENANT_REFUSALS          4


typedef struct {
    ngx_atomic_t                    requests[NGX_HTTP_TENANT_CLASSES];
    ngx_atomic_t                    bytes_in;
    ngx_atomic_t                    bytes_out;
    ngx_atomic_t                    upstream[NGX_HTTP_TENANT_UPSTREAM_BUCKETS];
    ngx_atomic_t                    upstream_ms;
    ngx_atomic_t                    cache[NGX_HTTP_TENANT_CACHE_STATUSES];
    ngx_atomic_t                    refused[NGX_HTTP_TENANT_REFUSALS];
} ngx_http_tenant_counters_t;


/* a tenant with its own series; the others add up in "other" */
typedef struct {
    ngx_http_tenant_counters_t      c;
    ngx_queue_t                     queue;     /* in use: most recently seen first */
    void                           *node;      /* NULL: free */
    uint32_t                        next;      /* free list: index + 1 */
    u_char                          len;
    u_char                          id[NGX_HTTP_TENANT_ID_MAX];
} ngx_http_tenant_series_t;


/*
 * What a process counts on its own, with no atomic operation (it is the
 * only writer): "other", every request by how its host was found, and its
 * requests in flight.  Added to the zone's when the process is gone.
 */
typedef struct {
    ngx_http_tenant_counters_t      other;
    ngx_atomic_t                    routed[NGX_HTTP_TENANT_CACHE_STATUSES];
    ngx_atomic_t                    active;
} ngx_http_tenant_proc_counts_t;


/*
 * A process's counts and its requests in flight that hold a node, each
 * the node and whether it was admitted: what a worker that died holding
 * them still counted.
 */
typedef struct {
    ngx_atomic_t                    pid;
    ngx_http_tenant_proc_counts_t  *counts;    /* the journal follows */
    uintptr_t                      *journal;
    ngx_uint_t                      size;
} ngx_http_tenant_proc_t;


/*
 * A worker's memory of the tenants it counted lately, found by the id's
 * 64-bit hash in sets of two (a set is one cache line): what lets a request
 * without limits count itself without the lock, and one in "other" without
 * reading its node at all (one cache miss a request, not three).
 */
#define NGX_HTTP_TENANT_TRAFFIC_MEMO      16384   /* sets, a power of two */

typedef struct {
    void                           *node;      /* ngx_http_tenant_tnode_t */
    uint64_t                        key;       /* the id's hash */
    uint32_t                        gen;       /* the node's, when found */
    uint32_t                        series;    /* the node's, when found */
    uint32_t                        seen;      /* ngx_current_msec, then */
    uint32_t                        epoch;     /* sh->series_epoch, then */
} ngx_http_tenant_traffic_memo_t;


typedef struct {
    void                          **buckets;   /* ngx_http_tenant_tnode_t */
    void                           *spare;     /* nodes dropped, to reuse */
    ngx_uint_t                      nbuckets;  /* a power of two */
    ngx_queue_t                     queue;     /* most recently seen first */

    ngx_uint_t                      nseries;
    uint32_t                        free;      /* free list: index + 1 */
    /* moves when a series is given: a tenant remembered without one */
    ngx_atomic_t                    series_epoch;
    ngx_http_tenant_series_t       *series;
    ngx_queue_t                     series_queue;
    ngx_msec_t                      series_idle;
    ngx_http_tenant_counters_t      other;

    /*
     * Every request the tenant handler saw, by how its host was found, and
     * those in flight: of processes gone, or without a place in procs
     * (each process counts its own in procs[].counts)
     */
    ngx_atomic_t                    routed[NGX_HTTP_TENANT_CACHE_STATUSES];
    ngx_atomic_t                    active;
    ngx_atomic_t                    tenants;
    ngx_atomic_t                    evictions;
    ngx_atomic_t                    full;      /* no room for a tenant */

    ngx_http_tenant_proc_t          procs[NGX_HTTP_TENANT_PROCS];

    /* quotas: nodes whose counts the registry has not seen */
    ngx_queue_t                     dirty;
    ngx_atomic_t                    sync_pid;   /* the worker that syncs */
    ngx_atomic_t                    syncs;
    ngx_atomic_t                    sync_errors;
} ngx_http_tenant_traffic_sh_t;


typedef struct {
    ngx_http_tenant_traffic_sh_t   *sh;
    ngx_slab_pool_t                *shpool;
    ngx_uint_t                      nseries;   /* series= */
    ngx_msec_t                      sync;      /* sync=, 0: off */
    ngx_msec_t                      series_idle;
    ngx_msec_t                      touch;     /* a node's move, at most */

    /* a worker's own */
    ngx_http_tenant_proc_t         *proc;
    time_t                          month_start;   /* the current month's */
    time_t                          month_end;
    ngx_uint_t                      month;
    ngx_uint_t                     *free;      /* journal places unused */
    ngx_uint_t                      nfree;
    ngx_http_tenant_traffic_memo_t *memo;
} ngx_http_tenant_traffic_t;


/* a copy of one series, taken under the zone's lock */
typedef struct {
    ngx_http_tenant_counters_t      c;
    ngx_uint_t                      active;
    ngx_str_t                       id;
} ngx_http_tenant_series_copy_t;


char *ngx_http_tenant_traffic_zone(ngx_conf_t *cf, ngx_str_t *value,
    void *tag, ngx_shm_zone_t **zone);
ngx_int_t ngx_http_tenant_traffic_init_process(ngx_cycle_t *cycle,
    ngx_http_tenant_traffic_t *tt);
void ngx_http_tenant_traffic_exit_process(ngx_http_tenant_traffic_t *tt);

/* NGX_OK: admitted; NGX_BUSY: refused (ctx->refused says by what) */
ngx_int_t ngx_http_tenant_traffic_admit(ngx_http_tenant_traffic_t *tt,
    ngx_http_tenant_ctx_t *ctx, ngx_uint_t enforce, time_t *retry_after);
void ngx_http_tenant_traffic_count(ngx_http_tenant_traffic_t *tt,
    ngx_http_request_t *r, ngx_http_tenant_ctx_t *ctx);

/* a tenant's counts for its quota, as sent to the registry or its answer */
typedef struct {
    ngx_str_t                       id;
    ngx_uint_t                      month;     /* since January 1970 */
    uint64_t                        requests;
    uint64_t                        bytes;
} ngx_http_tenant_usage_row_t;

ngx_int_t ngx_http_tenant_traffic_usage(ngx_http_tenant_traffic_t *tt,
    ngx_array_t *rows, ngx_uint_t max);
void ngx_http_tenant_traffic_usage_done(ngx_http_tenant_traffic_t *tt,
    ngx_array_t *sent, ngx_array_t *totals);

ngx_int_t ngx_http_tenant_traffic_copy(ngx_http_tenant_traffic_t *tt,
    ngx_pool_t *pool, ngx_array_t *series, ngx_http_tenant_series_copy_t *other);
/* the edge's counts: the zone's and every process's, added up */
void ngx_http_tenant_traffic_edge(ngx_http_tenant_traffic_t *tt,
    ngx_http_tenant_proc_counts_t *sum);


#endif /* _NGX_HTTP_TENANT_TRAFFIC_H_INCLUDED_ */
