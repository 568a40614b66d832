
/*
 * The admin API's backups and fleet migrations: each route one statement
 * of a SQL function the CLI shares (migration 016).  Backups, restores,
 * clones and verifications are jobs the provisioner runs, answered like
 * every job (202, or the finished job with ?wait).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_tenant_api.h"
#include "ngx_http_tenant_api_validate.h"
#include "tenant_names.h"


static ngx_int_t ngx_http_tenant_api_id_arg(ngx_http_tenant_api_ctx_t *ctx,
    const char *what, ngx_str_t *id);
static void ngx_http_tenant_api_backups_done(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res);
static void ngx_http_tenant_api_backup_done(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res);
static void ngx_http_tenant_api_backup_job(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res);
static void ngx_http_tenant_api_backup_on(ngx_http_tenant_api_ctx_t *ctx,
    const char *sql);
static void ngx_http_tenant_api_migration_done(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res);
static void ngx_http_tenant_api_migration_made(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res);
static void ngx_http_tenant_api_migrations_done(
    ngx_http_tenant_api_ctx_t *ctx, PGresult *res);


/* a backup's or migration's id in the path: one that cannot exist is 404 */

static ngx_int_t
ngx_http_tenant_api_id_arg(ngx_http_tenant_api_ctx_t *ctx, const char *what,
    ngx_str_t *id)
{
    u_char      msg[64];
    ngx_uint_t  i;

    if (ngx_http_tenant_api_arg(ctx, 0, id) != NGX_OK) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                  "internal", "out of memory", NULL);
        return NGX_ERROR;
    }

    for (i = 0; i < id->len; i++) {
        if (id->data[i] < '0' || id->data[i] > '9') {
            break;
        }
    }

    if (id->len == 0 || id->len > 18 || i < id->len || id->data[0] == '0') {
        *ngx_snprintf(msg, sizeof(msg) - 1, "no %s has this id", what) = '\0';
        ngx_http_tenant_api_error(ctx, NGX_HTTP_NOT_FOUND,
                                  what[0] == 'b' ? "no_such_backup"
                                                 : "no_such_migration",
                                  (const char *) msg, "id");
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* --- backups ------------------------------------------------------------- */


/* GET tenants/{name}/backups: newest first; a tenant gone has its last */

void
ngx_http_tenant_api_backups(ngx_http_tenant_api_ctx_t *ctx)
{
    ngx_str_t  name;

    if (ngx_http_tenant_api_name_arg(ctx, &name) != NGX_OK) {
        return;
    }

    (void) ngx_http_tenant_api_query(ctx,
        "SELECT tenant_backups_json($1, 100),"
        "       EXISTS (SELECT 1 FROM tenants WHERE id = $1)"
        "       OR EXISTS (SELECT 1 FROM tenant_backups WHERE tenant_id = $1)",
        ngx_http_tenant_api_backups_done, 1, name.data);
}


static void
ngx_http_tenant_api_backups_done(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res)
{
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        ngx_http_tenant_api_db_error(ctx, res);
        return;
    }

    if (PQgetvalue(res, 0, 1)[0] != 't') {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_NOT_FOUND, "no_such_tenant",
                                  "no tenant has this name", "name");
        return;
    }

    ngx_http_tenant_api_wrap(ctx, res, "backups", "no_such_tenant",
                             "no tenant has this name", "name");
}


/* POST tenants/{name}/backups, body optional: {"verify": true} */

static const char  ngx_http_tenant_api_backup_sql[] =
    "SELECT * FROM tenant_backup($1, $2::boolean, $3, $4)";


void
ngx_http_tenant_api_backup_create(ngx_http_tenant_api_ctx_t *ctx)
{
    json_t                      *v;
    ngx_str_t                    name;
    ngx_http_tenant_api_stmt_t  *st;

    static const char  *known[] = { "verify", NULL };

    if (ngx_http_tenant_api_name_arg(ctx, &name) != NGX_OK
        || (ctx->body && ngx_http_tenant_api_only(ctx, known) != NGX_OK))
    {
        return;
    }

    v = ctx->body ? json_object_get(ctx->body, "verify") : NULL;

    if (v && !json_is_boolean(v)) {
        ngx_http_tenant_api_error(ctx, 422, "invalid_field",
                                  "must be true or false", "verify");
        return;
    }

    st = ngx_http_tenant_api_stmt(ctx, ngx_http_tenant_api_backup_sql,
                                  ngx_http_tenant_api_job_made);
    if (st == NULL) {
        return;
    }

    st->params[0] = (const char *) name.data;
    st->params[1] = json_is_false(v) ? "false" : "true";
    st->nparams = 2;

    ngx_http_tenant_api_mutate(ctx, st);
}


/* GET backups/{id}: its manifest and verification */

void
ngx_http_tenant_api_backup_get(ngx_http_tenant_api_ctx_t *ctx)
{
    ngx_str_t  id;

    if (ngx_http_tenant_api_id_arg(ctx, "backup", &id) != NGX_OK) {
        return;
    }

    (void) ngx_http_tenant_api_query(ctx,
        "SELECT backup_json(b), b.tables FROM tenant_backups b"
        " WHERE b.id = $1::bigint",
        ngx_http_tenant_api_backup_done, 1, id.data);
}


static void
ngx_http_tenant_api_backup_done(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res)
{
    json_t  *b, *tables;

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_tenant_api_db_error(ctx, res);
        return;
    }

    if (PQntuples(res) != 1) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_NOT_FOUND,
                                      "no_such_backup",
                                      "no backup has this id", "id");
        return;
    }

    b = ngx_http_tenant_api_json(res, 0);
    tables = ngx_http_tenant_api_json(res, 1);

    if (b == NULL || tables == NULL) {
        json_decref(b);
        json_decref(tables);
        ngx_http_tenant_api_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                  "internal", "bad registry answer", NULL);
        return;
    }

    ngx_http_tenant_api_reply(ctx, NGX_HTTP_OK,
                              json_pack("{s:o, s:o}", "backup", b,
                                        "manifest", tables));
}


/*
 * Column 0 of backup_verify, _restore and _clone: "backup" (no such
 * backup: 404), why nothing was made (409), or NULL and the job.
 */

static void
ngx_http_tenant_api_backup_job(ngx_http_tenant_api_ctx_t *ctx, PGresult *res)
{
    char  *state, *constraint;

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        constraint = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);

        if (constraint && ngx_strcmp(constraint, "tenants_pkey") == 0) {
            ngx_http_tenant_api_error(ctx, NGX_HTTP_CONFLICT, "tenant_exists",
                                      "a tenant with this name exists",
                                      "name");
            return;
        }

        if (constraint && ngx_strcmp(constraint, "jobs_one_pending") == 0) {
            ngx_http_tenant_api_error(ctx, NGX_HTTP_CONFLICT, "job_pending",
                                      "the same job is already queued or "
                                      "running for this tenant", NULL);
            return;
        }

        ngx_http_tenant_api_db_error(ctx, res);
        return;
    }

    if (PQntuples(res) != 1) {
        ngx_http_tenant_api_db_error(ctx, res);
        return;
    }

    if (!PQgetisnull(res, 0, 0)) {
        state = PQgetvalue(res, 0, 0);

        if (ngx_strcmp(state, "backup") == 0) {
            ngx_http_tenant_api_error(ctx, NGX_HTTP_NOT_FOUND,
                                      "no_such_backup",
                                      "no backup has this id", "id");
            return;
        }

        ngx_http_tenant_api_error(ctx, NGX_HTTP_CONFLICT, "not_restorable",
                                  state, NULL);
        return;
    }

    ngx_http_tenant_api_job_reply(ctx, res);
}


static void
ngx_http_tenant_api_backup_on(ngx_http_tenant_api_ctx_t *ctx, const char *sql)
{
    ngx_str_t                    id;
    ngx_http_tenant_api_stmt_t  *st;

    if (ngx_http_tenant_api_id_arg(ctx, "backup", &id) != NGX_OK) {
        return;
    }

    st = ngx_http_tenant_api_stmt(ctx, sql, ngx_http_tenant_api_backup_job);
    if (st == NULL) {
        return;
    }

    st->params[0] = (const char *) id.data;
    st->nparams = 1;

    ngx_http_tenant_api_mutate(ctx, st);
}


void
ngx_http_tenant_api_backup_verify(ngx_http_tenant_api_ctx_t *ctx)
{
    ngx_http_tenant_api_backup_on(ctx,
        "SELECT * FROM backup_verify($1::bigint, $2, $3)");
}


void
ngx_http_tenant_api_backup_restore(ngx_http_tenant_api_ctx_t *ctx)
{
    ngx_http_tenant_api_backup_on(ctx,
        "SELECT * FROM backup_restore($1::bigint, $2, $3)");
}


/* POST backups/{id}/clone {"name", "display_name"} */

void
ngx_http_tenant_api_backup_clone(ngx_http_tenant_api_ctx_t *ctx)
{
    ngx_str_t                    id, name, display;
    const char                  *why;
    ngx_http_tenant_api_stmt_t  *st;

    static const char  *known[] = { "name", "display_name", NULL };

    if (ngx_http_tenant_api_id_arg(ctx, "backup", &id) != NGX_OK
        || ngx_http_tenant_api_only(ctx, known) != NGX_OK)
    {
        return;
    }

    why = ngx_http_tenant_api_str_max(ctx, "name", 1, 30, &name);

    if (why == NULL) {
        why = tenant_name_check(name.data, name.len);
    }

    if (why) {
        ngx_http_tenant_api_error(ctx, 422, "invalid_name", why, "name");
        return;
    }

    why = ngx_http_tenant_api_str_max(ctx, "display_name", 0, 200, &display);

    if (why == NULL && display.data) {
        why = ngx_http_tenant_api_check_text(display.data, display.len, 200);
    }

    if (why) {
        ngx_http_tenant_api_error(ctx, 422, "invalid_display_name", why,
                                  "display_name");
        return;
    }

    st = ngx_http_tenant_api_stmt(ctx,
             "SELECT * FROM backup_clone($1::bigint, $2, $3, $4, $5)",
             ngx_http_tenant_api_backup_job);
    if (st == NULL) {
        return;
    }

    st->params[0] = (const char *) id.data;
    st->params[1] = (const char *) name.data;
    st->params[2] = (const char *) display.data;
    st->nparams = 3;

    ngx_http_tenant_api_mutate(ctx, st);
}


/* --- fleet migrations ------------------------------------------------------ */


/* GET migrations: the newest 50 */

void
ngx_http_tenant_api_migrations(ngx_http_tenant_api_ctx_t *ctx)
{
    (void) ngx_http_tenant_api_query(ctx,
        "SELECT coalesce(json_agg(fleet_json(m) ORDER BY m.id DESC), '[]')"
        "  FROM (SELECT * FROM fleet_migrations ORDER BY id DESC LIMIT 50) m",
        ngx_http_tenant_api_migrations_done, 0);
}


static void
ngx_http_tenant_api_migrations_done(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res)
{
    ngx_http_tenant_api_wrap(ctx, res, "migrations", "no_such_migration",
                             "no migration", "id");
}


/* POST migrations {"blueprint", "wave_size": 10, "max_failures": 0} */

void
ngx_http_tenant_api_migration_start(ngx_http_tenant_api_ctx_t *ctx)
{
    u_char       wave[NGX_INT_T_LEN + 1], fails[NGX_INT_T_LEN + 1];
    json_t      *v;
    ngx_str_t    bp;
    const char  *why;
    json_int_t   n[2];
    ngx_uint_t   i;

    static const char  *known[] = { "blueprint", "wave_size", "max_failures",
                                    NULL };
    static const char  *fields[] = { "wave_size", "max_failures" };
    static const char  *ranges[] = { "must be an integer, 1-1000",
                                     "must be an integer, 0-1000000" };
    static const json_int_t  defaults[] = { 10, 0 };
    static const json_int_t  lo[] = { 1, 0 };
    static const json_int_t  hi[] = { 1000, 1000000 };

    if (ngx_http_tenant_api_only(ctx, known) != NGX_OK) {
        return;
    }

    why = ngx_http_tenant_api_str_max(ctx, "blueprint", 1, 64, &bp);

    if (why == NULL) {
        why = tenant_slug_check(bp.data, bp.len);
    }

    if (why) {
        ngx_http_tenant_api_error(ctx, 422, "invalid_blueprint", why,
                                  "blueprint");
        return;
    }

    for (i = 0; i < 2; i++) {
        v = json_object_get(ctx->body, fields[i]);
        n[i] = v ? (json_is_integer(v) ? json_integer_value(v) : -1)
                 : defaults[i];

        if (n[i] < lo[i] || n[i] > hi[i]) {
            ngx_http_tenant_api_error(ctx, 422, "invalid_field", ranges[i],
                                      fields[i]);
            return;
        }
    }

    *ngx_sprintf(wave, "%L", (int64_t) n[0]) = '\0';
    *ngx_sprintf(fails, "%L", (int64_t) n[1]) = '\0';

    (void) ngx_http_tenant_api_query(ctx,
        "SELECT * FROM fleet_start($1, $2::integer, $3::integer, $4)",
        ngx_http_tenant_api_migration_made, 4, bp.data, wave, fails,
        ctx->actor.data);
}


/* state, migration: fleet_start's and fleet_resume's answer */

static void
ngx_http_tenant_api_migration_made(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res)
{
    char    *state, *constraint;
    json_t  *m;

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        constraint = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);

        if (constraint && ngx_strcmp(constraint, "fleet_one_open") == 0) {
            ngx_http_tenant_api_error(ctx, NGX_HTTP_CONFLICT,
                                      "migration_open",
                                      "this blueprint has a migration "
                                      "running or halted: resume it or let "
                                      "it finish", "blueprint");
            return;
        }

        ngx_http_tenant_api_db_error(ctx, res);
        return;
    }

    if (PQntuples(res) != 1) {
        ngx_http_tenant_api_db_error(ctx, res);
        return;
    }

    if (!PQgetisnull(res, 0, 0)) {
        state = PQgetvalue(res, 0, 0);

        if (ngx_strncmp(state, "blueprint|", 10) == 0) {
            ngx_http_tenant_api_error(ctx, 422, "invalid_blueprint",
                                      state + 10, "blueprint");
            return;
        }

        if (ngx_strcmp(state, "migration") == 0) {
            ngx_http_tenant_api_error(ctx, NGX_HTTP_NOT_FOUND,
                                      "no_such_migration",
                                      "no migration has this id", "id");
            return;
        }

        ngx_http_tenant_api_error(ctx, NGX_HTTP_CONFLICT, "wrong_status",
                                  state, NULL);
        return;
    }

    m = ngx_http_tenant_api_json(res, 1);

    if (m == NULL) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                  "internal", "bad registry answer", NULL);
        return;
    }

    /* a new migration is made; a resumed one goes on */
    ngx_http_tenant_api_reply(ctx, ngx_strcmp(ctx->route->path, "migrations")
                                   == 0 ? NGX_HTTP_CREATED : NGX_HTTP_OK,
                              json_pack("{s:o}", "migration", m));
}


/* GET migrations/{id}?status=: the migration and each tenant's part */

void
ngx_http_tenant_api_migration_get(ngx_http_tenant_api_ctx_t *ctx)
{
    ngx_str_t    id;
    const char  *status;

    static const char  *statuses[] = { "pending", "queued", "migrated",
                                       "rolled_back", "failed", "skipped",
                                       NULL };

    if (ngx_http_tenant_api_id_arg(ctx, "migration", &id) != NGX_OK) {
        return;
    }

    if (ngx_http_tenant_api_status_arg(ctx, statuses,
                                       "status must be pending, queued, "
                                       "migrated, rolled_back, failed or "
                                       "skipped", &status)
        != NGX_OK)
    {
        return;
    }

    (void) ngx_http_tenant_api_query(ctx,
        "SELECT fleet_detail($1::bigint, $2)",
        ngx_http_tenant_api_migration_done, 2, id.data, status);
}


static void
ngx_http_tenant_api_migration_done(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res)
{
    ngx_http_tenant_api_wrap(ctx, res, "migration", "no_such_migration",
                             "no migration has this id", "id");
}


/* POST migrations/{id}/resume: a halted one goes on, failures retried */

void
ngx_http_tenant_api_migration_resume(ngx_http_tenant_api_ctx_t *ctx)
{
    ngx_str_t  id;

    if (ngx_http_tenant_api_id_arg(ctx, "migration", &id) != NGX_OK) {
        return;
    }

    (void) ngx_http_tenant_api_query(ctx,
        "SELECT * FROM fleet_resume($1::bigint, $2)",
        ngx_http_tenant_api_migration_made, 2, id.data, ctx->actor.data);
}
