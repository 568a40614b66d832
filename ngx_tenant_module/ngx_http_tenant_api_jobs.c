
/*
 * The admin API's jobs: GET jobs/{id}, the answer to every mutation that
 * makes a job, and ?wait, which holds that answer until the job is done.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_tenant_api.h"
#include "ngx_http_tenant_pg.h"


static void ngx_http_tenant_api_job_wait(ngx_http_tenant_api_ctx_t *ctx,
    int64_t job);
static void ngx_http_tenant_api_unwait(ngx_http_tenant_api_ctx_t *ctx);
static void ngx_http_tenant_api_wait_timeout(ngx_event_t *ev);
static void ngx_http_tenant_api_job_notify(void *data, PGnotify *n);
static void ngx_http_tenant_api_job_listening(void *data);
static void ngx_http_tenant_api_job_answer(ngx_http_tenant_api_ctx_t *ctx,
    ngx_uint_t final);
static void ngx_http_tenant_api_job_read(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res);


/* requests waiting for their job (?wait), per worker */
static ngx_queue_t                     ngx_http_tenant_api_waiters;
static ngx_http_tenant_pg_listener_t  *ngx_http_tenant_api_listener;
static ngx_connection_t                ngx_http_tenant_api_dumb;


void
ngx_http_tenant_api_job(ngx_http_tenant_api_ctx_t *ctx)
{
    size_t     i;
    ngx_str_t  id;

    if (ngx_http_tenant_api_arg(ctx, 0, &id) != NGX_OK) {
        return;
    }

    for (i = 0; i < id.len; i++) {
        if (id.data[i] < '0' || id.data[i] > '9') {
            break;
        }
    }

    if (id.len == 0 || id.len > 18 || i != id.len) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_NOT_FOUND, "no_such_job",
                                  "no job has this id", NULL);
        return;
    }

    ctx->job = ngx_atoof(id.data, id.len);

    if (ctx->wait > 0) {
        ngx_http_tenant_api_job_wait(ctx, ctx->job);
        return;
    }

    ngx_http_tenant_api_job_answer(ctx, 1);
}


/* columns 1 and 2: the job just made and its tenant */

void
ngx_http_tenant_api_job_reply(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res)
{
    json_t  *job, *tenant, *id;

    job = ngx_http_tenant_api_json(res, 1);
    tenant = ngx_http_tenant_api_json(res, 2);
    id = json_object_get(job, "id");

    if (job == NULL || tenant == NULL || !json_is_integer(id)) {
        json_decref(job);
        json_decref(tenant);
        ngx_http_tenant_api_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                  "internal", "bad registry answer", NULL);
        return;
    }

    ctx->job = json_integer_value(id);

    if (ctx->wait > 0) {
        json_decref(job);
        json_decref(tenant);
        ngx_http_tenant_api_job_wait(ctx, ctx->job);
        return;
    }

    ngx_http_tenant_api_reply(ctx, NGX_HTTP_ACCEPTED,
                              json_pack("{s:o, s:o}", "job", job,
                                        "tenant", tenant));
}


/*
 * Reads a job and its tenant.  A finished create job's admin password is
 * handed out by the read that first sees it and removed in the same
 * statement: it is shown once, never again.
 */

static const char  ngx_http_tenant_api_job_sql[] =
    "SELECT * FROM job_read($1::bigint)";


static void
ngx_http_tenant_api_job_answer(ngx_http_tenant_api_ctx_t *ctx,
    ngx_uint_t final)
{
    u_char  num[NGX_INT64_LEN + 1];

    if (final) {
        ctx->wait = 0;
    }

    if (ctx->in_query) {
        /* the read under way may predate the change: read again after it */
        ctx->recheck = 1;
        return;
    }

    ctx->recheck = 0;

    *ngx_sprintf(num, "%L", ctx->job) = '\0';

    (void) ngx_http_tenant_api_query(ctx, ngx_http_tenant_api_job_sql,
                                     ngx_http_tenant_api_job_read, 1, num);
}


static void
ngx_http_tenant_api_job_read(ngx_http_tenant_api_ctx_t *ctx, PGresult *res)
{
    ngx_uint_t  done;

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_tenant_api_db_error(ctx, res);
        return;
    }

    if (PQntuples(res) != 1) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_NOT_FOUND, "no_such_job",
                                  "no job has this id", NULL);
        return;
    }

    done = (PQgetvalue(res, 0, 0)[0] == 't');

    if (!done && ctx->waiting && ctx->wait != 0) {
        if (ctx->recheck) {
            ngx_http_tenant_api_job_answer(ctx, 0);
        }

        /* else keep waiting for job_done or the timer */
        return;
    }

    /* a job still running is 202 for a mutation, a plain read is 200 */

    ngx_http_tenant_api_reply(ctx,
                              (done || ctx->route->action
                                       == ngx_http_tenant_api_job)
                              ? NGX_HTTP_OK : NGX_HTTP_ACCEPTED,
                              json_pack("{s:o, s:o}",
                                        "job", ngx_http_tenant_api_json(res, 1),
                                        "tenant",
                                        ngx_http_tenant_api_json(res, 2)));
}


/*
 * ?wait: the request waits, without blocking the worker, for job_done on
 * its job (one LISTEN job_done connection per worker, made on first use)
 * or for its time to run out.  The job is read once at once, as it may be
 * done already.
 */

static void
ngx_http_tenant_api_job_wait(ngx_http_tenant_api_ctx_t *ctx, int64_t job)
{
    ctx->job = job;

    if (ngx_http_tenant_api_waiters.next == NULL) {
        ngx_queue_init(&ngx_http_tenant_api_waiters);
        ngx_http_tenant_api_dumb.fd = (ngx_socket_t) -1;
    }

    if (ngx_http_tenant_api_listener == NULL) {
        ngx_http_tenant_api_listener = ngx_http_tenant_pg_listen_start(
                                          "LISTEN job_done",
                                          ngx_http_tenant_api_job_notify,
                                          ngx_http_tenant_api_job_listening,
                                          NULL, NULL);
    }

    ngx_queue_insert_tail(&ngx_http_tenant_api_waiters, &ctx->wait_queue);
    ctx->waiting = 1;
    ctx->unwait = ngx_http_tenant_api_unwait;

    ctx->wait_timer.handler = ngx_http_tenant_api_wait_timeout;
    ctx->wait_timer.data = &ngx_http_tenant_api_dumb;
    ctx->wait_timer.log = ctx->pool->log;

    ngx_add_timer(&ctx->wait_timer, (ngx_msec_t) ctx->wait * 1000);

    ngx_http_tenant_api_job_answer(ctx, 0);
}


static void
ngx_http_tenant_api_unwait(ngx_http_tenant_api_ctx_t *ctx)
{
    if (!ctx->waiting) {
        return;
    }

    ctx->waiting = 0;
    ctx->unwait = NULL;
    ngx_queue_remove(&ctx->wait_queue);

    if (ctx->wait_timer.timer_set) {
        ngx_del_timer(&ctx->wait_timer);
    }
}


static void
ngx_http_tenant_api_wait_timeout(ngx_event_t *ev)
{
    ngx_http_tenant_api_ctx_t  *ctx;

    ctx = (ngx_http_tenant_api_ctx_t *)
              ((u_char *) ev - offsetof(ngx_http_tenant_api_ctx_t,
                                        wait_timer));

    /* the last look: answer with the job as it is now */
    ngx_http_tenant_api_job_answer(ctx, 1);
}


static void
ngx_http_tenant_api_job_notify(void *data, PGnotify *n)
{
    int64_t                     job;
    ngx_queue_t                *q, *next;
    ngx_http_tenant_api_ctx_t  *ctx;

    job = ngx_atoof((u_char *) n->extra, ngx_strlen(n->extra));

    for (q = ngx_queue_head(&ngx_http_tenant_api_waiters);
         q != ngx_queue_sentinel(&ngx_http_tenant_api_waiters);
         q = next)
    {
        next = ngx_queue_next(q);
        ctx = ngx_queue_data(q, ngx_http_tenant_api_ctx_t, wait_queue);

        if (ctx->job == job) {
            ngx_http_tenant_api_job_answer(ctx, 0);
        }
    }
}


/* (re)connected: a job may have finished unheard */

static void
ngx_http_tenant_api_job_listening(void *data)
{
    ngx_queue_t                *q, *next;
    ngx_http_tenant_api_ctx_t  *ctx;

    for (q = ngx_queue_head(&ngx_http_tenant_api_waiters);
         q != ngx_queue_sentinel(&ngx_http_tenant_api_waiters);
         q = next)
    {
        next = ngx_queue_next(q);
        ctx = ngx_queue_data(q, ngx_http_tenant_api_ctx_t, wait_queue);

        ngx_http_tenant_api_job_answer(ctx, 0);
    }
}
