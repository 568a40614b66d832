
/*
 * The shared-memory tenant cache: slab, a hash index keyed by the host's
 * crc32, and a CLOCK queue (second-chance LRU).  A hit writes one byte of
 * its own entry, where moving it to the head of an LRU list wrote three
 * entries scattered over the zone.  Entries are packed (under 128 bytes for
 * a tenant with one endpoint) because platforms cache millions of hosts.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_tenant_cache.h"
#include "ngx_http_tenant_entry.h"


struct ngx_http_tenant_node_s {
    ngx_http_tenant_node_t         *next;        /* in its bucket */
    ngx_queue_t                     queue;
    uint32_t                        hash;
    uint32_t                        expire;
    uint32_t                        stamp;
    uint32_t                        serial;
    uint32_t                        slot;
    u_char                          state;       /* status | limited << 5
                                                    | hsts << 6
                                                    | role << 7 */
    u_char                          id_off;      /* see ngx_http_tenant_id() */
    u_char                          nendpoints;
    u_char                          id_len;
    u_char                          blueprint_len;
    u_char                          referenced;  /* CLOCK: hit since looked at */
    u_short                         host_len;
    u_char                          data[1];     /* host, id, blueprint, eps */
};



/*
 * The tenant id is nearly always part of the host ("acme" in
 * "acme.shop.example.com"): then only its offset in the host is kept, which
 * keeps a typical entry within a 128-byte slab slot.  NGX_HTTP_TENANT_ID_OWN
 * means the id is stored after the host.
 */
#define NGX_HTTP_TENANT_ID_OWN  0xff

#define ngx_http_tenant_id(tn)                                               \
    ((tn)->id_off == NGX_HTTP_TENANT_ID_OWN                                  \
     ? (tn)->data + (tn)->host_len : (tn)->data + (tn)->id_off)

#define ngx_http_tenant_id_size(tn)                                          \
    ((tn)->id_off == NGX_HTTP_TENANT_ID_OWN ? (tn)->id_len : 0)

#define ngx_http_tenant_blueprint(tn)                                        \
    ((tn)->data + (tn)->host_len + ngx_http_tenant_id_size(tn))

/*
 * Most tenants have no limits: only those that do carry them, after the
 * strings and before the endpoints.
 */
#define NGX_HTTP_TENANT_LIMITED  0x20

#define ngx_http_tenant_limits(tn)                                           \
    ((tn)->data + ngx_http_tenant_align4((tn)->host_len                      \
                                         + ngx_http_tenant_id_size(tn)       \
                                         + (tn)->blueprint_len))

#define ngx_http_tenant_limits_size(tn)                                      \
    (((tn)->state & NGX_HTTP_TENANT_LIMITED)                                 \
     ? sizeof(ngx_http_tenant_limits_t) : 0)

/* endpoints are packed back to back, each followed by its address */
#define ngx_http_tenant_next_ep(nep)                                         \
    ((ngx_http_tenant_node_ep_t *) ((u_char *) ((nep) + 1)                   \
                                    + ngx_http_tenant_align4((nep)->addr_len)))

#define ngx_http_tenant_slot(cache, t)                                       \
    (ngx_crc32_short((t)->data, (t)->len) & ((cache)->sh->nslots - 1))

#define ngx_http_tenant_stamp(cache, slot)                                   \
    ((cache)->sh->generation + (cache)->sh->slots[slot])


static ngx_http_tenant_node_t *ngx_http_tenant_cache_find(
    ngx_http_tenant_cache_t *cache, ngx_str_t *host, uint32_t hash);
static void ngx_http_tenant_cache_delete(ngx_http_tenant_cache_t *cache,
    ngx_http_tenant_node_t *tn);
static ngx_http_tenant_node_ep_t *ngx_http_tenant_node_eps(
    ngx_http_tenant_node_t *tn);


ngx_int_t
ngx_http_tenant_cache_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_tenant_cache_t  *ocache = data;

    size_t                    len;
    ngx_http_tenant_cache_t  *cache;

    cache = shm_zone->data;

    if (ocache) {
        /* reload: keep the warm cache of the previous cycle */
        cache->sh = ocache->sh;
        cache->shpool = ocache->shpool;

        /* tells an exiting listener that newer workers will take over */
        cache->config = ngx_atomic_fetch_add(&cache->sh->configs, 1) + 1;
        return NGX_OK;
    }

    cache->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        cache->sh = cache->shpool->data;
        return NGX_OK;
    }

    cache->sh = ngx_slab_alloc(cache->shpool,
                               sizeof(ngx_http_tenant_cache_sh_t));
    if (cache->sh == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(cache->sh, sizeof(ngx_http_tenant_cache_sh_t));

    cache->shpool->data = cache->sh;

    cache->sh->configs = 1;
    cache->config = 1;

    /* one bucket per 256 bytes of zone: about one entry per bucket */

    cache->sh->nbuckets = 1024;

    while (cache->sh->nbuckets * 2 * 256 <= shm_zone->shm.size) {
        cache->sh->nbuckets *= 2;
    }

    cache->sh->buckets = ngx_slab_calloc(cache->shpool, cache->sh->nbuckets
                                         * sizeof(ngx_http_tenant_node_t *));
    if (cache->sh->buckets == NULL) {
        return NGX_ERROR;
    }

    ngx_queue_init(&cache->sh->queue);

    cache->sh->generation = 1;

    /* about one slot per 512 bytes of zone: few tenants share a slot */

    cache->sh->nslots = 64;

    while (cache->sh->nslots < (1 << 20)
           && (size_t) cache->sh->nslots * 2 * 512 <= shm_zone->shm.size)
    {
        cache->sh->nslots *= 2;
    }

    cache->sh->slots = ngx_slab_calloc(cache->shpool,
                                       cache->sh->nslots * sizeof(uint32_t));
    if (cache->sh->slots == NULL) {
        return NGX_ERROR;
    }

    len = sizeof(" in tenant cache zone \"\"") + shm_zone->shm.name.len;

    cache->shpool->log_ctx = ngx_slab_alloc(cache->shpool, len);
    if (cache->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(cache->shpool->log_ctx, " in tenant cache zone \"%V\"%Z",
                &shm_zone->shm.name);

    cache->shpool->log_nomem = 0;

    return NGX_OK;
}


ngx_int_t
ngx_http_tenant_cache_get(ngx_http_tenant_cache_t *cache, ngx_str_t *host,
    ngx_pool_t *pool, ngx_http_tenant_record_t *rec, void **node,
    uint32_t *serial, time_t *age)
{
    u_char                      *p;
    time_t                       now;
    uint32_t                     hash;
    ngx_int_t                    rc;
    ngx_uint_t                   i;
    ngx_http_tenant_node_t      *tn;
    ngx_http_tenant_node_ep_t   *nep;
    ngx_http_tenant_endpoint_t  *ep;

    hash = ngx_crc32_short(host->data, host->len);
    now = ngx_time();

    ngx_shmtx_lock(&cache->shpool->mutex);

    tn = ngx_http_tenant_cache_find(cache, host, hash);

    if (tn == NULL) {
        ngx_shmtx_unlock(&cache->shpool->mutex);
        return NGX_HTTP_TENANT_CACHE_ABSENT;
    }

    if (!tn->referenced) {
        tn->referenced = 1;
    }

    rc = NGX_HTTP_TENANT_CACHE_FRESH;

    if ((time_t) tn->expire <= now
        || tn->stamp != ngx_http_tenant_stamp(cache, tn->slot))
    {
        rc = NGX_HTTP_TENANT_CACHE_OLD;
    }

    *age = now - (time_t) tn->expire;
    *node = tn;
    *serial = tn->serial;

    rec->nendpoints = tn->nendpoints;

    rec->status = tn->state & 0x1f;
    rec->hsts = (tn->state >> 6) & 1;
    rec->role = tn->state >> 7;

    p = ngx_pnalloc(pool, tn->id_len + tn->blueprint_len);
    if (p == NULL) {
        goto failed;
    }

    rec->id.len = tn->id_len;
    rec->id.data = p;
    p = ngx_cpymem(p, ngx_http_tenant_id(tn), tn->id_len);

    rec->blueprint.len = tn->blueprint_len;
    rec->blueprint.data = p;
    ngx_memcpy(p, ngx_http_tenant_blueprint(tn), tn->blueprint_len);

    if (tn->state & NGX_HTTP_TENANT_LIMITED) {
        ngx_memcpy(&rec->limits, ngx_http_tenant_limits(tn),
                   sizeof(ngx_http_tenant_limits_t));

    } else {
        ngx_memzero(&rec->limits, sizeof(ngx_http_tenant_limits_t));
    }

    rec->endpoints = NULL;

    if (tn->nendpoints) {
        rec->endpoints = ngx_palloc(pool, tn->nendpoints
                                          * sizeof(ngx_http_tenant_endpoint_t));
        if (rec->endpoints == NULL) {
            goto failed;
        }

        nep = ngx_http_tenant_node_eps(tn);

        for (i = 0; i < tn->nendpoints; i++) {
            ep = &rec->endpoints[i];

            if (ngx_http_tenant_addr_unpack(pool, nep, ep) != NGX_OK) {
                goto failed;
            }

            nep = ngx_http_tenant_next_ep(nep);
        }
    }

    ngx_shmtx_unlock(&cache->shpool->mutex);

    return rc;

failed:

    ngx_shmtx_unlock(&cache->shpool->mutex);

    return NGX_ERROR;
}


/* tenant names the slot of a negative entry (the pattern's tenant) */

ngx_int_t
ngx_http_tenant_cache_put(ngx_http_tenant_cache_t *cache, ngx_str_t *host,
    ngx_str_t *tenant, ngx_http_tenant_record_t *rec, void **node,
    uint32_t *serial)
{
    u_char                       buf[NGX_HTTP_TENANT_MAX_ENDPOINTS]
                                    [NGX_HTTP_TENANT_ADDR_MAX];
    u_char                       family[NGX_HTTP_TENANT_MAX_ENDPOINTS];
    u_char                       id_off, *p;
    size_t                       size, id_size;
    size_t                       alen[NGX_HTTP_TENANT_MAX_ENDPOINTS];
    time_t                       ttl;
    u_char                       limited;
    uint32_t                     hash;
    ngx_uint_t                   i, n, tries, spared;
    ngx_queue_t                 *q;
    ngx_http_tenant_node_t      *tn, *old, *victim, **bucket;
    ngx_http_tenant_node_ep_t   *nep;

    if (rec->id.len > 255 || rec->blueprint.len > 255) {
        return NGX_ERROR;
    }

    n = ngx_min(rec->nendpoints, NGX_HTTP_TENANT_MAX_ENDPOINTS);

    id_off = NGX_HTTP_TENANT_ID_OWN;
    id_size = rec->id.len;

    if (rec->id.len) {
        p = ngx_strlcasestrn(host->data, host->data + host->len,
                             rec->id.data, rec->id.len - 1);

        if (p && p - host->data < NGX_HTTP_TENANT_ID_OWN) {
            id_off = (u_char) (p - host->data);
            id_size = 0;
        }
    }

    size = offsetof(ngx_http_tenant_node_t, data)
           + ngx_http_tenant_align4(host->len + id_size + rec->blueprint.len);

    limited = (rec->limits.rate || rec->limits.conns || rec->limits.requests
               || rec->limits.bytes) ? NGX_HTTP_TENANT_LIMITED : 0;

    if (limited) {
        size += sizeof(ngx_http_tenant_limits_t);
    }

    for (i = 0; i < n; i++) {
        alen[i] = ngx_http_tenant_addr_pack(buf[i], &rec->endpoints[i],
                                            &family[i]);
        if (alen[i] == 0) {
            return NGX_ERROR;
        }

        size += sizeof(ngx_http_tenant_node_ep_t)
                + ngx_http_tenant_align4(alen[i]);
    }

    hash = ngx_crc32_short(host->data, host->len);

    ngx_shmtx_lock(&cache->shpool->mutex);

    old = ngx_http_tenant_cache_find(cache, host, hash);
    if (old) {
        ngx_http_tenant_cache_delete(cache, old);
    }

    /*
     * Evict until the new entry fits: the oldest first, unless it was hit
     * since the hand last passed it (then it goes back to the head).
     */

    spared = 0;

    for (tries = 0; /* void */; tries++) {
        tn = ngx_slab_alloc_locked(cache->shpool, size);
        if (tn) {
            break;
        }

        if (tries == 256 || ngx_queue_empty(&cache->sh->queue)) {
            cache->sh->zone_full++;
            ngx_shmtx_unlock(&cache->shpool->mutex);
            return NGX_DECLINED;
        }

        for ( ;; ) {
            q = ngx_queue_last(&cache->sh->queue);
            victim = ngx_queue_data(q, ngx_http_tenant_node_t, queue);

            if (!victim->referenced || spared++ >= 4096) {
                break;
            }

            victim->referenced = 0;
            ngx_queue_remove(q);
            ngx_queue_insert_head(&cache->sh->queue, q);
        }

        ngx_http_tenant_cache_delete(cache, victim);
        cache->sh->evictions++;
    }

    tn->hash = hash;
    tn->referenced = 0;

    ttl = (rec->status == NGX_HTTP_TENANT_UNKNOWN) ? cache->negative_ttl
                                                    : cache->ttl;

    tn->state = (u_char) (rec->status | limited | (rec->hsts ? 0x40 : 0)
                          | (rec->role << 7));
    tn->id_off = id_off;
    tn->nendpoints = (u_char) n;
    tn->id_len = (u_char) rec->id.len;
    tn->blueprint_len = (u_char) rec->blueprint.len;
    tn->host_len = (u_short) host->len;
    tn->expire = (uint32_t) (ngx_time() + ttl);
    tn->slot = ngx_http_tenant_slot(cache, rec->id.len ? &rec->id : tenant);
    tn->stamp = ngx_http_tenant_stamp(cache, tn->slot);

    /* 0 marks a deleted entry for the balancer */
    if (++cache->sh->serial == 0) {
        cache->sh->serial = 1;
    }

    tn->serial = cache->sh->serial;

    ngx_memcpy(ngx_cpymem(ngx_cpymem(tn->data, host->data, host->len),
                          rec->id.data, id_size),
               rec->blueprint.data, rec->blueprint.len);

    if (limited) {
        ngx_memcpy(ngx_http_tenant_limits(tn), &rec->limits,
                   sizeof(ngx_http_tenant_limits_t));
    }

    nep = ngx_http_tenant_node_eps(tn);

    for (i = 0; i < n; i++) {
        nep->current_weight = 0;
        nep->checked = 0;
        nep->fails = 0;
        nep->weight = (u_char) ngx_min(rec->endpoints[i].weight, 255);
        nep->family = family[i];
        nep->addr_len = (u_short) alen[i];
        nep->reserved = 0;

        ngx_memcpy(nep + 1, buf[i], alen[i]);

        nep = ngx_http_tenant_next_ep(nep);
    }

    bucket = &cache->sh->buckets[hash & (cache->sh->nbuckets - 1)];
    tn->next = *bucket;
    *bucket = tn;

    ngx_queue_insert_head(&cache->sh->queue, &tn->queue);
    cache->sh->entries++;

    *node = tn;
    *serial = tn->serial;

    ngx_shmtx_unlock(&cache->shpool->mutex);

    return NGX_OK;
}


ngx_int_t
ngx_http_tenant_cache_purge_host(ngx_http_tenant_cache_t *cache,
    ngx_str_t *host)
{
    ngx_http_tenant_node_t  *tn;

    ngx_shmtx_lock(&cache->shpool->mutex);

    tn = ngx_http_tenant_cache_find(cache, host,
                                    ngx_crc32_short(host->data, host->len));
    if (tn) {
        ngx_http_tenant_cache_delete(cache, tn);
    }

    ngx_shmtx_unlock(&cache->shpool->mutex);

    return tn ? NGX_OK : NGX_DECLINED;
}


/*
 * Entries of the tenant become invalid, not freed: they are refreshed on
 * their next request, and still serve if the registry fails then.
 */

void
ngx_http_tenant_cache_purge_tenant(ngx_http_tenant_cache_t *cache,
    ngx_str_t *tenant)
{
    ngx_shmtx_lock(&cache->shpool->mutex);
    cache->sh->slots[ngx_http_tenant_slot(cache, tenant)]++;
    ngx_shmtx_unlock(&cache->shpool->mutex);
}


void
ngx_http_tenant_cache_purge_all(ngx_http_tenant_cache_t *cache)
{
    ngx_shmtx_lock(&cache->shpool->mutex);
    cache->sh->generation++;
    ngx_shmtx_unlock(&cache->shpool->mutex);
}


void
ngx_http_tenant_cache_usage(ngx_http_tenant_cache_t *cache,
    ngx_http_tenant_cache_usage_t *u)
{
    ngx_shmtx_lock(&cache->shpool->mutex);

    u->size = cache->shpool->end - (u_char *) cache->shpool;
    u->free = cache->shpool->pfree << ngx_pagesize_shift;
    u->entries = cache->sh->entries;
    u->generation = cache->sh->generation;

    ngx_shmtx_unlock(&cache->shpool->mutex);
}


/*
 * Smooth weighted round robin (as ngx_http_upstream_round_robin.c) with
 * max_fails/fail_timeout; returns the endpoint index, or NGX_BUSY when every
 * endpoint is tried or failed, or NGX_DECLINED when the entry changed since
 * the request copied it and the caller should fall back to its own copy.
 */

ngx_int_t
ngx_http_tenant_cache_pick(ngx_http_tenant_cache_t *cache, void *node,
    uint32_t serial, uint64_t tried, ngx_uint_t max_fails,
    time_t fail_timeout)
{
    time_t                      now;
    int32_t                     total;
    ngx_int_t                   best;
    ngx_uint_t                  i, pass;
    ngx_http_tenant_node_t     *tn = node;
    ngx_http_tenant_node_ep_t  *nep, *bep;

    now = ngx_time();
    best = NGX_BUSY;
    bep = NULL;
    total = 0;

    ngx_shmtx_lock(&cache->shpool->mutex);

    if (tn->serial != serial) {
        ngx_shmtx_unlock(&cache->shpool->mutex);
        return NGX_DECLINED;
    }

    /*
     * The first pass skips endpoints marked failed.  If every untried one
     * is marked, the marks are cleared and the second pass takes them all,
     * as nginx's round robin does "for quick recovery": a backend reload
     * that drops cached keepalive connections can mark every endpoint at
     * once, and must not cost fail_timeout seconds of 502s.
     */

    for (pass = 0; pass < 2 && bep == NULL; pass++) {

        nep = ngx_http_tenant_node_eps(tn);

        for (i = 0; i < tn->nendpoints; i++) {

            if (pass == 1) {
                nep->fails = 0;
            }

            if (!(tried & ((uint64_t) 1 << i))
                && !(pass == 0 && max_fails && nep->fails >= max_fails
                     && now - (time_t) nep->checked <= fail_timeout))
            {
                nep->current_weight += nep->weight;
                total += nep->weight;

                if (bep == NULL || nep->current_weight > bep->current_weight)
                {
                    bep = nep;
                    best = i;
                }
            }

            nep = ngx_http_tenant_next_ep(nep);
        }
    }

    if (bep) {
        bep->current_weight -= total;

        if (now - (time_t) bep->checked > fail_timeout) {
            bep->checked = (uint32_t) now;
        }
    }

    ngx_shmtx_unlock(&cache->shpool->mutex);

    return best;
}


void
ngx_http_tenant_cache_mark(ngx_http_tenant_cache_t *cache, void *node,
    uint32_t serial, ngx_uint_t idx, ngx_uint_t failed, time_t fail_timeout)
{
    time_t                      now;
    ngx_uint_t                  i;
    ngx_http_tenant_node_t     *tn = node;
    ngx_http_tenant_node_ep_t  *nep;

    now = ngx_time();

    ngx_shmtx_lock(&cache->shpool->mutex);

    if (tn->serial != serial || idx >= tn->nendpoints) {
        ngx_shmtx_unlock(&cache->shpool->mutex);
        return;
    }

    nep = ngx_http_tenant_node_eps(tn);

    for (i = 0; i < idx; i++) {
        nep = ngx_http_tenant_next_ep(nep);
    }

    if (failed) {
        if (now - (time_t) nep->checked > fail_timeout) {
            nep->fails = 0;
        }

        if (nep->fails < 0xffff) {
            nep->fails++;
        }

        nep->checked = (uint32_t) now;

    } else if (nep->fails) {
        nep->fails = 0;
    }

    ngx_shmtx_unlock(&cache->shpool->mutex);
}


static ngx_http_tenant_node_t *
ngx_http_tenant_cache_find(ngx_http_tenant_cache_t *cache, ngx_str_t *host,
    uint32_t hash)
{
    ngx_http_tenant_node_t  *tn;

    for (tn = cache->sh->buckets[hash & (cache->sh->nbuckets - 1)];
         tn;
         tn = tn->next)
    {
        if (tn->hash == hash && tn->host_len == host->len
            && ngx_memcmp(tn->data, host->data, host->len) == 0)
        {
            return tn;
        }
    }

    return NULL;
}


static void
ngx_http_tenant_cache_delete(ngx_http_tenant_cache_t *cache,
    ngx_http_tenant_node_t *tn)
{
    ngx_http_tenant_node_t  **p;

    for (p = &cache->sh->buckets[tn->hash & (cache->sh->nbuckets - 1)];
         *p;
         p = &(*p)->next)
    {
        if (*p == tn) {
            *p = tn->next;
            break;
        }
    }

    /* a balancer holding this entry's address sees the serial change */
    tn->serial = 0;

    ngx_queue_remove(&tn->queue);
    ngx_slab_free_locked(cache->shpool, tn);

    cache->sh->entries--;
}


static ngx_http_tenant_node_ep_t *
ngx_http_tenant_node_eps(ngx_http_tenant_node_t *tn)
{
    return (ngx_http_tenant_node_ep_t *)
               (ngx_http_tenant_limits(tn) + ngx_http_tenant_limits_size(tn));
}
