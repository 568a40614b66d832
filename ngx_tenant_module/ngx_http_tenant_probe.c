
/*
 * Every NGX_HTTP_TENANT_PROBE_INTERVAL the worker that LISTENs sends
 * pg_notify('tenant_changed', 'probe:<host>/<pid>/<usec>') through the pool
 * and times its arrival on the listener: the path every routing change
 * takes (commit, NOTIFY, this edge's listener), measured on one clock, so
 * no skew between the registry's clock and the edge's enters it.  Other
 * edges' probes reach every edge too, and are ignored: with 100 edges that
 * is 10 notifications a second each.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_tenant_probe.h"
#include "ngx_http_tenant_pg.h"


#define NGX_HTTP_TENANT_PROBE_INTERVAL  10000


struct ngx_http_tenant_probe_s {
    ngx_http_tenant_cache_t        *cache;
    ngx_http_tenant_pg_query_t      query;
    ngx_uint_t                      busy;      /* its query in flight */
    ngx_msec_t                      sent;
    ngx_str_t                       self;      /* "<host>/<pid>/" */
    u_char                          payload[NGX_MAXHOSTNAMELEN + 64];
};


static void ngx_http_tenant_probe_done(ngx_http_tenant_pg_query_t *q,
    PGresult *res);
static uint64_t ngx_http_tenant_probe_now(void);


static const char  ngx_http_tenant_probe_sql[] =
    "SELECT pg_notify('tenant_changed', $1)";


ngx_http_tenant_probe_t *
ngx_http_tenant_probe_create(ngx_cycle_t *cycle,
    ngx_http_tenant_cache_t *cache)
{
    u_char                   *p;
    ngx_http_tenant_probe_t  *pr;

    pr = ngx_pcalloc(cycle->pool, sizeof(ngx_http_tenant_probe_t));
    if (pr == NULL) {
        return NULL;
    }

    pr->cache = cache;

    pr->self.data = ngx_pnalloc(cycle->pool, cycle->hostname.len
                                             + NGX_INT64_LEN + 2);
    if (pr->self.data == NULL) {
        return NULL;
    }

    p = ngx_sprintf(pr->self.data, "%V/%P/", &cycle->hostname, ngx_pid);
    pr->self.len = p - pr->self.data;

    /* the first one soon after the listener is up */
    pr->sent = ngx_current_msec - NGX_HTTP_TENANT_PROBE_INTERVAL + 1000;

    return pr;
}


void
ngx_http_tenant_probe_tick(ngx_http_tenant_probe_t *pr)
{
    if (pr->busy
        || ngx_current_msec - pr->sent < NGX_HTTP_TENANT_PROBE_INTERVAL)
    {
        return;
    }

    if (pr->self.len + NGX_INT64_LEN + sizeof("probe:") > sizeof(pr->payload))
    {
        return;
    }

    (void) ngx_sprintf(pr->payload, "probe:%V%uL%Z", &pr->self,
                    ngx_http_tenant_probe_now());

    pr->query.sql = ngx_http_tenant_probe_sql;
    pr->query.nparams = 1;
    pr->query.params[0] = (const char *) pr->payload;
    pr->query.handler = ngx_http_tenant_probe_done;
    pr->query.data = pr;

    pr->sent = ngx_current_msec;

    if (ngx_http_tenant_pg_send(&pr->query) != NGX_OK) {
        return;
    }

    pr->busy = 1;
    (void) ngx_atomic_fetch_add(&pr->cache->sh->probes_sent, 1);
}


static void
ngx_http_tenant_probe_done(ngx_http_tenant_pg_query_t *q, PGresult *res)
{
    ngx_http_tenant_probe_t  *pr = q->data;

    pr->busy = 0;

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "tenant: the propagation probe was not sent: %s",
                      res ? PQresultErrorMessage(res) : "no answer");
    }
}


void
ngx_http_tenant_probe_arrived(ngx_http_tenant_probe_t *pr, u_char *p,
    size_t len)
{
    off_t                        n;
    uint64_t                     sent, us;
    ngx_uint_t                   i;
    ngx_http_tenant_cache_sh_t  *sh;

    static uint64_t  bounds[] = { 1000, 5000, 25000, 100000, 1000000 };

    if (len <= pr->self.len
        || ngx_strncmp(p, pr->self.data, pr->self.len) != 0)
    {
        return;
    }

    n = ngx_atoof(p + pr->self.len, len - pr->self.len);
    if (n == NGX_ERROR) {
        return;
    }

    sent = (uint64_t) n;
    us = ngx_http_tenant_probe_now();
    us = (us > sent) ? us - sent : 0;

    for (i = 0; i < NGX_HTTP_TENANT_REGISTRY_BUCKETS - 1; i++) {
        if (us <= bounds[i]) {
            break;
        }
    }

    sh = pr->cache->sh;

    (void) ngx_atomic_fetch_add(&sh->probe_buckets[i], 1);
    (void) ngx_atomic_fetch_add(&sh->probe_us, us);
    (void) ngx_atomic_fetch_add(&sh->probes_received, 1);
    sh->probe_last_us = us;
}


/* ngx_current_msec is the event loop's: too coarse for sub-ms lags */

static uint64_t
ngx_http_tenant_probe_now(void)
{
    struct timeval  tv;

    ngx_gettimeofday(&tv);

    return (uint64_t) tv.tv_sec * 1000000 + tv.tv_usec;
}
