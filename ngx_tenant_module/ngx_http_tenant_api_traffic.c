
/*
 * GET traffic: this edge's per-tenant counters and its cache's, as JSON
 * for the dashboard (which samples it to draw rates over time).  The same
 * counts tenant_metrics gives Prometheus, bounded by the same series=; an
 * operator's session or key reads them from any address, where /metrics
 * is for the scraper on loopback.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_tenant_api.h"
#include "ngx_http_tenant_cache.h"
#include "ngx_http_tenant_traffic.h"


static json_t *ngx_http_tenant_api_series(ngx_http_tenant_series_copy_t *sc);


void
ngx_http_tenant_api_traffic(ngx_http_tenant_api_ctx_t *ctx)
{
    json_t                         *doc, *list, *edge;
    ngx_uint_t                      i;
    ngx_array_t                     series;
    ngx_http_tenant_cache_t        *cache;
    ngx_http_tenant_traffic_t      *tt;
    ngx_http_tenant_cache_sh_t     *sh;
    ngx_http_tenant_series_copy_t  *sc, other;

    list = json_array();
    doc = json_object();

    if (list == NULL || doc == NULL) {
        goto failed;
    }

    if (ctx->tmcf->traffic_zone) {
        tt = ctx->tmcf->traffic_zone->data;

        if (ngx_http_tenant_traffic_copy(tt, ctx->pool, &series, &other)
            != NGX_OK)
        {
            goto failed;
        }

        sc = series.elts;

        for (i = 0; i < series.nelts; i++) {
            if (json_array_append_new(list, ngx_http_tenant_api_series(&sc[i]))
                != 0)
            {
                goto failed;
            }
        }

        json_object_set_new(doc, "other", ngx_http_tenant_api_series(&other));
    }

    edge = json_object();
    cache = ctx->tmcf->shm_zone ? ctx->tmcf->shm_zone->data : NULL;

    if (edge && cache) {
        sh = cache->sh;

        json_object_set_new(edge, "hits", json_integer(sh->hits));
        json_object_set_new(edge, "misses", json_integer(sh->misses));
        json_object_set_new(edge, "stale", json_integer(sh->stale));
        json_object_set_new(edge, "evictions", json_integer(sh->evictions));
        json_object_set_new(edge, "entries", json_integer(sh->entries));
        json_object_set_new(edge, "notifications",
                            json_integer(sh->notifications));
        json_object_set_new(edge, "registry_errors",
                            json_integer(sh->query_errors));
        json_object_set_new(edge, "listener_up",
                            json_boolean(sh->listener_ready != 0));
        json_object_set_new(edge, "propagation_last_ms",
                            json_real(sh->probe_last_us / 1000.0));
    }

    json_object_set_new(doc, "edge", edge ? edge : json_null());
    json_object_set_new(doc, "at", json_integer(ngx_time()));
    json_object_set_new(doc, "tenants", list);

    ngx_http_tenant_api_reply(ctx, NGX_HTTP_OK, doc);
    return;

failed:

    json_decref(list);
    json_decref(doc);
    ngx_http_tenant_api_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR, "internal",
                              "cannot read the traffic zone", NULL);
}


static json_t *
ngx_http_tenant_api_series(ngx_http_tenant_series_copy_t *sc)
{
    ngx_uint_t  i, upstream;

    upstream = 0;

    for (i = 0; i < NGX_HTTP_TENANT_UPSTREAM_BUCKETS; i++) {
        upstream += sc->c.upstream[i];
    }

    return json_pack("{s:s%, s:[I,I,I,I,I], s:I, s:I, s:I, s:I, s:I,"
                     " s:[I,I,I,I]}",
                     "tenant", sc->id.data, sc->id.len,
                     "requests", (json_int_t) sc->c.requests[0],
                     (json_int_t) sc->c.requests[1],
                     (json_int_t) sc->c.requests[2],
                     (json_int_t) sc->c.requests[3],
                     (json_int_t) sc->c.requests[4],
                     "bytes_in", (json_int_t) sc->c.bytes_in,
                     "bytes_out", (json_int_t) sc->c.bytes_out,
                     "upstream_ms", (json_int_t) sc->c.upstream_ms,
                     "upstream_count", (json_int_t) upstream,
                     "active", (json_int_t) sc->active,
                     "refused", (json_int_t) sc->c.refused[0],
                     (json_int_t) sc->c.refused[1],
                     (json_int_t) sc->c.refused[2],
                     (json_int_t) sc->c.refused[3]);
}
