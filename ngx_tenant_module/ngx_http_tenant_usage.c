
/*
 * One worker of each nginx instance (whichever claims the traffic zone's
 * sync_pid first; another once it dies) sends, every sync=, what the zone
 * counted for tenants with a monthly quota since it last did, to
 * tenant_usage_add() (migration 014), and gives the registry's totals back
 * to the zone: each edge then enforces a quota on every edge's requests,
 * and an edge that restarts learns its tenants' month so far at its first
 * sync.  Between two syncs the edges together may go over a quota by what
 * they admit in one sync=.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>
#include "ngx_http_tenant_usage.h"
#include "ngx_http_tenant_pg.h"


/* tenants per query; more are sent at once after the answer */
#define NGX_HTTP_TENANT_USAGE_BATCH  1000


struct ngx_http_tenant_usage_s {
    ngx_connection_t                dumb;      /* first: the timer's data */
    ngx_event_t                     ev;
    ngx_http_tenant_traffic_t      *tt;
    ngx_pool_t                     *pool;      /* the batch in flight's */
    ngx_array_t                     rows;
    ngx_http_tenant_pg_query_t      query;
};


static void ngx_http_tenant_usage_tick(ngx_event_t *ev);
static ngx_int_t ngx_http_tenant_usage_claim(ngx_http_tenant_usage_t *us);
static ngx_int_t ngx_http_tenant_usage_send(ngx_http_tenant_usage_t *us);
static void ngx_http_tenant_usage_answer(ngx_http_tenant_pg_query_t *q,
    PGresult *res);
static ngx_int_t ngx_http_tenant_usage_totals(ngx_http_tenant_usage_t *us,
    PGresult *res, ngx_array_t *totals);
static void ngx_http_tenant_usage_end(ngx_http_tenant_usage_t *us,
    ngx_msec_t next);


static const char  ngx_http_tenant_usage_sql[] =
    "SELECT tenant_id, month, requests, bytes"
    "  FROM tenant_usage_add($1::text[], $2::integer[], $3::bigint[],"
    "                        $4::bigint[])";


ngx_http_tenant_usage_t *
ngx_http_tenant_usage_init_process(ngx_cycle_t *cycle,
    ngx_http_tenant_traffic_t *tt)
{
    ngx_http_tenant_usage_t  *us;

    us = ngx_pcalloc(cycle->pool, sizeof(ngx_http_tenant_usage_t));
    if (us == NULL) {
        return NULL;
    }

    us->tt = tt;

    us->dumb.fd = (ngx_socket_t) -1;
    us->ev.handler = ngx_http_tenant_usage_tick;
    us->ev.log = cycle->log;
    us->ev.data = &us->dumb;
    us->ev.cancelable = 1;

    ngx_add_timer(&us->ev, tt->sync);

    return us;
}


void
ngx_http_tenant_usage_exit_process(ngx_http_tenant_usage_t *us)
{
    (void) ngx_atomic_cmp_set(&us->tt->sh->sync_pid, ngx_pid, 0);
}


static void
ngx_http_tenant_usage_tick(ngx_event_t *ev)
{
    ngx_connection_t         *c;
    ngx_http_tenant_usage_t  *us;

    c = ev->data;
    us = (ngx_http_tenant_usage_t *) c;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        /* the new workers' syncs send what this one has not */
        if (us->pool == NULL) {
            ngx_http_tenant_usage_exit_process(us);
        }

        return;
    }

    if (us->pool || ngx_http_tenant_usage_claim(us) != NGX_OK) {
        ngx_add_timer(&us->ev, us->tt->sync);
        return;
    }

    if (ngx_http_tenant_usage_send(us) != NGX_OK) {
        ngx_http_tenant_usage_end(us, us->tt->sync);
    }
}


/* NGX_OK: this worker syncs */

static ngx_int_t
ngx_http_tenant_usage_claim(ngx_http_tenant_usage_t *us)
{
    ngx_pid_t                      pid;
    ngx_http_tenant_traffic_sh_t  *sh;

    sh = us->tt->sh;
    pid = (ngx_pid_t) sh->sync_pid;

    if (pid == ngx_pid) {
        return NGX_OK;
    }

    if (pid && (kill(pid, 0) == 0 || ngx_errno == NGX_EPERM)) {
        return NGX_DECLINED;
    }

    return ngx_atomic_cmp_set(&sh->sync_pid, pid, ngx_pid)
           ? NGX_OK : NGX_DECLINED;
}


/* NGX_OK: a batch is in flight, or there was nothing to send */

static ngx_int_t
ngx_http_tenant_usage_send(ngx_http_tenant_usage_t *us)
{
    u_char                       *p[4], *last[4];
    ngx_uint_t                    i, k;
    ngx_http_tenant_usage_row_t  *row;

    us->pool = ngx_create_pool(16384, ngx_cycle->log);
    if (us->pool == NULL) {
        return NGX_ERROR;
    }

    if (ngx_array_init(&us->rows, us->pool, NGX_HTTP_TENANT_USAGE_BATCH,
                       sizeof(ngx_http_tenant_usage_row_t))
        != NGX_OK
        || ngx_http_tenant_traffic_usage(us->tt, &us->rows,
                                         NGX_HTTP_TENANT_USAGE_BATCH)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (us->rows.nelts == 0) {
        ngx_http_tenant_usage_end(us, us->tt->sync);
        return NGX_OK;
    }

    /* four array literals; tenant ids are [a-z0-9-] (migration 001) */

    for (k = 0; k < 4; k++) {
        p[k] = ngx_pnalloc(us->pool, us->rows.nelts
                                     * (k ? NGX_INT64_LEN + 1
                                          : NGX_HTTP_TENANT_ID_MAX + 1)
                                     + 3);
        if (p[k] == NULL) {
            ngx_http_tenant_traffic_usage_done(us->tt, &us->rows, NULL);
            return NGX_ERROR;
        }

        us->query.params[k] = (const char *) p[k];
        last[k] = p[k];
        *last[k]++ = '{';
    }

    row = us->rows.elts;

    for (i = 0; i < us->rows.nelts; i++) {
        if (i) {
            for (k = 0; k < 4; k++) {
                *last[k]++ = ',';
            }
        }

        last[0] = ngx_cpymem(last[0], row[i].id.data, row[i].id.len);
        last[1] = ngx_sprintf(last[1], "%ui", row[i].month);
        last[2] = ngx_sprintf(last[2], "%uL", row[i].requests);
        last[3] = ngx_sprintf(last[3], "%uL", row[i].bytes);
    }

    for (k = 0; k < 4; k++) {
        *last[k]++ = '}';
        *last[k] = '\0';
    }

    us->query.sql = ngx_http_tenant_usage_sql;
    us->query.nparams = 4;
    us->query.handler = ngx_http_tenant_usage_answer;
    us->query.data = us;

    if (ngx_http_tenant_pg_send(&us->query) != NGX_OK) {
        ngx_http_tenant_traffic_usage_done(us->tt, &us->rows, NULL);
        (void) ngx_atomic_fetch_add(&us->tt->sh->sync_errors, 1);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_tenant_usage_answer(ngx_http_tenant_pg_query_t *q, PGresult *res)
{
    ngx_http_tenant_usage_t  *us = q->data;

    ngx_uint_t                full;
    ngx_array_t               totals;

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK
        || ngx_http_tenant_usage_totals(us, res, &totals) != NGX_OK)
    {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "tenant: quota counts of %ui tenants not sent to the "
                      "registry, sent again at the next sync: %s",
                      us->rows.nelts,
                      (res && PQresultStatus(res) != PGRES_TUPLES_OK)
                      ? PQresultErrorMessage(res) : "no answer");

        ngx_http_tenant_traffic_usage_done(us->tt, &us->rows, NULL);
        (void) ngx_atomic_fetch_add(&us->tt->sh->sync_errors, 1);
        ngx_http_tenant_usage_end(us, us->tt->sync);
        return;
    }

    ngx_http_tenant_traffic_usage_done(us->tt, &us->rows, &totals);
    (void) ngx_atomic_fetch_add(&us->tt->sh->syncs, 1);

    full = (us->rows.nelts == NGX_HTTP_TENANT_USAGE_BATCH);

    ngx_http_tenant_usage_end(us, full ? 1 : us->tt->sync);
}


static ngx_int_t
ngx_http_tenant_usage_totals(ngx_http_tenant_usage_t *us, PGresult *res,
    ngx_array_t *totals)
{
    int                           i, rows;
    off_t                         v[3];
    ngx_uint_t                    k;
    ngx_http_tenant_usage_row_t  *t;

    rows = PQntuples(res);

    if (ngx_array_init(totals, us->pool, rows ? rows : 1,
                       sizeof(ngx_http_tenant_usage_row_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (i = 0; i < rows; i++) {
        for (k = 0; k < 3; k++) {
            v[k] = ngx_atoof((u_char *) PQgetvalue(res, i, k + 1),
                             PQgetlength(res, i, k + 1));
            if (v[k] == NGX_ERROR) {
                return NGX_ERROR;
            }
        }

        t = ngx_array_push(totals);
        if (t == NULL) {
            return NGX_ERROR;
        }

        /* the id points into res, read before the result is cleared */
        t->id.data = (u_char *) PQgetvalue(res, i, 0);
        t->id.len = PQgetlength(res, i, 0);
        t->month = (ngx_uint_t) v[0];
        t->requests = (uint64_t) v[1];
        t->bytes = (uint64_t) v[2];
    }

    return NGX_OK;
}


static void
ngx_http_tenant_usage_end(ngx_http_tenant_usage_t *us, ngx_msec_t next)
{
    if (us->pool) {
        ngx_destroy_pool(us->pool);
        us->pool = NULL;
    }

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        ngx_http_tenant_usage_exit_process(us);
        return;
    }

    ngx_add_timer(&us->ev, next);
}
