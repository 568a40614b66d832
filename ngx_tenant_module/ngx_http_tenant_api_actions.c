
/*
 * Admin API routes.  Every mutation is one SQL statement whose
 * data-modifying CTEs write the tenant (or host) row, the job row and the
 * audit row together: atomic, with no transaction held open across events.
 * A statement that changes nothing reports the tenant's current status, so
 * 404 and 409 are told apart without a second round trip.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_tenant_api.h"
#include "ngx_http_tenant_api_validate.h"
#include "ngx_http_tenant_host.h"
#include "ngx_http_tenant_module.h"
#include "ngx_http_tenant_pg.h"


/*
 * The mutations are SQL functions (migration 004) shared with the CLI, so
 * both write jobs exactly alike; tenant_json() and job_json() shape answers
 * (a job's payload, which may hold a password, is never shown).
 */


static void ngx_http_tenant_api_health(ngx_http_tenant_api_ctx_t *ctx);
static ngx_uint_t ngx_http_tenant_api_deep(ngx_http_tenant_api_ctx_t *ctx);
static void ngx_http_tenant_api_list(ngx_http_tenant_api_ctx_t *ctx);
static void ngx_http_tenant_api_create(ngx_http_tenant_api_ctx_t *ctx);
static void ngx_http_tenant_api_get(ngx_http_tenant_api_ctx_t *ctx);
static void ngx_http_tenant_api_delete(ngx_http_tenant_api_ctx_t *ctx);
static void ngx_http_tenant_api_suspend(ngx_http_tenant_api_ctx_t *ctx);
static void ngx_http_tenant_api_resume(ngx_http_tenant_api_ctx_t *ctx);
static void ngx_http_tenant_api_seed_admin(ngx_http_tenant_api_ctx_t *ctx);
static void ngx_http_tenant_api_logs(ngx_http_tenant_api_ctx_t *ctx);
static void ngx_http_tenant_api_logs_made(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res);
static void ngx_http_tenant_api_domain_add(ngx_http_tenant_api_ctx_t *ctx);
static void ngx_http_tenant_api_domain_del(ngx_http_tenant_api_ctx_t *ctx);
static void ngx_http_tenant_api_domain_verify(ngx_http_tenant_api_ctx_t *ctx);
static void ngx_http_tenant_api_create_store(ngx_http_tenant_api_ctx_t *ctx);
static void ngx_http_tenant_api_delete_store(ngx_http_tenant_api_ctx_t *ctx);
static void ngx_http_tenant_api_stores_status(ngx_http_tenant_api_ctx_t *ctx);


ngx_http_tenant_api_route_t  ngx_http_tenant_api_routes[] = {
    { NGX_HTTP_GET,    "health",              0, 0,
      ngx_http_tenant_api_health, NGX_HTTP_TENANT_API_PLATFORM },
    { NGX_HTTP_GET,    "tenants",             1, 0,
      ngx_http_tenant_api_list, NGX_HTTP_TENANT_API_PLATFORM },
    { NGX_HTTP_POST,   "tenants",             1, 1,
      ngx_http_tenant_api_create, NGX_HTTP_TENANT_API_PLATFORM },
    { NGX_HTTP_GET,    "tenants/*",           1, 0,
      ngx_http_tenant_api_get, NGX_HTTP_TENANT_API_TENANT },
    { NGX_HTTP_DELETE, "tenants/*",           1, 0,
      ngx_http_tenant_api_delete, NGX_HTTP_TENANT_API_PLATFORM },
    { NGX_HTTP_POST,   "tenants/*/suspend",   1, 0,
      ngx_http_tenant_api_suspend, NGX_HTTP_TENANT_API_PLATFORM },
    { NGX_HTTP_POST,   "tenants/*/resume",    1, 0,
      ngx_http_tenant_api_resume, NGX_HTTP_TENANT_API_PLATFORM },
    { NGX_HTTP_POST,   "tenants/*/seed-admin", 1, 1,
      ngx_http_tenant_api_seed_admin, NGX_HTTP_TENANT_API_TENANT },
    { NGX_HTTP_GET,    "tenants/*/logs",      1, 0,
      ngx_http_tenant_api_logs, NGX_HTTP_TENANT_API_TENANT },
    { NGX_HTTP_POST,   "tenants/*/domains",   1, 1,
      ngx_http_tenant_api_domain_add, NGX_HTTP_TENANT_API_TENANT },
    { NGX_HTTP_DELETE, "tenants/*/domains/*", 1, 0,
      ngx_http_tenant_api_domain_del, NGX_HTTP_TENANT_API_TENANT },
    { NGX_HTTP_POST,   "tenants/*/domains/*/verify", 1, 0,
      ngx_http_tenant_api_domain_verify, NGX_HTTP_TENANT_API_PLATFORM },
    { NGX_HTTP_PUT,    "tenants/*/domains/*/certificate", 1, 1,
      ngx_http_tenant_api_cert_put, NGX_HTTP_TENANT_API_TENANT },
    { NGX_HTTP_GET,    "tenants/*/domains/*/certificate", 1, 0,
      ngx_http_tenant_api_cert_get, NGX_HTTP_TENANT_API_TENANT },
    { NGX_HTTP_DELETE, "tenants/*/domains/*/certificate", 1, 0,
      ngx_http_tenant_api_cert_delete, NGX_HTTP_TENANT_API_TENANT },
    { NGX_HTTP_PUT,    "tenants/*/hsts",      1, 1,
      ngx_http_tenant_api_hsts, NGX_HTTP_TENANT_API_TENANT },
    { NGX_HTTP_GET,    "tenants/*/limits",    1, 0,
      ngx_http_tenant_api_limits_get, NGX_HTTP_TENANT_API_TENANT },
    { NGX_HTTP_PUT,    "tenants/*/limits",    1, 1,
      ngx_http_tenant_api_limits_put, NGX_HTTP_TENANT_API_PLATFORM },
    { NGX_HTTP_POST,   "signups",             0, 1,
      ngx_http_tenant_api_signup, NGX_HTTP_TENANT_API_PLATFORM },
    { NGX_HTTP_GET,    "tenants/*/signups",   1, 0,
      ngx_http_tenant_api_signups, NGX_HTTP_TENANT_API_TENANT },
    { NGX_HTTP_PUT,    "tenants/*/signups",   1, 1,
      ngx_http_tenant_api_signup_settings, NGX_HTTP_TENANT_API_TENANT },
    { NGX_HTTP_POST,   "tenants/*/signups/*/approve", 1, 0,
      ngx_http_tenant_api_signup_approve, NGX_HTTP_TENANT_API_TENANT },
    { NGX_HTTP_POST,   "tenants/*/signups/*/reject", 1, 2,
      ngx_http_tenant_api_signup_reject, NGX_HTTP_TENANT_API_TENANT },
    { NGX_HTTP_GET,    "tenants/*/keys",      1, 0,
      ngx_http_tenant_api_keys, NGX_HTTP_TENANT_API_PLATFORM },
    { NGX_HTTP_POST,   "tenants/*/keys",      1, 1,
      ngx_http_tenant_api_key_create, NGX_HTTP_TENANT_API_PLATFORM },
    { NGX_HTTP_DELETE, "tenants/*/keys/*",    1, 0,
      ngx_http_tenant_api_key_revoke, NGX_HTTP_TENANT_API_PLATFORM },
    { NGX_HTTP_GET,    "tenants/*/backups",   1, 0,
      ngx_http_tenant_api_backups, NGX_HTTP_TENANT_API_TENANT },
    { NGX_HTTP_POST,   "tenants/*/backups",   1, 2,
      ngx_http_tenant_api_backup_create, NGX_HTTP_TENANT_API_TENANT },
    { NGX_HTTP_GET,    "backups/*",           1, 0,
      ngx_http_tenant_api_backup_get, NGX_HTTP_TENANT_API_OWNED },
    { NGX_HTTP_POST,   "backups/*/verify",    1, 0,
      ngx_http_tenant_api_backup_verify, NGX_HTTP_TENANT_API_OWNED },
    { NGX_HTTP_POST,   "backups/*/restore",   1, 0,
      ngx_http_tenant_api_backup_restore, NGX_HTTP_TENANT_API_OWNED },
    { NGX_HTTP_POST,   "backups/*/clone",     1, 1,
      ngx_http_tenant_api_backup_clone, NGX_HTTP_TENANT_API_PLATFORM },
    { NGX_HTTP_GET,    "migrations",          1, 0,
      ngx_http_tenant_api_migrations, NGX_HTTP_TENANT_API_PLATFORM },
    { NGX_HTTP_POST,   "migrations",          1, 1,
      ngx_http_tenant_api_migration_start, NGX_HTTP_TENANT_API_PLATFORM },
    { NGX_HTTP_GET,    "migrations/*",        1, 0,
      ngx_http_tenant_api_migration_get, NGX_HTTP_TENANT_API_PLATFORM },
    { NGX_HTTP_POST,   "migrations/*/resume", 1, 0,
      ngx_http_tenant_api_migration_resume, NGX_HTTP_TENANT_API_PLATFORM },
    { NGX_HTTP_GET,    "plans",               1, 0,
      ngx_http_tenant_api_plans, NGX_HTTP_TENANT_API_PLATFORM },
    { NGX_HTTP_PUT,    "plans/*",             1, 1,
      ngx_http_tenant_api_plan_put, NGX_HTTP_TENANT_API_PLATFORM },
    { NGX_HTTP_GET,    "jwt/keys",            1, 0,
      ngx_http_tenant_api_jwt_keys, NGX_HTTP_TENANT_API_PLATFORM },
    { NGX_HTTP_POST,   "jwt/keys",            1, 1,
      ngx_http_tenant_api_jwt_key_add, NGX_HTTP_TENANT_API_PLATFORM },
    { NGX_HTTP_DELETE, "jwt/keys/*",          1, 0,
      ngx_http_tenant_api_jwt_key_delete, NGX_HTTP_TENANT_API_PLATFORM },
    { NGX_HTTP_GET,    "jwt/sources",         1, 0,
      ngx_http_tenant_api_jwks_sources, NGX_HTTP_TENANT_API_PLATFORM },
    { NGX_HTTP_POST,   "jwt/sources",         1, 1,
      ngx_http_tenant_api_jwks_source_add, NGX_HTTP_TENANT_API_PLATFORM },
    { NGX_HTTP_DELETE, "jwt/sources/*",       1, 0,
      ngx_http_tenant_api_jwks_source_delete, NGX_HTTP_TENANT_API_PLATFORM },
    { NGX_HTTP_GET,    "certificates",        1, 0,
      ngx_http_tenant_api_certs_expiring, NGX_HTTP_TENANT_API_PLATFORM },
    { NGX_HTTP_GET,    "jobs",                1, 0,
      ngx_http_tenant_api_jobs, NGX_HTTP_TENANT_API_PLATFORM },
    { NGX_HTTP_GET,    "jobs/*",              1, 0,
      ngx_http_tenant_api_job, NGX_HTTP_TENANT_API_OWNED },
    { NGX_HTTP_GET,    "blueprints",          1, 0,
      ngx_http_tenant_api_blueprints, NGX_HTTP_TENANT_API_PLATFORM },
    { NGX_HTTP_GET,    "audit",               1, 0,
      ngx_http_tenant_api_audit, NGX_HTTP_TENANT_API_PLATFORM },
    { NGX_HTTP_POST,   "session",             0, 1,
      ngx_http_tenant_api_signin, NGX_HTTP_TENANT_API_PLATFORM },
    { NGX_HTTP_GET,    "session",             1, 0,
      ngx_http_tenant_api_session_show, NGX_HTTP_TENANT_API_PLATFORM },
    { NGX_HTTP_DELETE, "session",             1, 0,
      ngx_http_tenant_api_signout, NGX_HTTP_TENANT_API_PLATFORM },
    { NGX_HTTP_GET,    "platform",            1, 0,
      ngx_http_tenant_api_platform, NGX_HTTP_TENANT_API_PLATFORM },
    { NGX_HTTP_GET,    "traffic",             1, 0,
      ngx_http_tenant_api_traffic, NGX_HTTP_TENANT_API_PLATFORM },
    { NGX_HTTP_GET,    "openapi.json",        0, 0,
      ngx_http_tenant_api_openapi, NGX_HTTP_TENANT_API_PLATFORM },
    { NGX_HTTP_POST,   "create-store",        1, 1,
      ngx_http_tenant_api_create_store, NGX_HTTP_TENANT_API_PLATFORM },
    { NGX_HTTP_POST,   "delete-store",        1, 1,
      ngx_http_tenant_api_delete_store, NGX_HTTP_TENANT_API_PLATFORM },
    { NGX_HTTP_GET,    "stores-status",       1, 0,
      ngx_http_tenant_api_stores_status, NGX_HTTP_TENANT_API_PLATFORM },
    { 0, NULL, 0, 0, NULL, 0 }
};


/* --- shared steps -------------------------------------------------------- */


/* a limit the registry counted: "seconds" until it allows the next one */

static void
ngx_http_tenant_api_rate_limited(ngx_http_tenant_api_ctx_t *ctx,
    char *seconds, const char *what)
{
    u_char  *msg;
    size_t   len;

    ctx->retry_after = ngx_atotm((u_char *) seconds, ngx_strlen(seconds));
    if (ctx->retry_after == NGX_ERROR) {
        ctx->retry_after = 0;
    }

    len = ngx_strlen(what) + sizeof(": retry after Retry-After seconds");

    msg = ngx_pnalloc(ctx->pool, len);
    if (msg == NULL) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                  "internal", "out of memory", NULL);
        return;
    }

    *ngx_snprintf(msg, len - 1, "%s: retry after Retry-After seconds", what)
        = '\0';

    ngx_http_tenant_api_error(ctx, NGX_HTTP_TOO_MANY_REQUESTS,
                              "rate_limited", (const char *) msg, NULL);
}


/* --- health -------------------------------------------------------------- */


/*
 * ?deep: also the provisioners' health checks (health_checks, written by
 * each every check_interval); one silent for five minutes is critical.
 */

static ngx_uint_t
ngx_http_tenant_api_deep(ngx_http_tenant_api_ctx_t *ctx)
{
    u_char     *p, *last;
    ngx_str_t  *args;

    if (ctx->request == NULL) {
        return 0;
    }

    args = &ctx->request->args;
    p = args->data;
    last = p + args->len;

    while (p < last) {
        if (last - p >= 4 && ngx_strncmp(p, "deep", 4) == 0
            && (p + 4 == last || p[4] == '&' || p[4] == '='))
        {
            return 1;
        }

        p = ngx_strlchr(p, last, '&');

        if (p == NULL) {
            break;
        }

        p++;
    }

    return 0;
}


static void
ngx_http_tenant_api_health_done(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res)
{
    json_t                     *body, *checks;
    const char                 *status;
    ngx_uint_t                  ok, code;
    ngx_http_tenant_pg_stats_t  st;

    ngx_http_tenant_pg_stats(&st);

    ok = (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1);
    code = ok ? NGX_HTTP_OK : NGX_HTTP_SERVICE_UNAVAILABLE;
    status = ok ? "ok" : "degraded";

    checks = NULL;

    if (ok && PQnfields(res) == 2) {
        checks = ngx_http_tenant_api_json(res, 1);
        status = json_string_value(json_object_get(checks, "status"));

        if (status == NULL) {
            status = "unknown";
        }

        if (ngx_strcmp(status, "ok") != 0
            && ngx_strcmp(status, "warning") != 0)
        {
            code = NGX_HTTP_SERVICE_UNAVAILABLE;
        }
    }

    body = json_pack("{s:s, s:{s:s, s:s?, s:I, s:I, s:I, s:I}}",
                     "status", status,
                     "registry",
                         "status", ok ? "ok" : "unavailable",
                         "schema", ok ? PQgetvalue(res, 0, 0) : NULL,
                         "connections", (json_int_t) st.total,
                         "idle", (json_int_t) st.idle,
                         "busy", (json_int_t) st.busy,
                         "down", (json_int_t) st.down);

    if (body && checks) {
        json_object_set(body, "checks", json_object_get(checks, "checks"));
    }

    json_decref(checks);

    ngx_http_tenant_api_reply(ctx, code, body);
}


static void
ngx_http_tenant_api_health(ngx_http_tenant_api_ctx_t *ctx)
{
    ngx_http_tenant_pg_stats_t  st;

    ngx_http_tenant_pg_stats(&st);

    if (st.total - st.down == 0) {
        ngx_http_tenant_api_reply(ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
            json_pack("{s:s, s:{s:s, s:I, s:I}}", "status", "degraded",
                      "registry", "status", "unavailable",
                      "connections", (json_int_t) st.total,
                      "down", (json_int_t) st.down));
        return;
    }

    if (ngx_http_tenant_api_deep(ctx)) {
        (void) ngx_http_tenant_api_query(ctx,
            "SELECT max(version)::text, health_checks_json('5 minutes')"
            "  FROM schema_version",
            ngx_http_tenant_api_health_done, 0);
        return;
    }

    (void) ngx_http_tenant_api_query(ctx,
        "SELECT max(version)::text FROM schema_version",
        ngx_http_tenant_api_health_done, 0);
}


/* --- tenants ------------------------------------------------------------- */


static void
ngx_http_tenant_api_list_done(ngx_http_tenant_api_ctx_t *ctx, PGresult *res)
{
    json_t  *list, *next;

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_tenant_api_db_error(ctx, res);
        return;
    }

    list = ngx_http_tenant_api_json(res, 0);
    next = PQgetisnull(res, 0, 1) ? json_null()
                                  : json_string(PQgetvalue(res, 0, 1));

    ngx_http_tenant_api_reply(ctx, NGX_HTTP_OK,
                              json_pack("{s:o, s:o}", ctx->arg[1].len
                                                      ? "stores" : "tenants",
                                        list, "next", next));
}


/* ?limit=1..100 (50) and ?after=NAME: keyset pagination by name */

static void
ngx_http_tenant_api_list_page(ngx_http_tenant_api_ctx_t *ctx,
    const char *sql)
{
    u_char     num[NGX_INT_T_LEN + 1];
    ngx_int_t  limit;
    ngx_str_t  v, after;

    ngx_str_set(&after, "");

    limit = ngx_http_tenant_api_number(ctx, &ctx->args.limit, "limit", 50,
                                       1, 100);
    if (limit == NGX_ERROR) {
        return;
    }

    v = ctx->args.after;

    if (v.data) {
        if (tenant_slug_check(v.data, v.len) != NULL) {
            ngx_http_tenant_api_error(ctx, NGX_HTTP_BAD_REQUEST,
                                      "invalid_parameter",
                                      "after must be a tenant name", "after");
            return;
        }

        after.data = ngx_pnalloc(ctx->pool, v.len + 1);
        if (after.data == NULL) {
            return;
        }

        *ngx_cpymem(after.data, v.data, v.len) = '\0';
    }

    *ngx_sprintf(num, "%i", limit) = '\0';

    (void) ngx_http_tenant_api_query(ctx, sql, ngx_http_tenant_api_list_done,
                                     4, (char *) after.data, num,
                                     ctx->list_prefix ? ctx->list_prefix : "",
                                     ctx->list_status ? ctx->list_status : "");
}


/*
 * GET tenants?prefix=P&status=S&after=NAME&limit=N.  In byte order (the
 * "C" collation, migration 015's indexes), so a name prefix is a range of
 * an index and a page of a million tenants reads only its rows.
 */

static void
ngx_http_tenant_api_list(ngx_http_tenant_api_ctx_t *ctx)
{
    u_char      *p;
    ngx_str_t    v;
    ngx_uint_t   i;

    static const char  *statuses[] = { "provisioning", "active", "suspended",
                                       "failed", "deleting", NULL };

    v = ctx->args.prefix;

    if (v.data && v.len) {
        for (i = 0; i < v.len; i++) {
            if (!((v.data[i] >= 'a' && v.data[i] <= 'z')
                  || (v.data[i] >= '0' && v.data[i] <= '9')
                  || v.data[i] == '-'))
            {
                break;
            }
        }

        if (i < v.len || v.len > 30) {
            ngx_http_tenant_api_error(ctx, NGX_HTTP_BAD_REQUEST,
                                      "invalid_parameter",
                                      "prefix: the start of a tenant name, "
                                      "up to 30 of a-z, 0-9 and -",
                                      "prefix");
            return;
        }

        p = ngx_pnalloc(ctx->pool, v.len + 1);
        if (p == NULL) {
            return;
        }

        *ngx_cpymem(p, v.data, v.len) = '\0';
        ctx->list_prefix = (const char *) p;
    }

    v = ctx->args.status;

    if (v.data) {
        for (i = 0; statuses[i]; i++) {
            if (v.len == ngx_strlen(statuses[i])
                && ngx_strncmp(v.data, statuses[i], v.len) == 0)
            {
                ctx->list_status = statuses[i];
                break;
            }
        }

        if (ctx->list_status == NULL) {
            ngx_http_tenant_api_error(ctx, NGX_HTTP_BAD_REQUEST,
                                      "invalid_parameter",
                                      "status: provisioning, active, "
                                      "suspended, failed or deleting",
                                      "status");
            return;
        }
    }

    ngx_http_tenant_api_list_page(ctx,
        "SELECT coalesce(json_agg(tenant_json(t) ORDER BY t.id COLLATE \"C\"),"
        "                '[]'),"
        "       CASE WHEN count(*) = $2::int"
        "            THEN max(t.id COLLATE \"C\") END"
        "  FROM (SELECT * FROM tenants"
        "         WHERE id COLLATE \"C\" > $1"
        "           AND ($3 = '' OR (id COLLATE \"C\" >= $3"
        "                AND id COLLATE \"C\" < $3 || '~'))"
        "           AND ($4 = '' OR status = $4)"
        "         ORDER BY id COLLATE \"C\" LIMIT $2::int) t");
}


static void
ngx_http_tenant_api_stores_status(ngx_http_tenant_api_ctx_t *ctx)
{
    /* a non-empty arg[1] names the list "stores" in the answer */
    ngx_str_set(&ctx->arg[1], "stores");

    ngx_http_tenant_api_list_page(ctx,
        "SELECT coalesce(json_agg(json_build_object('tenant_name', t.id,"
        "         'status', t.status, 'site_type', t.blueprint,"
        "         'theme', t.theme) ORDER BY t.id), '[]'),"
        "       CASE WHEN count(*) = $2::int THEN max(t.id) END"
        "  FROM (SELECT * FROM tenants WHERE id > $1"
        "           AND $3 = '' AND $4 = ''"
        "         ORDER BY id LIMIT $2::int) t");
}


static void
ngx_http_tenant_api_get_done(ngx_http_tenant_api_ctx_t *ctx, PGresult *res)
{
    if (ngx_http_tenant_api_tenant_row(ctx, res) != NGX_OK) {
        return;
    }

    ngx_http_tenant_api_reply(ctx, NGX_HTTP_OK,
                              json_pack("{s:o}", "tenant",
                                        ngx_http_tenant_api_json(res, 0)));
}


static void
ngx_http_tenant_api_get(ngx_http_tenant_api_ctx_t *ctx)
{
    ngx_str_t  name;

    if (ngx_http_tenant_api_name_arg(ctx, &name) != NGX_OK) {
        return;
    }

    (void) ngx_http_tenant_api_query(ctx, "SELECT tenant_detail($1)",
                                     ngx_http_tenant_api_get_done, 1,
                                     name.data);
}


/* --- create: POST /tenants and POST /create-store ------------------------ */


static const char  ngx_http_tenant_api_create_sql[] =
    "SELECT * FROM tenant_create($1, $2, $3, $4, $5, $8, $9,"
    " $6::integer, $7::integer)";


static void
ngx_http_tenant_api_created(ngx_http_tenant_api_ctx_t *ctx, PGresult *res)
{
    char        *bad, *msg;
    const char  *constraint;

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        constraint = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);

        if (constraint && ngx_strcmp(constraint, "tenants_pkey") == 0) {
            ngx_http_tenant_api_conflict(ctx, "tenant_exists",
                                         "a tenant with this name exists",
                                         "name");
            return;
        }

        if (constraint
            && ngx_strcmp(constraint, "jobs_idempotency_key_key") == 0)
        {
            /* the same key raced us: answer what the first request made */
            (void) ngx_http_tenant_api_query(ctx,
                                          ngx_http_tenant_api_replay_sql,
                                          ngx_http_tenant_api_replayed, 1,
                                          ctx->idempotency.data);
            return;
        }

        ngx_http_tenant_api_db_error(ctx, res);
        return;
    }

    if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
        /* "field|message", or "rate|seconds" */
        bad = PQgetvalue(res, 0, 0);
        msg = ngx_strchr(bad, '|');

        if (msg == NULL) {
            ngx_http_tenant_api_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                      "internal", "bad registry answer",
                                      NULL);
            return;
        }

        *msg++ = '\0';

        if (ngx_strcmp(bad, "rate") == 0) {
            ngx_http_tenant_api_rate_limited(ctx, msg,
                                             "this key has made as many "
                                             "tenants as allowed for now");
            return;
        }

        ngx_http_tenant_api_error(ctx, 422,
                                  ngx_strcmp(bad, "theme") == 0
                                  ? "invalid_theme"
                                  : ngx_strcmp(bad, "mode") == 0
                                  ? "invalid_mode" : "invalid_blueprint",
                                  msg,
                                  ngx_strcmp(bad, "driver") == 0
                                  ? "blueprint" : bad);
        return;
    }

    ngx_http_tenant_api_job_reply(ctx, res);
}


/*
 * Fields in the order of the create statement's first five params; the
 * aliases map their own names onto them.
 */

static void
ngx_http_tenant_api_create_fields(ngx_http_tenant_api_ctx_t *ctx,
    const char **names, const char **known)
{
    u_char                      *limit, *window;
    ngx_str_t                    v[5];
    ngx_uint_t                   i;
    const char                  *why;
    ngx_http_tenant_api_stmt_t  *st;

    static const char  *defaults[] = { NULL, NULL, "default", "dedicated",
                                       NULL };

    if (ngx_http_tenant_api_only(ctx, known) != NGX_OK) {
        return;
    }

    for (i = 0; i < 5; i++) {
        ngx_str_null(&v[i]);

        if (names[i] == NULL) {
            continue;
        }

        why = ngx_http_tenant_api_str(ctx, names[i], i < 2, &v[i]);

        if (why) {
            ngx_http_tenant_api_error(ctx, 422, "invalid_field", why,
                                      names[i]);
            return;
        }
    }

    for (i = 0; i < 5; i++) {
        if (v[i].len == 0 && defaults[i]) {
            v[i].data = (u_char *) defaults[i];
            v[i].len = ngx_strlen(defaults[i]);
        }
    }

    if (v[4].len == 0) {
        v[4] = v[0];
    }

    why = tenant_name_check(v[0].data, v[0].len);
    if (why) {
        ngx_http_tenant_api_error(ctx, 422, "invalid_name", why, names[0]);
        return;
    }

    why = tenant_slug_check(v[1].data, v[1].len);
    if (why) {
        ngx_http_tenant_api_error(ctx, 422, "invalid_blueprint", why,
                                  names[1]);
        return;
    }

    why = tenant_slug_check(v[2].data, v[2].len);
    if (why) {
        ngx_http_tenant_api_error(ctx, 422, "invalid_theme", why, "theme");
        return;
    }

    if (!(v[3].len == 9 && ngx_strncmp(v[3].data, "dedicated", 9) == 0)
        && !(v[3].len == 6 && ngx_strncmp(v[3].data, "shared", 6) == 0))
    {
        ngx_http_tenant_api_error(ctx, 422, "invalid_mode",
                                  "must be \"dedicated\" or \"shared\"",
                                  "mode");
        return;
    }

    why = ngx_http_tenant_api_check_text(v[4].data, v[4].len, 200);
    if (why) {
        ngx_http_tenant_api_error(ctx, 422, "invalid_display_name", why,
                                  "display_name");
        return;
    }

    st = ngx_http_tenant_api_stmt(ctx, ngx_http_tenant_api_create_sql,
                                  ngx_http_tenant_api_created);
    if (st == NULL) {
        return;
    }

    for (i = 0; i < 5; i++) {
        st->params[i] = (const char *) v[i].data;
    }

    limit = ngx_pnalloc(ctx->pool, 2 * (NGX_INT_T_LEN + 1));
    if (limit == NULL) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                  "internal", "out of memory", NULL);
        return;
    }

    window = ngx_sprintf(limit, "%ui", ctx->create_limit) + 1;
    *(window - 1) = '\0';
    *ngx_sprintf(window, "%T", ctx->create_window) = '\0';

    st->params[5] = (const char *) limit;
    st->params[6] = (const char *) window;
    st->nparams = 7;

    ngx_http_tenant_api_mutate(ctx, st);
}


static void
ngx_http_tenant_api_create(ngx_http_tenant_api_ctx_t *ctx)
{
    static const char  *names[] = { "name", "blueprint", "theme", "mode",
                                    "display_name" };
    static const char  *known[] = { "name", "blueprint", "theme", "mode",
                                    "display_name", NULL };

    ngx_http_tenant_api_create_fields(ctx, names, known);
}


/* the platform API this replaces: {"tenant_name","theme","site_type"} */

static void
ngx_http_tenant_api_create_store(ngx_http_tenant_api_ctx_t *ctx)
{
    static const char  *names[] = { "tenant_name", "site_type", "theme",
                                    NULL, NULL };
    static const char  *known[] = { "tenant_name", "site_type", "theme",
                                    NULL };

    ngx_http_tenant_api_create_fields(ctx, names, known);
}


/* --- lifecycle ----------------------------------------------------------- */


/* $1 name, $2 idempotency key, $3 actor; column 0 the status before */
static const char  ngx_http_tenant_api_delete_sql[] =
    "SELECT * FROM tenant_delete($1, $2, $3)";

static const char  ngx_http_tenant_api_suspend_sql[] =
    "SELECT * FROM tenant_suspend($1, $2, $3)";

static const char  ngx_http_tenant_api_resume_sql[] =
    "SELECT * FROM tenant_resume($1, $2, $3)";


static void
ngx_http_tenant_api_lifecycle(ngx_http_tenant_api_ctx_t *ctx, const char *sql,
    ngx_str_t *name)
{
    ngx_http_tenant_api_stmt_t  *st;

    st = ngx_http_tenant_api_stmt(ctx, sql, ngx_http_tenant_api_job_made);
    if (st == NULL) {
        return;
    }

    st->params[0] = (const char *) name->data;
    st->nparams = 1;

    ngx_http_tenant_api_mutate(ctx, st);
}


static void
ngx_http_tenant_api_delete(ngx_http_tenant_api_ctx_t *ctx)
{
    ngx_str_t  name;

    if (ngx_http_tenant_api_name_arg(ctx, &name) == NGX_OK) {
        ngx_http_tenant_api_lifecycle(ctx, ngx_http_tenant_api_delete_sql,
                                      &name);
    }
}


static void
ngx_http_tenant_api_suspend(ngx_http_tenant_api_ctx_t *ctx)
{
    ngx_str_t  name;

    if (ngx_http_tenant_api_name_arg(ctx, &name) == NGX_OK) {
        ngx_http_tenant_api_lifecycle(ctx, ngx_http_tenant_api_suspend_sql,
                                      &name);
    }
}


static void
ngx_http_tenant_api_resume(ngx_http_tenant_api_ctx_t *ctx)
{
    ngx_str_t  name;

    if (ngx_http_tenant_api_name_arg(ctx, &name) == NGX_OK) {
        ngx_http_tenant_api_lifecycle(ctx, ngx_http_tenant_api_resume_sql,
                                      &name);
    }
}


static void
ngx_http_tenant_api_delete_store(ngx_http_tenant_api_ctx_t *ctx)
{
    ngx_str_t    name;
    const char  *why;

    static const char  *known[] = { "tenant_name", NULL };

    if (ngx_http_tenant_api_only(ctx, known) != NGX_OK) {
        return;
    }

    why = ngx_http_tenant_api_str(ctx, "tenant_name", 1, &name);

    if (why == NULL && tenant_slug_check(name.data, name.len)) {
        why = "no tenant has this name";
    }

    if (why) {
        ngx_http_tenant_api_error(ctx, 422, "invalid_field", why,
                                  "tenant_name");
        return;
    }

    ngx_http_tenant_api_lifecycle(ctx, ngx_http_tenant_api_delete_sql, &name);
}


/* $1 name, $2 email, $3 password, $4 idempotency key, $5 actor */

static const char  ngx_http_tenant_api_seed_sql[] =
    "SELECT * FROM tenant_seed_admin($1, $2, $3, $4, $5)";


static void
ngx_http_tenant_api_seed_admin(ngx_http_tenant_api_ctx_t *ctx)
{
    ngx_str_t                    name, email, password;
    const char                  *why, *field;
    ngx_http_tenant_api_stmt_t  *st;

    static const char  *known[] = { "email", "password", NULL };

    if (ngx_http_tenant_api_name_arg(ctx, &name) != NGX_OK
        || ngx_http_tenant_api_only(ctx, known) != NGX_OK)
    {
        return;
    }

    field = "email";
    why = ngx_http_tenant_api_str(ctx, field, 1, &email);

    if (why == NULL) {
        why = ngx_http_tenant_api_check_email(email.data, email.len);
    }

    if (why == NULL) {
        field = "password";
        why = ngx_http_tenant_api_str(ctx, field, 1, &password);
    }

    if (why == NULL) {
        why = ngx_http_tenant_api_check_password(password.data, password.len);
    }

    if (why) {
        ngx_http_tenant_api_error(ctx, 422, "invalid_field", why, field);
        return;
    }

    st = ngx_http_tenant_api_stmt(ctx, ngx_http_tenant_api_seed_sql,
                                  ngx_http_tenant_api_job_made);
    if (st == NULL) {
        return;
    }

    st->params[0] = (const char *) name.data;
    st->params[1] = (const char *) email.data;
    st->params[2] = (const char *) password.data;
    st->nparams = 3;

    ngx_http_tenant_api_mutate(ctx, st);
}


/* logs: a job the provisioner answers; held up to ?wait (default 10 s) */

static void
ngx_http_tenant_api_logs(ngx_http_tenant_api_ctx_t *ctx)
{
    u_char     num[NGX_INT_T_LEN + 1];
    ngx_int_t  lines;
    ngx_str_t  name;

    if (ngx_http_tenant_api_name_arg(ctx, &name) != NGX_OK) {
        return;
    }

    lines = ngx_http_tenant_api_number(ctx, &ctx->args.lines, "lines", 100,
                                       1, 10000);
    if (lines == NGX_ERROR) {
        return;
    }

    if (ctx->wait < 0) {
        ctx->wait = 10;
    }

    *ngx_sprintf(num, "%i", lines) = '\0';

    (void) ngx_http_tenant_api_query(ctx,
        "SELECT * FROM tenant_logs($1, $2::int, $3, 60)",
        ngx_http_tenant_api_logs_made, 3, name.data, num, ctx->actor.data);
}


/* a coalesced or new logs job, or "rate|seconds": 60 a minute per key */

static void
ngx_http_tenant_api_logs_made(ngx_http_tenant_api_ctx_t *ctx, PGresult *res)
{
    char  *state;

    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1
        && !PQgetisnull(res, 0, 0))
    {
        state = PQgetvalue(res, 0, 0);

        if (ngx_strncmp(state, "rate|", 5) == 0) {
            ngx_http_tenant_api_rate_limited(ctx, state + 5,
                                             "this key has asked for 60 "
                                             "logs a minute");
            return;
        }
    }

    ngx_http_tenant_api_job_made(ctx, res);
}


/* --- custom domains ------------------------------------------------------ */


static void
ngx_http_tenant_api_domain_added(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res)
{
    static const ngx_http_tenant_api_conflict_t  conflicts[] = {
        { "tenant_hosts_pkey", "domain_taken", "this host is already in use",
          "host" },
        { NULL, NULL, NULL, NULL }
    };

    if (ngx_http_tenant_api_written(ctx, res, conflicts,
                                    "the tenant is being deleted")
        == NGX_OK)
    {
        /* a claim waits for its TXT record: 202, with what to publish */
        ngx_http_tenant_api_reply(ctx,
                                  ctx->verify_domains ? NGX_HTTP_ACCEPTED
                                                      : NGX_HTTP_CREATED,
                                  json_pack("{s:o}", "domain",
                                            ngx_http_tenant_api_json(res,
                                                                     1)));
    }
}


/*
 * POST tenants/{name}/domains/{host}/verify: an operator vouches for a
 * pending claim (audited with the key that did it).
 */

static void
ngx_http_tenant_api_domain_verified(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res)
{
    u_char  *msg;

    if (ngx_http_tenant_api_tenant_row(ctx, res) != NGX_OK) {
        return;
    }

    if (PQgetisnull(res, 0, 1)) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_NOT_FOUND, "no_such_claim",
                                  "the tenant has no claim on this host: "
                                  "POST tenants/{name}/domains first",
                                  "host");
        return;
    }

    if (ngx_strcmp(PQgetvalue(res, 0, 1), "pending") != 0) {
        msg = ngx_pnalloc(ctx->pool, 64);
        if (msg == NULL) {
            return;
        }

        *ngx_snprintf(msg, 63, "the claim is %s, not pending",
                      PQgetvalue(res, 0, 1)) = '\0';
        ngx_http_tenant_api_error(ctx, NGX_HTTP_CONFLICT, "wrong_status",
                                  (const char *) msg, NULL);
        return;
    }

    if (PQgetisnull(res, 0, 2)) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_CONFLICT, "domain_taken",
                                  "another tenant verified this domain first",
                                  "host");
        return;
    }

    ngx_http_tenant_api_reply(ctx, NGX_HTTP_OK,
                              json_pack("{s:o}", "domain",
                                        ngx_http_tenant_api_json(res, 2)));
}


static void
ngx_http_tenant_api_domain_verify(ngx_http_tenant_api_ctx_t *ctx)
{
    u_char      *buf, *how;
    size_t       n;
    ngx_str_t    name, host;
    const char  *why;

    if (ngx_http_tenant_api_name_arg(ctx, &name) != NGX_OK
        || ngx_http_tenant_api_arg(ctx, 1, &host) != NGX_OK)
    {
        return;
    }

    buf = ngx_pnalloc(ctx->pool, NGX_HTTP_TENANT_HOST_MAX + 1);
    how = ngx_pnalloc(ctx->pool, ctx->actor.len + 32);
    if (buf == NULL || how == NULL) {
        return;
    }

    why = ngx_http_tenant_api_check_domain(buf, host.data, host.len, &n);

    if (why) {
        ngx_http_tenant_api_error(ctx, 422, "invalid_host", why, "host");
        return;
    }

    buf[n] = '\0';
    *ngx_sprintf(how, "verified by hand by %V", &ctx->actor) = '\0';

    (void) ngx_http_tenant_api_query(ctx,
        "WITH c AS (SELECT status FROM domain_claims"
        "            WHERE host = $2 AND tenant_id = $1)"
        " SELECT (SELECT status FROM tenants WHERE id = $1),"
        "        (SELECT status FROM c),"
        "        CASE WHEN (SELECT status FROM c) = 'pending'"
        "             THEN domain_claim_verified($2, $1, $3, $4) END",
        ngx_http_tenant_api_domain_verified, 4, name.data, buf, how,
        ctx->actor.data);
}


static void
ngx_http_tenant_api_domain_add(ngx_http_tenant_api_ctx_t *ctx)
{
    u_char       *buf;
    size_t        n;
    ngx_str_t     name, host, role;
    const char   *why;

    static const char  *known[] = { "host", "role", NULL };

    if (ngx_http_tenant_api_name_arg(ctx, &name) != NGX_OK
        || ngx_http_tenant_api_only(ctx, known) != NGX_OK)
    {
        return;
    }

    why = ngx_http_tenant_api_str(ctx, "host", 1, &host);

    if (why) {
        ngx_http_tenant_api_error(ctx, 422, "invalid_field", why, "host");
        return;
    }

    buf = ngx_pnalloc(ctx->pool, NGX_HTTP_TENANT_HOST_MAX + 1);
    if (buf == NULL) {
        return;
    }

    why = ngx_http_tenant_api_check_domain(buf, host.data, host.len, &n);

    if (why == NULL && ngx_http_tenant_host_is_platform(ctx->tmcf, buf, n))
    {
        why = "is a platform host: it belongs to the host patterns";
    }

    /*
     * Under another tenant's host (login.admin.bravo.localhost), at the
     * platform's apex or above it: its cookies and its name would be the
     * platform's and its tenants'. Custom domains are the tenant's own.
     */
    if (why == NULL && ngx_http_tenant_host_in_domain(ctx->tmcf, buf, n))
    {
        why = "is at, under or above the platform's domain: a custom "
              "domain must be the tenant's own";
    }

    if (why) {
        ngx_http_tenant_api_error(ctx, 422, "invalid_host", why, "host");
        return;
    }

    buf[n] = '\0';

    why = ngx_http_tenant_api_str(ctx, "role", 0, &role);

    if (why == NULL && role.len
        && ngx_http_tenant_role_parse(role.data, role.len) == NGX_ERROR)
    {
        why = "must be \"site\" or \"admin\"";
    }

    if (why) {
        ngx_http_tenant_api_error(ctx, 422, "invalid_field", why, "role");
        return;
    }

    (void) ngx_http_tenant_api_query(ctx,
        ctx->verify_domains
        ? "SELECT * FROM tenant_domain_claim($1, $2, $3, $4)"
        : "SELECT * FROM tenant_domain_add($1, $2, $3, $4)",
        ngx_http_tenant_api_domain_added, 4, name.data, buf,
        role.len ? (char *) role.data : "site", ctx->actor.data);
}


static void
ngx_http_tenant_api_domain_deleted(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res)
{
    if (ngx_http_tenant_api_tenant_row(ctx, res) != NGX_OK) {
        return;
    }

    if (PQgetisnull(res, 0, 1)) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_NOT_FOUND, "no_such_domain",
                                  "the tenant has no such domain", "host");
        return;
    }

    ngx_http_tenant_api_reply(ctx, NGX_HTTP_OK,
                              json_pack("{s:o, s:b}", "domain",
                                        ngx_http_tenant_api_json(res, 1),
                                        "deleted", 1));
}


static void
ngx_http_tenant_api_domain_del(ngx_http_tenant_api_ctx_t *ctx)
{
    u_char     *buf;
    size_t      n;
    ngx_str_t   name, host;

    if (ngx_http_tenant_api_name_arg(ctx, &name) != NGX_OK
        || ngx_http_tenant_api_arg(ctx, 1, &host) != NGX_OK)
    {
        return;
    }

    buf = ngx_pnalloc(ctx->pool, NGX_HTTP_TENANT_HOST_MAX + 1);
    if (buf == NULL) {
        return;
    }

    if (ngx_http_tenant_api_check_domain(buf, host.data, host.len, &n)) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_NOT_FOUND, "no_such_domain",
                                  "the tenant has no such domain", "host");
        return;
    }

    buf[n] = '\0';

    (void) ngx_http_tenant_api_query(ctx,
        "SELECT * FROM tenant_domain_remove($1, $2, $3)",
        ngx_http_tenant_api_domain_deleted, 3, name.data, buf,
        ctx->actor.data);
}
