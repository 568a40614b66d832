
/*
 * Per-tenant traffic in shared memory, kept across reloads.  Each tenant
 * seen lately has a node (in a hash index by its id's crc32: one probe,
 * where a tree walked some fourteen nodes scattered over the zone and cost
 * 4% of a worker's time at 10,000 tenants; and an LRU queue, as limit_req
 * keeps its keys) holding its limits' state; the first
 * "series=" of them also have counters of their own, and the rest add up
 * in one "other" series, so a scrape stays bounded whatever the number of
 * tenants.  A node's series goes back to "other" (its counts folded in, so
 * every sum only grows) when the node is dropped, or when its tenant has
 * been idle for series_idle= and a tenant without a series is seen: the
 * series follow the tenants seen lately, not the first ones.
 *
 * The zone's lock is held to find a node and apply its limits, never
 * across I/O; counters are atomic adds.  A request in flight pins its node
 * (refs), and each worker notes the nodes it pins in its journal, so the
 * counts a killed worker held are given back by the worker that replaces
 * it.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_tenant_traffic.h"
#include "ngx_http_tenant_conf.h"


/* a node unseen this long goes, unless it counts a quota */
#define NGX_HTTP_TENANT_TRAFFIC_IDLE  600000


/*
 * A monthly quota's state, made for a node once its tenant has a quota:
 * this edge's counts, how much of them the registry has, and the other
 * edges' (and earlier lives') counts it answered with.
 */
typedef struct {
    ngx_queue_t                     dirty;     /* in sh->dirty, if queued */
    ngx_uint_t                      queued;
    void                           *node;
    ngx_uint_t                      month;
    ngx_atomic_t                    requests;
    ngx_atomic_t                    bytes;
    uint64_t                        sent_requests;
    uint64_t                        sent_bytes;
    uint64_t                        inflight_requests;  /* being sent */
    uint64_t                        inflight_bytes;
    uint64_t                        base_requests;
    uint64_t                        base_bytes;
} ngx_http_tenant_quota_t;


typedef struct ngx_http_tenant_tnode_s  ngx_http_tenant_tnode_t;

struct ngx_http_tenant_tnode_s {
    ngx_http_tenant_tnode_t        *next;      /* in its bucket */
    uint32_t                        hash;
    u_char                          len;
    u_char                          quota;     /* keep its month's counts */
    u_char                          reserved;
    uint32_t                        series;    /* index + 1, 0: "other" */
    ngx_queue_t                     queue;
    ngx_msec_t                      last;      /* rate: last admitted */
    ngx_msec_t                      seen;
    ngx_int_t                       excess;    /* rate: x1000 */
    ngx_atomic_t                    active;    /* admitted ones */
    ngx_http_tenant_quota_t        *q;         /* kept until the node goes */
    /*
     * Kept when the node is made again for another tenant: a worker that
     * pins it without the lock may still count itself in refs, and learns
     * from gen that the node is no longer the one it remembered.
     */
    ngx_atomic_t                    gen;
    ngx_atomic_t                    refs;      /* requests holding it */
    u_char                          id[NGX_HTTP_TENANT_ID_MAX];
};


/* an index bucket per this much of the zone: about one node each */
#define NGX_HTTP_TENANT_TRAFFIC_NODE  256


static ngx_int_t ngx_http_tenant_traffic_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_int_t ngx_http_tenant_traffic_pin(ngx_http_tenant_traffic_t *tt,
    ngx_http_tenant_record_t *record, uint64_t key, ngx_msec_t now,
    ngx_uint_t enforce, ngx_http_tenant_tnode_t **node);
static ngx_http_tenant_traffic_memo_t *ngx_http_tenant_traffic_memo(
    ngx_http_tenant_traffic_t *tt, uint64_t key, ngx_uint_t add);
static ngx_http_tenant_tnode_t *ngx_http_tenant_traffic_node(
    ngx_http_tenant_traffic_t *tt, ngx_str_t *id, uint32_t hash,
    ngx_msec_t now);
static ngx_uint_t ngx_http_tenant_traffic_unpinned(
    ngx_http_tenant_tnode_t *tn);
static void ngx_http_tenant_traffic_expire(ngx_http_tenant_traffic_t *tt,
    ngx_msec_t now, ngx_uint_t force);
static void ngx_http_tenant_traffic_drop(ngx_http_tenant_traffic_t *tt,
    ngx_http_tenant_tnode_t *tn);
static ngx_uint_t ngx_http_tenant_traffic_limit(ngx_http_tenant_traffic_t *tt,
    ngx_http_tenant_tnode_t *tn,
    ngx_http_tenant_limits_t *limits, ngx_msec_t now, time_t *retry_after);
static void ngx_http_tenant_traffic_fold(ngx_http_tenant_counters_t *from,
    ngx_http_tenant_counters_t *to);
static void ngx_http_tenant_traffic_sum(ngx_http_tenant_traffic_t *tt,
    ngx_http_tenant_proc_counts_t *sum);
static void ngx_http_tenant_traffic_release(ngx_http_tenant_traffic_t *tt,
    ngx_http_tenant_tnode_t *tn, ngx_uint_t admitted);
static void ngx_http_tenant_traffic_reclaim(ngx_http_tenant_traffic_t *tt,
    ngx_http_tenant_proc_t *proc);
static ngx_uint_t ngx_http_tenant_month(ngx_http_tenant_traffic_t *tt,
    time_t *left);
static void ngx_http_tenant_traffic_series_want(ngx_http_tenant_traffic_t *tt,
    ngx_http_tenant_tnode_t *tn, ngx_msec_t now);
static void ngx_http_tenant_traffic_series_give(ngx_http_tenant_traffic_t *tt,
    ngx_http_tenant_tnode_t *tn);
static void ngx_http_tenant_traffic_series_take(ngx_http_tenant_traffic_t *tt,
    ngx_http_tenant_tnode_t *tn);
static ngx_http_tenant_tnode_t *ngx_http_tenant_traffic_find(
    ngx_http_tenant_traffic_t *tt, u_char *id, size_t len, uint32_t hash);
static void ngx_http_tenant_traffic_quota_month(ngx_http_tenant_quota_t *q,
    ngx_uint_t month);


/*
 * Ids are short (NGX_HTTP_TENANT_ID_MAX): FNV-1a and a final mix, so the
 * low bits the buckets and the memo take depend on every byte, and a byte
 * loop, cost less than crc32 and a call to memcmp.  64 bits, because the
 * memo tells tenants apart by this alone (two of a million tenants share
 * one with a chance of about 3 in 10^8); the buckets take the low 32.
 */

static ngx_inline uint64_t
ngx_http_tenant_traffic_hash(u_char *id, size_t len)
{
    size_t    i;
    uint64_t  h;

    h = 0xcbf29ce484222325ULL;

    for (i = 0; i < len; i++) {
        h = (h ^ id[i]) * 0x100000001b3ULL;
    }

    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;

    return h;
}


static ngx_inline ngx_uint_t
ngx_http_tenant_traffic_same(ngx_http_tenant_tnode_t *tn, u_char *id,
    size_t len)
{
    size_t  i;

    if (tn->len != len) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (tn->id[i] != id[i]) {
            return 0;
        }
    }

    return 1;
}


/* own: a process's own counter, which no other process writes */

static ngx_inline void
ngx_http_tenant_traffic_add(ngx_atomic_t *counter, ngx_atomic_int_t n,
    ngx_uint_t own)
{
    if (own) {
        *counter += n;
        return;
    }

    (void) ngx_atomic_fetch_add(counter, n);
}


/* counts that go on in the zone's "other": every sum only grows */

static void
ngx_http_tenant_traffic_fold(ngx_http_tenant_counters_t *from,
    ngx_http_tenant_counters_t *to)
{
    ngx_uint_t     i;
    ngx_atomic_t  *f, *t;

    f = (ngx_atomic_t *) from;
    t = (ngx_atomic_t *) to;

    for (i = 0; i < sizeof(ngx_http_tenant_counters_t) / sizeof(ngx_atomic_t);
         i++)
    {
        (void) ngx_atomic_fetch_add(&t[i], f[i]);
    }
}


/* tenant_traffic_zone name:size [series=N] [series_idle=TIME] [sync=TIME|off] */

char *
ngx_http_tenant_traffic_zone(ngx_conf_t *cf, ngx_str_t *value, void *tag,
    ngx_shm_zone_t **zone)
{
    ssize_t                     size;
    ngx_int_t                   n;
    ngx_str_t                   name, s;
    ngx_uint_t                  i, nseries;
    ngx_msec_t                  sync, idle;
    ngx_http_tenant_traffic_t  *tt;

    if (ngx_http_tenant_conf_zone(cf, &value[1], 8 * ngx_pagesize, &name,
                                  &size)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    nseries = 1000;
    sync = 10000;
    idle = 60000;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "series=", 7) == 0) {
            n = ngx_atoi(value[i].data + 7, value[i].len - 7);

            if (n == NGX_ERROR || n > NGX_HTTP_TENANT_SERIES_MAX) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\": series=0..%d",
                                   &value[i], NGX_HTTP_TENANT_SERIES_MAX);
                return NGX_CONF_ERROR;
            }

            nseries = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "series_idle=", 12) == 0) {
            s.data = value[i].data + 12;
            s.len = value[i].len - 12;

            idle = ngx_parse_time(&s, 0);

            if (idle == (ngx_msec_t) NGX_ERROR || idle < 1000) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\": series_idle= a time of "
                                   "1s or more (default 1m)", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "sync=", 5) == 0) {
            s.data = value[i].data + 5;
            s.len = value[i].len - 5;

            if (s.len == 3 && ngx_strncmp(s.data, "off", 3) == 0) {
                sync = 0;
                continue;
            }

            sync = ngx_parse_time(&s, 0);

            if (sync == (ngx_msec_t) NGX_ERROR || sync < 100) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\": sync=off or a time "
                                   "of 100ms or more (default 10s)",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\", expected series=N, "
                           "series_idle=TIME or sync=TIME", &value[i]);
        return NGX_CONF_ERROR;
    }

    tt = ngx_pcalloc(cf->pool, sizeof(ngx_http_tenant_traffic_t));
    if (tt == NULL) {
        return NGX_CONF_ERROR;
    }

    tt->nseries = nseries;
    tt->sync = sync;
    tt->series_idle = idle;
    /* seen that stale at most: a sixth of series_idle=, and 10 s */
    tt->touch = ngx_min(idle / 6, 10000);

    /* the series come on top of the size given for the tenants */
    size += ngx_align(nseries * sizeof(ngx_http_tenant_series_t),
                      ngx_pagesize) + 2 * ngx_pagesize;

    *zone = ngx_shared_memory_add(cf, &name, size, tag);
    if (*zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if ((*zone)->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is already used", &name);
        return NGX_CONF_ERROR;
    }

    (*zone)->init = ngx_http_tenant_traffic_init_zone;
    (*zone)->data = tt;
    (*zone)->noreuse = 0;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_tenant_traffic_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_tenant_traffic_t  *ott = data;

    size_t                      len;
    ngx_uint_t                  i;
    ngx_http_tenant_traffic_t  *tt;

    tt = shm_zone->data;

    if (ott) {
        /* a reload: counts go on, as Prometheus expects of a counter */

        if (ott->nseries != tt->nseries) {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "tenant_traffic_zone \"%V\": series= cannot change "
                          "on a reload (was %ui); give the zone a new name",
                          &shm_zone->shm.name, ott->nseries);
            return NGX_ERROR;
        }

        tt->sh = ott->sh;
        tt->shpool = ott->shpool;
        tt->sh->series_idle = tt->series_idle;
        return NGX_OK;
    }

    tt->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        tt->sh = tt->shpool->data;
        return NGX_OK;
    }

    tt->sh = ngx_slab_calloc(tt->shpool, sizeof(ngx_http_tenant_traffic_sh_t));
    if (tt->sh == NULL) {
        return NGX_ERROR;
    }

    tt->shpool->data = tt->sh;

    ngx_queue_init(&tt->sh->queue);
    ngx_queue_init(&tt->sh->dirty);
    ngx_queue_init(&tt->sh->series_queue);

    tt->sh->nbuckets = 64;

    while (tt->sh->nbuckets * NGX_HTTP_TENANT_TRAFFIC_NODE
           < shm_zone->shm.size)
    {
        tt->sh->nbuckets <<= 1;
    }

    tt->sh->buckets = ngx_slab_calloc(tt->shpool,
                                      tt->sh->nbuckets * sizeof(void *));
    if (tt->sh->buckets == NULL) {
        return NGX_ERROR;
    }

    tt->sh->nseries = tt->nseries;
    tt->sh->series_idle = tt->series_idle;

    if (tt->nseries) {
        tt->sh->series = ngx_slab_calloc(tt->shpool,
                                         tt->nseries
                                         * sizeof(ngx_http_tenant_series_t));
        if (tt->sh->series == NULL) {
            return NGX_ERROR;
        }

        for (i = 0; i < tt->nseries; i++) {
            tt->sh->series[i].next = (i + 1 < tt->nseries) ? i + 2 : 0;
        }

        tt->sh->free = 1;
    }

    len = sizeof(" in tenant traffic zone \"\"") + shm_zone->shm.name.len;

    tt->shpool->log_ctx = ngx_slab_alloc(tt->shpool, len);
    if (tt->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(tt->shpool->log_ctx, " in tenant traffic zone \"%V\"%Z",
                &shm_zone->shm.name);

    tt->shpool->log_nomem = 0;

    return NGX_OK;
}


/*
 * Gives back what the workers that died (a crash, a kill) still held,
 * and takes a place in the process table for this one.
 */

ngx_int_t
ngx_http_tenant_traffic_init_process(ngx_cycle_t *cycle,
    ngx_http_tenant_traffic_t *tt)
{
    size_t                   memo;
    ngx_uint_t               i, size;
    ngx_http_tenant_proc_t  *proc;

    size = 2 * cycle->connection_n;

    tt->free = ngx_palloc(cycle->pool, size * sizeof(ngx_uint_t));
    if (tt->free == NULL) {
        return NGX_ERROR;
    }

    /* a set to a cache line */
    memo = 2 * NGX_HTTP_TENANT_TRAFFIC_MEMO
           * sizeof(ngx_http_tenant_traffic_memo_t);

    tt->memo = ngx_pmemalign(cycle->pool, memo, 64);
    if (tt->memo == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(tt->memo, memo);

    ngx_shmtx_lock(&tt->shpool->mutex);

    tt->proc = NULL;

    for (i = 0; i < NGX_HTTP_TENANT_PROCS; i++) {
        proc = &tt->sh->procs[i];

        if (proc->pid && kill((ngx_pid_t) proc->pid, 0) == -1
            && ngx_errno == NGX_ESRCH)
        {
            ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                          "tenant: giving back the requests process %P "
                          "held when it died", (ngx_pid_t) proc->pid);

            ngx_http_tenant_traffic_reclaim(tt, proc);
        }

        if (proc->pid == 0 && tt->proc == NULL) {
            /*
             * Pages, or a chunk aligned to its power-of-two size: no other
             * process writes to the cache lines of these counts.
             */
            proc->counts = ngx_slab_calloc_locked(tt->shpool,
                               sizeof(ngx_http_tenant_proc_counts_t)
                               + size * sizeof(uintptr_t));
            if (proc->counts) {
                proc->journal = (uintptr_t *) (proc->counts + 1);
                proc->pid = ngx_pid;
                proc->size = size;
                tt->proc = proc;
            }
        }
    }

    ngx_shmtx_unlock(&tt->shpool->mutex);

    if (tt->proc == NULL) {
        ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                      "tenant: no journal in the traffic zone for this "
                      "worker: should it die, its requests in flight stay "
                      "counted as active");
        tt->nfree = 0;
        return NGX_OK;
    }

    for (i = 0; i < size; i++) {
        tt->free[i] = size - 1 - i;
    }

    tt->nfree = size;

    return NGX_OK;
}


void
ngx_http_tenant_traffic_exit_process(ngx_http_tenant_traffic_t *tt)
{
    if (tt->proc == NULL) {
        return;
    }

    ngx_shmtx_lock(&tt->shpool->mutex);
    ngx_http_tenant_traffic_reclaim(tt, tt->proc);
    ngx_shmtx_unlock(&tt->shpool->mutex);

    tt->proc = NULL;
}


static void
ngx_http_tenant_traffic_reclaim(ngx_http_tenant_traffic_t *tt,
    ngx_http_tenant_proc_t *proc)
{
    uintptr_t                 v;
    ngx_uint_t                i, j;
    ngx_http_tenant_tnode_t  *tn;

    for (j = 0; j < proc->size; j++) {
        v = proc->journal[j];

        if (v == 0) {
            continue;
        }

        tn = (ngx_http_tenant_tnode_t *) (v & ~(uintptr_t) 1);
        ngx_http_tenant_traffic_release(tt, tn, v & 1);
    }

    /* its requests in flight went with it: its active is not added */

    ngx_http_tenant_traffic_fold(&proc->counts->other, &tt->sh->other);

    for (i = 0; i < NGX_HTTP_TENANT_CACHE_STATUSES; i++) {
        (void) ngx_atomic_fetch_add(&tt->sh->routed[i],
                                    proc->counts->routed[i]);
    }

    ngx_slab_free_locked(tt->shpool, proc->counts);

    proc->counts = NULL;
    proc->journal = NULL;
    proc->size = 0;
    proc->pid = 0;
}


/*
 * Finds (or makes) the tenant's node, pins it for the request and, with
 * enforce, applies its limits.  A request refused still pins the node, to
 * be counted as refused.
 */

ngx_int_t
ngx_http_tenant_traffic_admit(ngx_http_tenant_traffic_t *tt,
    ngx_http_tenant_ctx_t *ctx, ngx_uint_t enforce, time_t *retry_after)
{
    time_t                           left;
    uint32_t                         hash;
    uint64_t                         key;
    uintptr_t                        v;
    ngx_msec_t                       now;
    ngx_uint_t                       refused, i, quota;
    ngx_http_tenant_tnode_t         *tn;
    ngx_http_tenant_traffic_memo_t  *m;

    if (ctx->traffic || ctx->admitted) {
        /* again, after an internal redirect: the first answer holds */
        return ctx->refused ? NGX_BUSY : NGX_OK;
    }

    if (ctx->record.id.len == 0
        || ctx->record.id.len > NGX_HTTP_TENANT_ID_MAX)
    {
        return NGX_OK;
    }

    now = ngx_current_msec;
    key = ngx_http_tenant_traffic_hash(ctx->record.id.data, ctx->record.id.len);
    hash = (uint32_t) key;

    if (ngx_http_tenant_traffic_pin(tt, &ctx->record, key, now, enforce, &tn)
        == NGX_OK)
    {
        refused = NGX_HTTP_TENANT_REFUSED_NONE;

        if (tn) {
            (void) ngx_atomic_fetch_add(&tn->active, 1);
        }

        goto admitted;
    }

    ngx_shmtx_lock(&tt->shpool->mutex);

    tn = ngx_http_tenant_traffic_node(tt, &ctx->record.id, hash, now);

    if (tn == NULL) {
        ngx_shmtx_unlock(&tt->shpool->mutex);

        /* counted in "other", and limited by nothing: the zone is full */
        (void) ngx_atomic_fetch_add(&tt->sh->full, 1);
        return NGX_OK;
    }

    quota = (ctx->record.limits.requests || ctx->record.limits.bytes);

    if (quota && tn->q == NULL) {
        tn->q = ngx_slab_calloc_locked(tt->shpool,
                                       sizeof(ngx_http_tenant_quota_t));
        if (tn->q == NULL) {
            /* counted, not limited by its quota: the zone is full */
            (void) ngx_atomic_fetch_add(&tt->sh->full, 1);
            quota = 0;

        } else {
            tn->q->node = tn;
            tn->q->month = ngx_http_tenant_month(tt, &left);
        }
    }

    tn->quota = (u_char) quota;

    /* the registry hears of its counts, and answers the others' */
    if (quota && !tn->q->queued) {
        ngx_queue_insert_tail(&tt->sh->dirty, &tn->q->dirty);
        tn->q->queued = 1;
    }

    refused = enforce ? ngx_http_tenant_traffic_limit(tt, tn,
                                                      &ctx->record.limits,
                                                      now, retry_after)
                      : NGX_HTTP_TENANT_REFUSED_NONE;

    (void) ngx_atomic_fetch_add(&tn->refs, 1);

    if (refused == NGX_HTTP_TENANT_REFUSED_NONE) {
        /* under the lock: the next request's connection limit sees it */
        (void) ngx_atomic_fetch_add(&tn->active, 1);
    }

    /* gen, series and the epoch move only under the lock */
    m = ngx_http_tenant_traffic_memo(tt, key, 1);
    m->node = tn;
    m->gen = (uint32_t) tn->gen;
    m->series = tn->series;
    m->seen = (uint32_t) now;
    m->epoch = (uint32_t) tt->sh->series_epoch;

    ngx_shmtx_unlock(&tt->shpool->mutex);

admitted:

    v = (uintptr_t) tn;

    if (refused == NGX_HTTP_TENANT_REFUSED_NONE) {
        if (tt->proc) {
            tt->proc->counts->active++;

        } else {
            (void) ngx_atomic_fetch_add(&tt->sh->active, 1);
        }

        ctx->admitted = 1;
        v |= 1;
    }

    /* this worker's own: a worker reads another's only once it is dead */
    if (tn && tt->nfree) {
        i = tt->free[--tt->nfree];
        tt->proc->journal[i] = v;
        ctx->journal = i + 1;
    }

    ctx->traffic = tn;
    ctx->refused = refused;

    return (refused == NGX_HTTP_TENANT_REFUSED_NONE) ? NGX_OK : NGX_BUSY;
}


/*
 * The tenant's place in this worker's memo, or NULL; with add, a place
 * for it in any case: its own, or the older of the set's two, the newer
 * moving there.
 */

static ngx_http_tenant_traffic_memo_t *
ngx_http_tenant_traffic_memo(ngx_http_tenant_traffic_t *tt, uint64_t key,
    ngx_uint_t add)
{
    ngx_http_tenant_traffic_memo_t  *set;

    set = &tt->memo[(key & (NGX_HTTP_TENANT_TRAFFIC_MEMO - 1)) * 2];

    if (set[0].key == key && set[0].node) {
        return &set[0];
    }

    if (set[1].key == key && set[1].node) {
        return &set[1];
    }

    if (!add) {
        return NULL;
    }

    set[1] = set[0];
    set[0].key = key;

    return &set[0];
}


/*
 * Without the lock, if the request needs nothing the lock guards (no limit
 * to apply, no quota to keep, no move in the queue, due every tt->touch):
 * NGX_OK, and in *node the tenant's node, pinned, when it has a series
 * of its own; NULL when it has none (its counts go to "other", which needs
 * no node, so none is read).  NGX_DECLINED: the locked way.
 */

static ngx_int_t
ngx_http_tenant_traffic_pin(ngx_http_tenant_traffic_t *tt,
    ngx_http_tenant_record_t *record, uint64_t key, ngx_msec_t now,
    ngx_uint_t enforce, ngx_http_tenant_tnode_t **node)
{
    ngx_http_tenant_tnode_t         *tn;
    ngx_http_tenant_limits_t        *limits;
    ngx_http_tenant_traffic_memo_t  *m;

    limits = &record->limits;

    if (limits->requests || limits->bytes
        || (enforce && (limits->conns || limits->rate)))
    {
        return NGX_DECLINED;
    }

    m = ngx_http_tenant_traffic_memo(tt, key, 0);

    if (m == NULL || (uint32_t) now - m->seen >= (uint32_t) tt->touch) {
        return NGX_DECLINED;
    }

    if (m->series == 0) {
        /*
         * Still without a series if none was given since: a series given
         * moves the epoch first.  A node dropped meanwhile is no matter:
         * without one, the tenant's counts go to "other" too.
         */
        if (m->epoch != (uint32_t) tt->sh->series_epoch) {
            return NGX_DECLINED;
        }

        *node = NULL;
        return NGX_OK;
    }

    tn = m->node;

    /*
     * Counted in refs first, then gen read: whatever drops the node or
     * takes its series moves gen first, then reads refs, so one of the
     * two sees the other.  A node dropped stays a node (made again only
     * as one), so the count lands in a node's refs either way.
     */

    (void) ngx_atomic_fetch_add(&tn->refs, 1);

    if ((uint32_t) tn->gen != m->gen
        || tn->quota
        || !ngx_http_tenant_traffic_same(tn, record->id.data, record->id.len))
    {
        (void) ngx_atomic_fetch_add(&tn->refs, -1);
        return NGX_DECLINED;
    }

    *node = tn;

    return NGX_OK;
}


/*
 * Under the lock: whether no request holds the node, made sure against a
 * worker pinning it without the lock at this moment (see above).  Its
 * gen moves, so every worker forgets the node: called only when the node
 * is to go or to lose its series.
 */

static ngx_uint_t
ngx_http_tenant_traffic_unpinned(ngx_http_tenant_tnode_t *tn)
{
    if (tn->refs) {
        return 0;
    }

    (void) ngx_atomic_fetch_add(&tn->gen, 1);

    return (tn->refs == 0);
}


/* under the lock */

static ngx_http_tenant_tnode_t *
ngx_http_tenant_traffic_node(ngx_http_tenant_traffic_t *tt, ngx_str_t *id,
    uint32_t hash, ngx_msec_t now)
{
    ngx_uint_t                 tries;
    ngx_http_tenant_series_t  *s;
    ngx_http_tenant_tnode_t   *tn, **bucket;

    tn = ngx_http_tenant_traffic_find(tt, id->data, id->len, hash);

    if (tn) {
        /*
         * To the queue's head at most every tt->touch: the move writes to
         * two other nodes, scattered over the zone, takes the lock, and
         * idle means ten minutes (a series', series_idle=).
         */
        if ((ngx_msec_int_t) (now - tn->seen) >= (ngx_msec_int_t) tt->touch)
        {
            ngx_queue_remove(&tn->queue);
            ngx_queue_insert_head(&tt->sh->queue, &tn->queue);
            tn->seen = now;

            if (tn->series) {
                s = &tt->sh->series[tn->series - 1];
                ngx_queue_remove(&s->queue);
                ngx_queue_insert_head(&tt->sh->series_queue, &s->queue);

            } else {
                ngx_http_tenant_traffic_series_want(tt, tn, now);
            }
        }

        return tn;
    }

    ngx_http_tenant_traffic_expire(tt, now, 0);

    for (tries = 0; /* void */; tries++) {
        tn = tt->sh->spare;

        if (tn) {
            tt->sh->spare = tn->next;
            break;
        }

        tn = ngx_slab_alloc_locked(tt->shpool,
                                   sizeof(ngx_http_tenant_tnode_t));
        if (tn) {
            tn->gen = 0;
            tn->refs = 0;
        }

        if (tn || tries == 8) {
            break;
        }

        ngx_http_tenant_traffic_expire(tt, now, 1);
    }

    if (tn == NULL) {
        return NULL;
    }

    ngx_memzero(tn, offsetof(ngx_http_tenant_tnode_t, gen));

    tn->hash = hash;

    tn->len = (u_char) id->len;
    ngx_memcpy(tn->id, id->data, id->len);
    tn->last = now;
    tn->seen = now;

    ngx_http_tenant_traffic_series_want(tt, tn, now);

    /* the bucket again: an eviction above may have changed its chain */
    bucket = (ngx_http_tenant_tnode_t **) &tt->sh->buckets[hash
                                                  & (tt->sh->nbuckets - 1)];
    tn->next = *bucket;
    *bucket = tn;
    ngx_queue_insert_head(&tt->sh->queue, &tn->queue);

    tt->sh->tenants++;

    return tn;
}


/* under the lock */

static ngx_http_tenant_tnode_t *
ngx_http_tenant_traffic_find(ngx_http_tenant_traffic_t *tt, u_char *id,
    size_t len, uint32_t hash)
{
    ngx_http_tenant_tnode_t  *tn;

    for (tn = tt->sh->buckets[hash & (tt->sh->nbuckets - 1)];
         tn;
         tn = tn->next)
    {
        if (tn->hash == hash && ngx_http_tenant_traffic_same(tn, id, len))
        {
            return tn;
        }
    }

    return NULL;
}


/*
 * Drops up to two nodes unseen for NGX_HTTP_TENANT_TRAFFIC_IDLE (those
 * counting a quota are kept), or with force the least recently seen one
 * that no request holds.
 */

static void
ngx_http_tenant_traffic_expire(ngx_http_tenant_traffic_t *tt, ngx_msec_t now,
    ngx_uint_t force)
{
    ngx_uint_t                n, looked;
    ngx_queue_t              *q;
    ngx_http_tenant_tnode_t  *tn;

    n = 0;
    looked = 0;

    for (q = ngx_queue_last(&tt->sh->queue);
         q != ngx_queue_sentinel(&tt->sh->queue) && n < 2 && looked < 64;
         looked++)
    {
        tn = ngx_queue_data(q, ngx_http_tenant_tnode_t, queue);
        q = ngx_queue_prev(q);

        if (tn->refs) {
            continue;
        }

        if (force) {
            if (ngx_http_tenant_traffic_unpinned(tn)) {
                ngx_http_tenant_traffic_drop(tt, tn);
                return;
            }

            continue;
        }

        if ((ngx_msec_int_t) (now - tn->seen) < NGX_HTTP_TENANT_TRAFFIC_IDLE)
        {
            return;
        }

        if (tn->quota || !ngx_http_tenant_traffic_unpinned(tn)) {
            continue;
        }

        ngx_http_tenant_traffic_drop(tt, tn);
        n++;
    }
}


static void
ngx_http_tenant_traffic_drop(ngx_http_tenant_traffic_t *tt,
    ngx_http_tenant_tnode_t *tn)
{
    ngx_http_tenant_tnode_t    **p;

    if (tn->series) {
        ngx_http_tenant_traffic_series_take(tt, tn);
    }

    for (p = (ngx_http_tenant_tnode_t **)
             &tt->sh->buckets[tn->hash & (tt->sh->nbuckets - 1)];
         *p != tn;
         p = &(*p)->next)
    {
        /* void */
    }

    *p = tn->next;

    if (tn->q) {
        if (tn->q->queued) {
            ngx_queue_remove(&tn->q->dirty);
        }

        ngx_slab_free_locked(tt->shpool, tn->q);
    }

    ngx_queue_remove(&tn->queue);

    /* not freed: a worker may still count itself in its refs */
    tn->next = tt->sh->spare;
    tt->sh->spare = tn;

    tt->sh->tenants--;
    tt->sh->evictions++;
}


/*
 * Under the lock: a series for a tenant seen without one, free or taken
 * from the tenant seen least lately, if that one has been idle long enough
 * and holds no request (whose count would go to the wrong series).
 */

static void
ngx_http_tenant_traffic_series_want(ngx_http_tenant_traffic_t *tt,
    ngx_http_tenant_tnode_t *tn, ngx_msec_t now)
{
    ngx_http_tenant_tnode_t   *holder;
    ngx_http_tenant_series_t  *s;

    if (tt->sh->free == 0) {

        if (ngx_queue_empty(&tt->sh->series_queue)) {
            return;   /* series=0 */
        }

        s = ngx_queue_data(ngx_queue_last(&tt->sh->series_queue),
                           ngx_http_tenant_series_t, queue);
        holder = s->node;

        if (holder->refs
            || (ngx_msec_int_t) (now - holder->seen)
               < (ngx_msec_int_t) tt->sh->series_idle
            || !ngx_http_tenant_traffic_unpinned(holder))
        {
            return;
        }

        ngx_http_tenant_traffic_series_take(tt, holder);
    }

    ngx_http_tenant_traffic_series_give(tt, tn);
}


static void
ngx_http_tenant_traffic_series_give(ngx_http_tenant_traffic_t *tt,
    ngx_http_tenant_tnode_t *tn)
{
    ngx_http_tenant_series_t  *s;

    /* before the series is the tenant's: see ngx_http_tenant_traffic_pin() */
    (void) ngx_atomic_fetch_add(&tt->sh->series_epoch, 1);

    tn->series = tt->sh->free;
    s = &tt->sh->series[tn->series - 1];
    tt->sh->free = s->next;

    ngx_memzero(&s->c, sizeof(ngx_http_tenant_counters_t));
    s->node = tn;
    s->next = 0;
    s->len = tn->len;
    ngx_memcpy(s->id, tn->id, tn->len);

    ngx_queue_insert_head(&tt->sh->series_queue, &s->queue);
}


/* its counts go on in "other", so every sum only grows */

static void
ngx_http_tenant_traffic_series_take(ngx_http_tenant_traffic_t *tt,
    ngx_http_tenant_tnode_t *tn)
{
    ngx_http_tenant_series_t  *s;

    s = &tt->sh->series[tn->series - 1];

    ngx_http_tenant_traffic_fold(&s->c, &tt->sh->other);

    ngx_queue_remove(&s->queue);

    s->node = NULL;
    s->len = 0;
    s->next = tt->sh->free;
    tt->sh->free = tn->series;

    tn->series = 0;
}


/* under the lock: what refuses the request, if anything */

static ngx_uint_t
ngx_http_tenant_traffic_limit(ngx_http_tenant_traffic_t *tt,
    ngx_http_tenant_tnode_t *tn,
    ngx_http_tenant_limits_t *limits, ngx_msec_t now, time_t *retry_after)
{
    time_t                    left;
    int64_t                   excess, ms, wait;
    ngx_uint_t                month;
    ngx_http_tenant_quota_t  *q;

    q = tn->quota ? tn->q : NULL;

    if (q) {
        month = ngx_http_tenant_month(tt, &left);

        if (q->month != month) {
            ngx_http_tenant_traffic_quota_month(q, month);
        }

        if ((limits->requests
             && q->base_requests + q->requests >= limits->requests)
            || (limits->bytes && q->base_bytes + q->bytes >= limits->bytes))
        {
            *retry_after = left;
            return NGX_HTTP_TENANT_REFUSED_QUOTA;
        }
    }

    if (limits->conns && tn->active >= limits->conns) {
        *retry_after = 1;
        return NGX_HTTP_TENANT_REFUSED_CONNS;
    }

    if (limits->rate) {
        /* limit_req's leaky bucket, in thousandths of a request */

        ms = (ngx_msec_int_t) (now - tn->last);

        if (ms < 0) {
            ms = 0;
        }

        excess = tn->excess - (int64_t) limits->rate * ms / 1000 + 1000;

        if (excess < 0) {
            excess = 0;
        }

        if (excess > (int64_t) limits->burst * 1000) {
            wait = (excess - (int64_t) limits->burst * 1000) * 1000
                   / limits->rate;
            *retry_after = (time_t) ngx_max((wait + 999) / 1000, 1);
            return NGX_HTTP_TENANT_REFUSED_RATE;
        }

        tn->excess = excess;
        tn->last = now;
    }

    return NGX_HTTP_TENANT_REFUSED_NONE;
}


/* a new month: the counts start again, here and in the registry */

static void
ngx_http_tenant_traffic_quota_month(ngx_http_tenant_quota_t *q,
    ngx_uint_t month)
{
    q->month = month;
    q->requests = 0;
    q->bytes = 0;
    q->sent_requests = 0;
    q->sent_bytes = 0;
    q->inflight_requests = 0;
    q->inflight_bytes = 0;
    q->base_requests = 0;
    q->base_bytes = 0;
}


/*
 * The month since 1970 (UTC), and the seconds left in it; worked out once
 * a month by each worker, not for every request.
 */

static ngx_uint_t
ngx_http_tenant_month(ngx_http_tenant_traffic_t *tt, time_t *left)
{
    time_t      now;
    ngx_tm_t    tm;
    ngx_uint_t  days, mon, year;

    static ngx_uint_t  mdays[] = { 31, 28, 31, 30, 31, 30,
                                   31, 31, 30, 31, 30, 31 };

    now = ngx_time();

    if (now >= tt->month_start && now < tt->month_end) {
        *left = tt->month_end - now;
        return tt->month;
    }

    ngx_gmtime(now, &tm);

    /* ngx_gmtime(): the month 1-12, the year in full */
    mon = tm.ngx_tm_mon;
    year = tm.ngx_tm_year;

    days = mdays[mon - 1];

    if (mon == 2 && year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)) {
        days = 29;
    }

    tt->month_start = now - (time_t) (tm.ngx_tm_mday - 1) * 86400
                      - now % 86400;
    tt->month_end = tt->month_start + (time_t) days * 86400;
    tt->month = (year - 1970) * 12 + mon - 1;

    *left = tt->month_end - now;

    return tt->month;
}


/* the log phase: counts the request and unpins its node */

void
ngx_http_tenant_traffic_count(ngx_http_tenant_traffic_t *tt,
    ngx_http_request_t *r, ngx_http_tenant_ctx_t *ctx)
{
    off_t                           in, out;
    ngx_uint_t                      i, status, ms, own;
    ngx_http_tenant_tnode_t        *tn;
    ngx_http_upstream_state_t      *state;
    ngx_http_tenant_counters_t     *c;
    ngx_http_tenant_proc_counts_t  *pc;

    static ngx_uint_t  bounds[] = { 5, 25, 100, 500, 2500 };

    pc = tt->proc ? tt->proc->counts : NULL;

    if (pc) {
        pc->routed[ctx->cache_status]++;

    } else {
        (void) ngx_atomic_fetch_add(&tt->sh->routed[ctx->cache_status], 1);
    }

    if (ctx->record.id.len == 0) {
        return;
    }

    tn = ctx->traffic;

    /* a series is shared by every worker; "other" is this worker's own */

    if (tn && tn->series) {
        c = &tt->sh->series[tn->series - 1].c;
        own = 0;

    } else if (pc) {
        c = &pc->other;
        own = 1;

    } else {
        c = &tt->sh->other;
        own = 0;
    }

    status = r->headers_out.status;

    if (status >= 100 && status < 600) {
        ngx_http_tenant_traffic_add(&c->requests[status / 100 - 1], 1, own);
    }

    in = r->request_length;
    out = r->connection->sent;

    ngx_http_tenant_traffic_add(&c->bytes_in, in, own);
    ngx_http_tenant_traffic_add(&c->bytes_out, out, own);
    ngx_http_tenant_traffic_add(&c->cache[ctx->cache_status], 1, own);

    if (ctx->refused) {
        ngx_http_tenant_traffic_add(&c->refused[ctx->refused], 1, own);
    }

    if (r->upstream_states && r->upstream_states->nelts) {
        state = r->upstream_states->elts;
        ms = 0;

        for (i = 0; i < r->upstream_states->nelts; i++) {
            if (state[i].status) {
                ms += state[i].response_time;
            }
        }

        for (i = 0; i < NGX_HTTP_TENANT_UPSTREAM_BUCKETS - 1; i++) {
            if (ms <= bounds[i]) {
                break;
            }
        }

        ngx_http_tenant_traffic_add(&c->upstream[i], 1, own);
        ngx_http_tenant_traffic_add(&c->upstream_ms, ms, own);
    }

    if (tn && ctx->admitted && tn->quota && tn->q) {
        (void) ngx_atomic_fetch_add(&tn->q->requests, 1);
        (void) ngx_atomic_fetch_add(&tn->q->bytes, in + out);
    }

    if (ctx->journal) {
        tt->proc->journal[ctx->journal - 1] = 0;
        tt->free[tt->nfree++] = ctx->journal - 1;
        ctx->journal = 0;
    }

    if (ctx->admitted) {
        if (pc) {
            pc->active--;

        } else {
            (void) ngx_atomic_fetch_add(&tt->sh->active, -1);
        }
    }

    if (tn) {
        ngx_http_tenant_traffic_release(tt, tn, ctx->admitted);
    }

    ctx->traffic = NULL;
    ctx->admitted = 0;
}


/* the node's part: the edge's active is the caller's */

static void
ngx_http_tenant_traffic_release(ngx_http_tenant_traffic_t *tt,
    ngx_http_tenant_tnode_t *tn, ngx_uint_t admitted)
{
    if (admitted) {
        (void) ngx_atomic_fetch_add(&tn->active, -1);
    }

    (void) ngx_atomic_fetch_add(&tn->refs, -1);
}


/*
 * Takes up to max tenants' counts the registry has not seen (rows has room
 * for max), each marked in flight until ngx_http_tenant_traffic_usage_done().
 * A tenant stays queued, behind the others, while it has requests in
 * flight (their counts come later) and for one sync after its last counts:
 * the registry's answers meanwhile keep the other edges' share of its
 * quota current here.  An idle tenant costs no sync.
 */

ngx_int_t
ngx_http_tenant_traffic_usage(ngx_http_tenant_traffic_t *tt,
    ngx_array_t *rows, ngx_uint_t max)
{
    u_char                       *p;
    ngx_queue_t                  *qu, *kept;
    ngx_http_tenant_quota_t      *q;
    ngx_http_tenant_tnode_t      *tn;
    ngx_http_tenant_usage_row_t  *row;

    p = ngx_pnalloc(rows->pool, max * NGX_HTTP_TENANT_ID_MAX);
    if (p == NULL) {
        return NGX_ERROR;
    }

    kept = NULL;

    ngx_shmtx_lock(&tt->shpool->mutex);

    while (rows->nelts < max && !ngx_queue_empty(&tt->sh->dirty)) {
        qu = ngx_queue_head(&tt->sh->dirty);

        if (qu == kept) {
            break;
        }

        q = ngx_queue_data(qu, ngx_http_tenant_quota_t, dirty);
        tn = q->node;

        /* the array was made big enough: no allocation under the lock */
        row = ngx_array_push(rows);

        row->id.data = p;
        row->id.len = tn->len;
        p = ngx_cpymem(p, tn->id, tn->len);
        row->month = q->month;
        row->requests = q->requests - q->sent_requests;
        row->bytes = q->bytes - q->sent_bytes;

        q->inflight_requests = row->requests;
        q->inflight_bytes = row->bytes;

        ngx_queue_remove(qu);

        if (tn->refs || row->requests || row->bytes) {
            ngx_queue_insert_tail(&tt->sh->dirty, qu);

            if (kept == NULL) {
                kept = qu;
            }

        } else {
            q->queued = 0;
        }
    }

    ngx_shmtx_unlock(&tt->shpool->mutex);

    return NGX_OK;
}


/*
 * The registry's totals (totals NULL: no answer) for the rows sent.  A row
 * it did not answer for is a tenant it no longer has; rows without an
 * answer at all are sent again.  An answer that was lost after its commit
 * counts those requests twice: a quota errs on the side of the platform.
 */

void
ngx_http_tenant_traffic_usage_done(ngx_http_tenant_traffic_t *tt,
    ngx_array_t *sent, ngx_array_t *totals)
{
    uint32_t                      hash;
    ngx_uint_t                    i;
    ngx_http_tenant_quota_t      *q;
    ngx_http_tenant_tnode_t      *tn;
    ngx_http_tenant_usage_row_t  *row;

    ngx_shmtx_lock(&tt->shpool->mutex);

    if (totals) {
        row = totals->elts;

        for (i = 0; i < totals->nelts; i++) {
            hash = (uint32_t) ngx_http_tenant_traffic_hash(row[i].id.data,
                                                           row[i].id.len);
            tn = ngx_http_tenant_traffic_find(tt, row[i].id.data,
                                              row[i].id.len, hash);

            if (tn == NULL || tn->q == NULL || tn->q->month != row[i].month) {
                continue;
            }

            q = tn->q;

            q->sent_requests += q->inflight_requests;
            q->sent_bytes += q->inflight_bytes;
            q->inflight_requests = 0;
            q->inflight_bytes = 0;

            q->base_requests = (row[i].requests > q->sent_requests)
                               ? row[i].requests - q->sent_requests : 0;
            q->base_bytes = (row[i].bytes > q->sent_bytes)
                            ? row[i].bytes - q->sent_bytes : 0;
        }
    }

    row = sent->elts;

    for (i = 0; i < sent->nelts; i++) {
        hash = (uint32_t) ngx_http_tenant_traffic_hash(row[i].id.data,
                                                       row[i].id.len);
        tn = ngx_http_tenant_traffic_find(tt, row[i].id.data, row[i].id.len,
                                          hash);

        if (tn == NULL || tn->q == NULL) {
            continue;
        }

        q = tn->q;

        if (totals) {
            q->sent_requests += q->inflight_requests;
            q->sent_bytes += q->inflight_bytes;

        } else if (!q->queued) {
            ngx_queue_insert_head(&tt->sh->dirty, &q->dirty);
            q->queued = 1;
        }

        q->inflight_requests = 0;
        q->inflight_bytes = 0;
    }

    ngx_shmtx_unlock(&tt->shpool->mutex);
}


/* a consistent copy of every series in use, and of "other" */

ngx_int_t
ngx_http_tenant_traffic_copy(ngx_http_tenant_traffic_t *tt, ngx_pool_t *pool,
    ngx_array_t *series, ngx_http_tenant_series_copy_t *other)
{
    u_char                         *p;
    ngx_uint_t                      i, active;
    ngx_http_tenant_tnode_t        *tn;
    ngx_http_tenant_series_t       *s;
    ngx_http_tenant_proc_counts_t   sum;
    ngx_http_tenant_series_copy_t  *sc;

    if (ngx_array_init(series, pool, tt->sh->nseries ? tt->sh->nseries : 1,
                       sizeof(ngx_http_tenant_series_copy_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    p = ngx_pnalloc(pool, tt->sh->nseries * NGX_HTTP_TENANT_ID_MAX + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    active = 0;

    ngx_shmtx_lock(&tt->shpool->mutex);

    for (i = 0; i < tt->sh->nseries; i++) {
        s = &tt->sh->series[i];

        if (s->node == NULL) {
            continue;
        }

        /* the array was made big enough: no allocation under the lock */
        sc = ngx_array_push(series);

        tn = s->node;
        sc->c = s->c;
        sc->active = tn->active;
        sc->id.data = p;
        sc->id.len = s->len;
        p = ngx_cpymem(p, s->id, s->len);

        active += sc->active;
    }

    ngx_http_tenant_traffic_sum(tt, &sum);

    ngx_shmtx_unlock(&tt->shpool->mutex);

    other->c = sum.other;
    other->active = sum.active;

    /* decrements are not under the lock: never below zero */
    other->active = (other->active > active) ? other->active - active : 0;

    ngx_str_set(&other->id, "_other");

    return NGX_OK;
}


void
ngx_http_tenant_traffic_edge(ngx_http_tenant_traffic_t *tt,
    ngx_http_tenant_proc_counts_t *sum)
{
    ngx_shmtx_lock(&tt->shpool->mutex);
    ngx_http_tenant_traffic_sum(tt, sum);
    ngx_shmtx_unlock(&tt->shpool->mutex);
}


/*
 * Under the lock, which a process gone takes to add its counts to the
 * zone's: so each is in one place or the other, not both, not neither.
 * A live process's own are read as it writes them: each an aligned word.
 */

static void
ngx_http_tenant_traffic_sum(ngx_http_tenant_traffic_t *tt,
    ngx_http_tenant_proc_counts_t *sum)
{
    ngx_uint_t                      i, j;
    ngx_atomic_t                   *from, *to;
    ngx_http_tenant_proc_counts_t  *pc;

    sum->other = tt->sh->other;
    sum->active = tt->sh->active;

    for (i = 0; i < NGX_HTTP_TENANT_CACHE_STATUSES; i++) {
        sum->routed[i] = tt->sh->routed[i];
    }

    to = (ngx_atomic_t *) &sum->other;

    for (i = 0; i < NGX_HTTP_TENANT_PROCS; i++) {
        pc = tt->sh->procs[i].counts;

        if (pc == NULL) {
            continue;
        }

        from = (ngx_atomic_t *) &pc->other;

        for (j = 0;
             j < sizeof(ngx_http_tenant_counters_t) / sizeof(ngx_atomic_t);
             j++)
        {
            to[j] += from[j];
        }

        for (j = 0; j < NGX_HTTP_TENANT_CACHE_STATUSES; j++) {
            sum->routed[j] += pc->routed[j];
        }

        sum->active += pc->active;
    }
}
