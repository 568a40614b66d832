
/*
 * Registry look-ups of hosts.  Requests for a host that is already being
 * looked up in this worker wait for that look-up instead of sending their
 * own query; the answer, positive or negative, goes into the shared cache.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_tenant_module.h"
#include "ngx_http_tenant_cache.h"
#include "ngx_http_tenant_host.h"
#include "ngx_http_tenant_lookup.h"
#include "ngx_http_tenant_pg.h"


/* a worker's look-ups in flight, and its circuit breaker */
struct ngx_http_tenant_lookups_s {
    ngx_rbtree_t                    tree;
    ngx_rbtree_node_t               sentinel;
    ngx_http_tenant_cache_t        *cache;

    /*
     * The circuit breaker: once a look-up has failed for want of an answer
     * (a registry stopped, frozen or unreachable), requests stop waiting
     * for it.  Those with an entry within max_stale are served it at once,
     * the others get the registry-down answer at once, and a single look-up
     * at a time (the probe) tests whether the registry is back; its success
     * closes the breaker.
     */
    ngx_uint_t                      breaker_open;
    ngx_uint_t                      breaker_probing;
};


struct ngx_http_tenant_lookup_s {
    ngx_str_node_t                  sn;
    ngx_http_tenant_lookups_t      *lookups;
    ngx_pool_t                     *pool;
    ngx_http_tenant_pg_query_t      query;
    ngx_queue_t                     waiters;
    ngx_uint_t                      role;
    ngx_uint_t                      probe;     /* the breaker's */
    ngx_str_t                       tenant;    /* from a host pattern */
    ngx_msec_t                      start;
};


static void ngx_http_tenant_lookup_handler(ngx_http_tenant_pg_query_t *q,
    PGresult *res);
static ngx_int_t ngx_http_tenant_lookup_parse(ngx_http_tenant_lookup_t *lk,
    PGresult *res, ngx_http_tenant_record_t *rec);
static ngx_int_t ngx_http_tenant_parse_address(ngx_pool_t *pool,
    u_char *text, size_t len, ngx_http_tenant_endpoint_t *ep);
static ngx_uint_t ngx_http_tenant_parse_status(u_char *s, size_t len);
static void ngx_http_tenant_lookup_count(ngx_http_tenant_cache_t *cache,
    ngx_msec_t ms, ngx_uint_t failed);
static void ngx_http_tenant_parse_limits(PGresult *res,
    ngx_http_tenant_limits_t *limits);
static uint64_t ngx_http_tenant_parse_limit(PGresult *res, int field,
    uint64_t max);


/*
 * Exact hosts (custom domains) win over hosts matched by a pattern; the
 * pattern's tenant and role come in as $2 and $3.
 */
static const char  ngx_http_tenant_lookup_sql[] =
    "SELECT t.id, h.role, t.status, t.blueprint, e.address, e.weight,"
    "       t.hsts, coalesce(t.rate_limit, p.rate_limit) * 1000,"
    "       coalesce(t.rate_burst, p.rate_burst),"
    "       coalesce(t.max_connections, p.max_connections),"
    "       coalesce(t.monthly_requests, p.monthly_requests),"
    "       coalesce(t.monthly_bytes, p.monthly_bytes)"
    "  FROM (SELECT tenant_id, role"
    "          FROM (SELECT tenant_id, role, 0 AS prio"
    "                  FROM tenant_hosts WHERE host = $1"
    "                UNION ALL"
    "                SELECT $2::text, $3::text, 1 WHERE $2::text <> '') c"
    "         ORDER BY prio LIMIT 1) h"
    "  JOIN tenants t ON t.id = h.tenant_id"
    "  LEFT JOIN plans p ON p.name = t.plan"
    "  LEFT JOIN tenant_endpoints e"
    "         ON e.tenant_id = t.id AND e.role = h.role"
    " ORDER BY e.id";


/* the cache is this worker's cycle's */

ngx_http_tenant_lookups_t *
ngx_http_tenant_lookup_init_process(ngx_cycle_t *cycle,
    ngx_http_tenant_cache_t *cache)
{
    ngx_http_tenant_lookups_t  *lks;

    lks = ngx_pcalloc(cycle->pool, sizeof(ngx_http_tenant_lookups_t));
    if (lks == NULL) {
        return NULL;
    }

    ngx_rbtree_init(&lks->tree, &lks->sentinel, ngx_str_rbtree_insert_value);
    lks->cache = cache;

    return lks;
}


/*
 * Returns NGX_AGAIN when the request waits for the answer, NGX_DECLINED
 * when the registry is known to be down, NGX_ERROR on failure.  The answer
 * goes to ctx->handler, from the event loop.
 */

ngx_int_t
ngx_http_tenant_lookup_start(ngx_http_tenant_lookups_t *lks,
    ngx_http_tenant_ctx_t *ctx)
{
    u_char                    *p;
    uint32_t                   hash;
    ngx_int_t                  rc;
    ngx_pool_t                *pool;
    ngx_str_node_t            *sn;
    ngx_http_tenant_lookup_t  *lk;

    if (lks->breaker_open && lks->breaker_probing) {
        return NGX_DECLINED;
    }

    hash = ngx_crc32_short(ctx->host.data, ctx->host.len);

    sn = ngx_str_rbtree_lookup(&lks->tree, &ctx->host, hash);

    if (sn) {
        if (lks->breaker_open) {
            return NGX_DECLINED;
        }

        lk = (ngx_http_tenant_lookup_t *) sn;
        goto wait;
    }

    pool = ngx_create_pool(512, ngx_cycle->log);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    lk = ngx_pcalloc(pool, sizeof(ngx_http_tenant_lookup_t));
    if (lk == NULL) {
        goto failed;
    }

    /* parameters go to libpq as NUL-terminated strings */

    p = ngx_pnalloc(pool, ctx->host.len + 1 + ctx->tenant.len + 1);
    if (p == NULL) {
        goto failed;
    }

    lk->pool = pool;
    lk->lookups = lks;
    lk->role = ctx->role;
    lk->sn.node.key = hash;
    lk->sn.str.len = ctx->host.len;
    lk->sn.str.data = p;

    lk->query.params[0] = (char *) p;
    p = ngx_cpymem(p, ctx->host.data, ctx->host.len);
    *p++ = '\0';

    lk->query.params[1] = (char *) p;
    lk->tenant.data = p;
    lk->tenant.len = ctx->tenant.len;
    p = ngx_cpymem(p, ctx->tenant.data, ctx->tenant.len);
    *p = '\0';

    lk->query.params[2] = (ctx->role == NGX_HTTP_TENANT_ROLE_ADMIN)
                          ? "admin" : "site";
    lk->query.nparams = 3;
    lk->query.sql = ngx_http_tenant_lookup_sql;
    lk->query.handler = ngx_http_tenant_lookup_handler;
    lk->query.data = lk;

    ngx_queue_init(&lk->waiters);

    lk->start = ngx_current_msec;

    rc = ngx_http_tenant_pg_send(&lk->query);

    if (rc != NGX_OK) {
        ngx_destroy_pool(pool);
        return rc;
    }

    ngx_rbtree_insert(&lks->tree, &lk->sn.node);

    if (lks->breaker_open) {
        lk->probe = 1;
        lks->breaker_probing = 1;

        /* an entry to fall back on: no need to wait for the probe */
        if (ctx->stale) {
            return NGX_DECLINED;
        }
    }

wait:

    ctx->lookup = lk;
    ctx->waiting = 1;
    ngx_queue_insert_tail(&lk->waiters, &ctx->queue);

    return NGX_AGAIN;

failed:

    ngx_destroy_pool(pool);
    return NGX_ERROR;
}


/* the request went away before the answer came */

void
ngx_http_tenant_lookup_cancel(ngx_http_tenant_ctx_t *ctx)
{
    if (ctx->lookup) {
        ngx_queue_remove(&ctx->queue);
        ctx->lookup = NULL;
        ctx->waiting = 0;
    }
}


static void
ngx_http_tenant_lookup_handler(ngx_http_tenant_pg_query_t *q, PGresult *res)
{
    void                      *node;
    uint32_t                   serial;
    ngx_int_t                  rc;
    ngx_queue_t                waiters, *qq;
    ngx_http_tenant_ctx_t      *ctx;
    ngx_http_tenant_record_t    rec;
    ngx_http_tenant_lookup_t   *lk;
    ngx_http_tenant_lookups_t  *lks;

    lk = q->data;
    lks = lk->lookups;
    node = NULL;
    serial = 0;

    ngx_rbtree_delete(&lks->tree, &lk->sn.node);

    rc = NGX_ERROR;

    if (res && PQresultStatus(res) == PGRES_TUPLES_OK) {
        rc = ngx_http_tenant_lookup_parse(lk, res, &rec);
    }

    ngx_http_tenant_lookup_count(lks->cache, ngx_current_msec - lk->start,
                                 rc != NGX_OK);

    if (lk->probe) {
        lks->breaker_probing = 0;
    }

    if (res == NULL && !lks->breaker_open) {
        lks->breaker_open = 1;
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "tenant: registry not answering: serving cached "
                      "entries without waiting, one look-up at a time "
                      "tests it");

    } else if (res != NULL && lks->breaker_open) {
        lks->breaker_open = 0;
        ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                      "tenant: registry answering again");
    }

    if (rc == NGX_OK) {
        if (ngx_http_tenant_cache_put(lks->cache, &lk->sn.str, &lk->tenant,
                                      &rec, &node, &serial)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                          "tenant: could not cache \"%V\": zone is full",
                          &lk->sn.str);
        }
    }

    /*
     * Detach the waiters first: waking one may finalize it, and its
     * cleanup must not touch a list being walked.
     */

    ngx_queue_init(&waiters);

    if (!ngx_queue_empty(&lk->waiters)) {
        waiters = lk->waiters;
        waiters.next->prev = &waiters;
        waiters.prev->next = &waiters;
        ngx_queue_init(&lk->waiters);
    }

    while (!ngx_queue_empty(&waiters)) {
        qq = ngx_queue_head(&waiters);
        ngx_queue_remove(qq);

        ctx = ngx_queue_data(qq, ngx_http_tenant_ctx_t, queue);
        ctx->lookup = NULL;
        ctx->waiting = 0;

        if (rc == NGX_OK
            && ngx_http_tenant_record_copy(ctx->request->pool, &ctx->record,
                                           &rec)
               == NGX_OK)
        {
            ctx->resolved = 1;
            ctx->failed = 0;
            ctx->node = node;
            ctx->serial = serial;

        } else {
            ctx->failed = 1;
        }

        ctx->handler(ctx);
    }

    ngx_destroy_pool(lk->pool);
}


static void
ngx_http_tenant_lookup_count(ngx_http_tenant_cache_t *cache, ngx_msec_t ms,
    ngx_uint_t failed)
{
    ngx_uint_t  i;

    static ngx_msec_t  bounds[] = { 1, 5, 25, 100, 1000 };

    for (i = 0; i < NGX_HTTP_TENANT_REGISTRY_BUCKETS - 1; i++) {
        if (ms <= bounds[i]) {
            break;
        }
    }

    (void) ngx_atomic_fetch_add(&cache->sh->query_buckets[i], 1);
    (void) ngx_atomic_fetch_add(&cache->sh->query_ms, ms);
    (void) ngx_atomic_fetch_add(&cache->sh->queries, 1);

    if (failed) {
        (void) ngx_atomic_fetch_add(&cache->sh->query_errors, 1);
    }
}


static ngx_int_t
ngx_http_tenant_lookup_parse(ngx_http_tenant_lookup_t *lk, PGresult *res,
    ngx_http_tenant_record_t *rec)
{
    int                          i, rows;
    ngx_int_t                    role, weight;
    ngx_http_tenant_endpoint_t  *ep;

    ngx_memzero(rec, sizeof(ngx_http_tenant_record_t));

    rows = PQntuples(res);

    if (rows == 0 || PQnfields(res) != 12) {
        rec->status = NGX_HTTP_TENANT_UNKNOWN;
        rec->role = lk->role;
        return NGX_OK;
    }

    rec->id.len = PQgetlength(res, 0, 0);
    rec->id.data = ngx_pstrdup(lk->pool, &(ngx_str_t) {
                                   rec->id.len,
                                   (u_char *) PQgetvalue(res, 0, 0) });

    rec->blueprint.len = PQgetlength(res, 0, 3);
    rec->blueprint.data = ngx_pstrdup(lk->pool, &(ngx_str_t) {
                                          rec->blueprint.len,
                                          (u_char *) PQgetvalue(res, 0, 3) });

    if (rec->id.data == NULL || rec->blueprint.data == NULL) {
        return NGX_ERROR;
    }

    role = ngx_http_tenant_role_parse((u_char *) PQgetvalue(res, 0, 1),
                                           PQgetlength(res, 0, 1));
    rec->role = (role == NGX_ERROR) ? lk->role : (ngx_uint_t) role;

    rec->status = ngx_http_tenant_parse_status(
                                   (u_char *) PQgetvalue(res, 0, 2),
                                   PQgetlength(res, 0, 2));

    rec->hsts = (PQgetvalue(res, 0, 6)[0] == 't');

    ngx_http_tenant_parse_limits(res, &rec->limits);

    rec->endpoints = ngx_pcalloc(lk->pool, ngx_min(rows,
                                     NGX_HTTP_TENANT_MAX_ENDPOINTS)
                                 * sizeof(ngx_http_tenant_endpoint_t));
    if (rec->endpoints == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < rows && rec->nendpoints < NGX_HTTP_TENANT_MAX_ENDPOINTS;
         i++)
    {
        if (PQgetisnull(res, i, 4)) {
            continue;
        }

        ep = &rec->endpoints[rec->nendpoints];

        if (ngx_http_tenant_parse_address(lk->pool,
                                          (u_char *) PQgetvalue(res, i, 4),
                                          PQgetlength(res, i, 4), ep)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                          "tenant: skipping bad endpoint \"%s\" of \"%V\"",
                          PQgetvalue(res, i, 4), &rec->id);
            continue;
        }

        weight = ngx_atoi((u_char *) PQgetvalue(res, i, 5),
                          PQgetlength(res, i, 5));
        ep->weight = (weight < 1) ? 1 : ngx_min(weight, 255);

        rec->nendpoints++;
    }

    return NGX_OK;
}


/* NULL is no limit; the registry's checks keep the rest in range */

static void
ngx_http_tenant_parse_limits(PGresult *res, ngx_http_tenant_limits_t *limits)
{
    limits->rate = (uint32_t) ngx_http_tenant_parse_limit(res, 7,
                                                          NGX_MAX_UINT32_VALUE);
    limits->burst = (uint32_t) ngx_http_tenant_parse_limit(res, 8,
                                                           NGX_MAX_UINT32_VALUE);
    limits->conns = (uint32_t) ngx_http_tenant_parse_limit(res, 9,
                                                           NGX_MAX_UINT32_VALUE);
    limits->requests = ngx_http_tenant_parse_limit(res, 10, NGX_MAX_INT_T_VALUE);
    limits->bytes = ngx_http_tenant_parse_limit(res, 11, NGX_MAX_INT_T_VALUE);

    /* a rate with no burst of its own allows a second's worth at once */
    if (limits->rate && PQgetisnull(res, 0, 8)) {
        limits->burst = (limits->rate + 999) / 1000;
    }
}


static uint64_t
ngx_http_tenant_parse_limit(PGresult *res, int field, uint64_t max)
{
    u_char     *p, *last;
    uint64_t    n;

    if (PQgetisnull(res, 0, field)) {
        return 0;
    }

    /* numeric's text: digits, maybe a fraction, which is dropped */

    p = (u_char *) PQgetvalue(res, 0, field);
    last = p + PQgetlength(res, 0, field);

    for (n = 0; p < last && *p >= '0' && *p <= '9'; p++) {
        n = n * 10 + (*p - '0');

        if (n > max) {
            return max;
        }
    }

    return n;
}


/* "ip:port", "[ipv6]:port" or "unix:/path"; never a name to resolve */

static ngx_int_t
ngx_http_tenant_parse_address(ngx_pool_t *pool, u_char *text, size_t len,
    ngx_http_tenant_endpoint_t *ep)
{
    ngx_addr_t           addr;
#if (NGX_HAVE_UNIX_DOMAIN)
    struct sockaddr_un  *saun;

    if (len > 5 && ngx_strncmp(text, "unix:", 5) == 0) {
        text += 5;
        len -= 5;

        saun = ngx_pcalloc(pool, sizeof(struct sockaddr_un));
        if (saun == NULL || len == 0 || len >= sizeof(saun->sun_path)) {
            return NGX_ERROR;
        }

        saun->sun_family = AF_UNIX;
        ngx_memcpy(saun->sun_path, text, len);

        ep->sockaddr = (struct sockaddr *) saun;
        ep->socklen = sizeof(struct sockaddr_un);
        ep->name.len = len + 5;
        ep->name.data = text - 5;
        return NGX_OK;
    }
#endif

    if (ngx_parse_addr_port(pool, &addr, text, len) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_inet_get_port(addr.sockaddr) == 0) {
        return NGX_ERROR;
    }

    ep->sockaddr = addr.sockaddr;
    ep->socklen = addr.socklen;
    ep->name.len = len;
    ep->name.data = text;

    return NGX_OK;
}


static ngx_uint_t
ngx_http_tenant_parse_status(u_char *s, size_t len)
{
    static ngx_str_t  names[] = {
        ngx_null_string,
        ngx_string("provisioning"),
        ngx_string("active"),
        ngx_string("suspended"),
        ngx_string("failed"),
        ngx_string("deleting")
    };

    ngx_uint_t  i;

    for (i = 1; i < sizeof(names) / sizeof(names[0]); i++) {
        if (names[i].len == len && ngx_strncmp(names[i].data, s, len) == 0) {
            return i;
        }
    }

    return NGX_HTTP_TENANT_FAILED;
}


ngx_int_t
ngx_http_tenant_record_copy(ngx_pool_t *pool, ngx_http_tenant_record_t *dst,
    ngx_http_tenant_record_t *src)
{
    ngx_uint_t                   i;
    ngx_http_tenant_endpoint_t  *d, *s;

    *dst = *src;

    dst->id.data = ngx_pstrdup(pool, &src->id);
    dst->blueprint.data = ngx_pstrdup(pool, &src->blueprint);

    if ((src->id.len && dst->id.data == NULL)
        || (src->blueprint.len && dst->blueprint.data == NULL))
    {
        return NGX_ERROR;
    }

    if (src->nendpoints == 0) {
        dst->endpoints = NULL;
        return NGX_OK;
    }

    dst->endpoints = ngx_palloc(pool, src->nendpoints
                                      * sizeof(ngx_http_tenant_endpoint_t));
    if (dst->endpoints == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < src->nendpoints; i++) {
        s = &src->endpoints[i];
        d = &dst->endpoints[i];

        *d = *s;

        d->sockaddr = ngx_palloc(pool, s->socklen);
        d->name.data = ngx_pstrdup(pool, &s->name);

        if (d->sockaddr == NULL || d->name.data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(d->sockaddr, s->sockaddr, s->socklen);
    }

    return NGX_OK;
}
