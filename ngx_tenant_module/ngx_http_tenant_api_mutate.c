
/*
 * What every mutation of the admin API shares: the tenant name in the
 * path, the Idempotency-Key replay, sending the statement with the key and
 * the actor, and reading its answer (404, 409, or the job made).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_tenant_api.h"
#include "ngx_http_tenant_api_validate.h"
#include "tenant_names.h"


static void ngx_http_tenant_api_stmt_send(ngx_http_tenant_api_ctx_t *ctx);


/* the tenant name in the path: a name that cannot exist is a 404 */

ngx_int_t
ngx_http_tenant_api_name_arg(ngx_http_tenant_api_ctx_t *ctx, ngx_str_t *name)
{
    if (ngx_http_tenant_api_arg(ctx, 0, name) != NGX_OK) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                  "internal", "out of memory", NULL);
        return NGX_ERROR;
    }

    if (tenant_slug_check(name->data, name->len) != NULL
        || name->len > 30)
    {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_NOT_FOUND, "no_such_tenant",
                                  "no tenant has this name", "name");
        return NGX_ERROR;
    }

    return NGX_OK;
}




static void ngx_http_tenant_api_conflict_replayed(
    ngx_http_tenant_api_ctx_t *ctx, PGresult *res);




/* "<key id>:<Idempotency-Key>", or NULL without the header */

static const char *
ngx_http_tenant_api_idempotency(ngx_http_tenant_api_ctx_t *ctx,
    ngx_int_t *bad)
{
    u_char     *p;
    ngx_str_t  *v;

    *bad = 0;
    v = &ctx->idempotency_key;

    if (v->data == NULL) {
        return NULL;
    }

    if (v->len == 0 || v->len > 200
        || ngx_http_tenant_api_check_text(v->data, v->len, 200))
    {
        *bad = 1;
        return NULL;
    }

    p = ngx_pnalloc(ctx->pool, ctx->key_id.len + 1 + v->len + 1);
    if (p == NULL) {
        *bad = 1;
        return NULL;
    }

    ctx->idempotency.data = p;
    p = ngx_cpymem(p, ctx->key_id.data, ctx->key_id.len);
    *p++ = ':';
    p = ngx_cpymem(p, v->data, v->len);
    *p = '\0';
    ctx->idempotency.len = p - ctx->idempotency.data;

    return (const char *) ctx->idempotency.data;
}


/*
 * The answer to a mutation: column 0 the tenant's status before it (NULL:
 * no such tenant), 1 the job, 2 the tenant.  409 when nothing was written.
 */



/*
 * Checks a mutation's answer: an SQL error (constraints in conflicts[] are
 * 409s), no tenant (column 0 NULL: 404), nothing written (column 1 NULL:
 * 409 wrong_status).  NGX_OK when the caller may answer with the row;
 * otherwise the error has been sent.
 */

ngx_int_t
ngx_http_tenant_api_written(ngx_http_tenant_api_ctx_t *ctx, PGresult *res,
    const ngx_http_tenant_api_conflict_t *conflicts, const char *wrong)
{
    u_char                                *msg;
    const char                            *constraint;
    const ngx_http_tenant_api_conflict_t  *c;

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        constraint = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);

        for (c = conflicts; constraint && c && c->constraint; c++) {
            if (ngx_strcmp(constraint, c->constraint) == 0) {
                ngx_http_tenant_api_conflict(ctx, c->code, c->message,
                                             c->field);
                return NGX_ERROR;
            }
        }
    }

    /* any other error, or no such tenant */
    if (ngx_http_tenant_api_tenant_row(ctx, res) != NGX_OK) {
        return NGX_ERROR;
    }

    if (PQgetisnull(res, 0, 1)) {
        /* name the status the tenant is in, so the caller knows why */
        msg = ngx_pnalloc(ctx->pool, ngx_strlen(wrong) + 64);
        if (msg == NULL) {
            ngx_http_tenant_api_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                      "internal", "out of memory", NULL);
            return NGX_ERROR;
        }

        *ngx_snprintf(msg, ngx_strlen(wrong) + 63, "the tenant is %s: %s",
                      PQgetvalue(res, 0, 0), wrong) = '\0';

        ngx_http_tenant_api_conflict(ctx, "wrong_status",
                                     (const char *) msg, NULL);
        return NGX_ERROR;
    }

    return NGX_OK;
}


void
ngx_http_tenant_api_job_made(ngx_http_tenant_api_ctx_t *ctx, PGresult *res)
{
    static const ngx_http_tenant_api_conflict_t  conflicts[] = {
        { "jobs_one_pending", "job_pending",
          "the same job is already queued or running for this tenant", NULL },
        { NULL, NULL, NULL, NULL }
    };

    if (ngx_http_tenant_api_written(ctx, res, conflicts,
                                    "the tenant's status does not allow this")
        == NGX_OK)
    {
        ngx_http_tenant_api_job_reply(ctx, res);
    }
}


/* --- mutations: replay check, then the statement ------------------------- */


const char  ngx_http_tenant_api_replay_sql[] =
    "SELECT 'replay', job_json(j),"
    "       (SELECT tenant_json(t) FROM tenants t WHERE t.id = j.tenant_id)"
    "  FROM jobs j WHERE j.idempotency_key = $1";


/*
 * A conflict on a request with an Idempotency-Key may be its twin's doing:
 * requests with one key that arrive together all miss the first replay
 * look-up, and all but one then trip over the row the first one made.
 * Look the key up again before answering 409: every request with the same
 * key gets the same job, however many arrive at once.
 */

void
ngx_http_tenant_api_conflict(ngx_http_tenant_api_ctx_t *ctx,
    const char *code, const char *message, const char *field)
{
    ngx_http_tenant_api_stmt_t  *st = ctx->data;

    if (ctx->idempotency.len == 0 || st == NULL || st->code != NULL) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_CONFLICT, code, message,
                                  field);
        return;
    }

    st->code = code;
    st->message = message;
    st->field = field;

    (void) ngx_http_tenant_api_query(ctx, ngx_http_tenant_api_replay_sql,
                                     ngx_http_tenant_api_conflict_replayed,
                                     1, ctx->idempotency.data);
}


static void
ngx_http_tenant_api_conflict_replayed(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res)
{
    ngx_http_tenant_api_stmt_t  *st = ctx->data;

    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        ngx_http_tenant_api_job_reply(ctx, res);
        return;
    }

    ngx_http_tenant_api_error(ctx, NGX_HTTP_CONFLICT, st->code, st->message,
                              st->field);
}


static void
ngx_http_tenant_api_stmt_send(ngx_http_tenant_api_ctx_t *ctx)
{
    ngx_http_tenant_api_stmt_t  *st = ctx->data;

    const char  **p = st->params;

    (void) ngx_http_tenant_api_query(ctx, st->sql, st->next, st->nparams,
                                     p[0], p[1], p[2], p[3], p[4], p[5], p[6],
                                     p[7], p[8], p[9]);
}


/* a retried request with the same Idempotency-Key gets the first job */

void
ngx_http_tenant_api_replayed(ngx_http_tenant_api_ctx_t *ctx, PGresult *res)
{
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_tenant_api_db_error(ctx, res);
        return;
    }

    if (PQntuples(res) == 1) {
        ngx_http_tenant_api_job_reply(ctx, res);
        return;
    }

    ngx_http_tenant_api_stmt_send(ctx);
}


/*
 * The statement's last two params are the idempotency key and the actor,
 * filled in here.
 */

void
ngx_http_tenant_api_mutate(ngx_http_tenant_api_ctx_t *ctx,
    ngx_http_tenant_api_stmt_t *st)
{
    ngx_int_t    bad;
    const char  *idem;

    idem = ngx_http_tenant_api_idempotency(ctx, &bad);

    if (bad) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_BAD_REQUEST,
                                  "invalid_idempotency_key",
                                  "Idempotency-Key must be 1-200 printable "
                                  "characters", NULL);
        return;
    }

    st->params[st->nparams++] = idem;
    st->params[st->nparams++] = (const char *) ctx->actor.data;

    ctx->data = st;

    if (idem == NULL) {
        ngx_http_tenant_api_stmt_send(ctx);
        return;
    }

    (void) ngx_http_tenant_api_query(ctx, ngx_http_tenant_api_replay_sql,
                                     ngx_http_tenant_api_replayed, 1, idem);
}


ngx_http_tenant_api_stmt_t *
ngx_http_tenant_api_stmt(ngx_http_tenant_api_ctx_t *ctx, const char *sql,
    ngx_http_tenant_api_next_pt next)
{
    ngx_http_tenant_api_stmt_t  *st;

    st = ngx_pcalloc(ctx->pool, sizeof(ngx_http_tenant_api_stmt_t));
    if (st == NULL) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                  "internal", "out of memory", NULL);
        return NULL;
    }

    st->sql = sql;
    st->next = next;

    return st;
}
