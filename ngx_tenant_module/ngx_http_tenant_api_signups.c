
/*
 * Sign-ups: anyone may ask to join a tenant that takes them (public,
 * limited per address); the tenant's admin (its own key) lists them and
 * approves or rejects each, which queues the signed webhook to its stack
 * (migration 018).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_tenant_api.h"
#include "ngx_http_tenant_api_validate.h"
#include "tenant_names.h"


/* requests an address may make an hour, across every tenant */
#define NGX_HTTP_TENANT_API_SIGNUPS_LIMIT   "10"
#define NGX_HTTP_TENANT_API_SIGNUPS_WINDOW  "3600"


static void ngx_http_tenant_api_signup_made(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res);
static void ngx_http_tenant_api_signups_done(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res);
static void ngx_http_tenant_api_signup_decided(
    ngx_http_tenant_api_ctx_t *ctx, PGresult *res);
static void ngx_http_tenant_api_signup_settings_done(
    ngx_http_tenant_api_ctx_t *ctx, PGresult *res);
static void ngx_http_tenant_api_signup_decide(ngx_http_tenant_api_ctx_t *ctx,
    const char *approve);


/* POST signups {"tenant", "email", "name"}: no key, 10 an hour an address */

void
ngx_http_tenant_api_signup(ngx_http_tenant_api_ctx_t *ctx)
{
    ngx_str_t    tenant, email, name;
    const char  *why, *field;

    static const char  *known[] = { "tenant", "email", "name", NULL };

    if (ngx_http_tenant_api_only(ctx, known) != NGX_OK) {
        return;
    }

    field = "tenant";
    why = ngx_http_tenant_api_str_max(ctx, field, 1, 30, &tenant);

    if (why == NULL) {
        why = tenant_slug_check(tenant.data, tenant.len);
    }

    if (why == NULL) {
        field = "email";
        why = ngx_http_tenant_api_str_max(ctx, field, 1, 254, &email);
    }

    if (why == NULL) {
        why = ngx_http_tenant_api_check_email(email.data, email.len);
    }

    if (why == NULL) {
        field = "name";
        why = ngx_http_tenant_api_str_max(ctx, field, 0, 200, &name);
    }

    if (why == NULL && name.data) {
        why = ngx_http_tenant_api_check_text(name.data, name.len, 200);
    }

    if (why) {
        ngx_http_tenant_api_error(ctx, 422, "invalid_field", why, field);
        return;
    }

    (void) ngx_http_tenant_api_query(ctx,
        "SELECT * FROM signup_request($1, $2, coalesce($3, ''), $4,"
        " " NGX_HTTP_TENANT_API_SIGNUPS_LIMIT ", "
        NGX_HTTP_TENANT_API_SIGNUPS_WINDOW ")",
        ngx_http_tenant_api_signup_made, 4, tenant.data, email.data,
        name.data, ctx->address ? ctx->address : "");
}


static void
ngx_http_tenant_api_signup_made(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res)
{
    char    *state;
    json_t  *s;

    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        ngx_http_tenant_api_db_error(ctx, res);
        return;
    }

    if (!PQgetisnull(res, 0, 0)) {
        state = PQgetvalue(res, 0, 0);

        if (ngx_strncmp(state, "rate|", 5) == 0) {
            ctx->retry_after = ngx_atotm((u_char *) state + 5,
                                         ngx_strlen(state + 5));
            if (ctx->retry_after == NGX_ERROR) {
                ctx->retry_after = 0;
            }

            ngx_http_tenant_api_error(ctx, NGX_HTTP_TOO_MANY_REQUESTS,
                                      "rate_limited",
                                      "too many sign-ups from this address: "
                                      "retry after Retry-After seconds",
                                      NULL);
            return;
        }

        if (ngx_strcmp(state, "exists") == 0) {
            ngx_http_tenant_api_error(ctx, NGX_HTTP_CONFLICT,
                                      "signup_exists",
                                      "this email has asked to join this "
                                      "tenant already", "email");
            return;
        }

        ngx_http_tenant_api_error(ctx, NGX_HTTP_NOT_FOUND, "no_such_tenant",
                                  "no tenant of this name takes sign-ups",
                                  "tenant");
        return;
    }

    s = ngx_http_tenant_api_json(res, 1);

    if (s == NULL) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                  "internal", "bad registry answer", NULL);
        return;
    }

    /* the asker learns its request's id and state, nothing more */
    ngx_http_tenant_api_reply(ctx, NGX_HTTP_ACCEPTED,
                              json_pack("{s:{s:O, s:s}}", "signup",
                                        "id", json_object_get(s, "id"),
                                        "status", "pending"));
    json_decref(s);
}


/* GET tenants/{name}/signups?status=pending|approved|rejected */

void
ngx_http_tenant_api_signups(ngx_http_tenant_api_ctx_t *ctx)
{
    ngx_str_t    tenant;
    const char  *status;

    static const char  *statuses[] = { "pending", "approved", "rejected",
                                       NULL };

    if (ngx_http_tenant_api_name_arg(ctx, &tenant) != NGX_OK) {
        return;
    }

    if (ngx_http_tenant_api_status_arg(ctx, statuses,
                                       "status must be pending, approved or "
                                       "rejected", &status)
        != NGX_OK)
    {
        return;
    }

    (void) ngx_http_tenant_api_query(ctx,
        "SELECT tenant_signups_json($1, $2)",
        ngx_http_tenant_api_signups_done, 2, tenant.data, status);
}


static void
ngx_http_tenant_api_signups_done(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res)
{
    ngx_http_tenant_api_wrap(ctx, res, "signups", "no_such_tenant",
                             "no tenant has this name", "name");
}


/* PUT tenants/{name}/signups {"enabled", "webhook_path"} */

void
ngx_http_tenant_api_signup_settings(ngx_http_tenant_api_ctx_t *ctx)
{
    json_t      *v;
    ngx_str_t    tenant, path;
    ngx_uint_t   i;
    const char  *why;

    static const char  *known[] = { "enabled", "webhook_path", NULL };

    if (ngx_http_tenant_api_name_arg(ctx, &tenant) != NGX_OK
        || ngx_http_tenant_api_only(ctx, known) != NGX_OK)
    {
        return;
    }

    v = json_object_get(ctx->body, "enabled");

    if (!json_is_boolean(v)) {
        ngx_http_tenant_api_error(ctx, 422, "invalid_field",
                                  "is required: true or false", "enabled");
        return;
    }

    why = ngx_http_tenant_api_str_max(ctx, "webhook_path", 0, 200, &path);

    /* a path of the tenant's own stack, written into a request line */
    if (why == NULL && path.data) {
        if (path.len == 0 || path.data[0] != '/') {
            why = "must start with /";
        }

        for (i = 0; why == NULL && i < path.len; i++) {
            if (path.data[i] <= ' ' || path.data[i] >= 0x7f
                || path.data[i] == '?' || path.data[i] == '#')
            {
                why = "printable ASCII without spaces, ? or #";
            }
        }
    }

    if (why) {
        ngx_http_tenant_api_error(ctx, 422, "invalid_field", why,
                                  "webhook_path");
        return;
    }

    (void) ngx_http_tenant_api_query(ctx,
        "SELECT tenant_signup_settings($1, $2::boolean, $3, $4)",
        ngx_http_tenant_api_signup_settings_done, 4, tenant.data,
        json_is_true(v) ? "true" : "false", path.data, ctx->actor.data);
}


static void
ngx_http_tenant_api_signup_settings_done(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res)
{
    ngx_http_tenant_api_wrap(ctx, res, "signups", "no_such_tenant",
                             "no tenant has this name", "name");
}


/* POST tenants/{name}/signups/{id}/approve, .../reject {"reason"} */

void
ngx_http_tenant_api_signup_approve(ngx_http_tenant_api_ctx_t *ctx)
{
    ngx_http_tenant_api_signup_decide(ctx, "true");
}


void
ngx_http_tenant_api_signup_reject(ngx_http_tenant_api_ctx_t *ctx)
{
    ngx_http_tenant_api_signup_decide(ctx, "false");
}


static void
ngx_http_tenant_api_signup_decide(ngx_http_tenant_api_ctx_t *ctx,
    const char *approve)
{
    ngx_str_t    tenant, id, reason;
    ngx_uint_t   i;
    const char  *why;

    static const char  *known[] = { "reason", NULL };

    if (ngx_http_tenant_api_name_arg(ctx, &tenant) != NGX_OK) {
        return;
    }

    if (ngx_http_tenant_api_arg(ctx, 1, &id) != NGX_OK) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                  "internal", "out of memory", NULL);
        return;
    }

    for (i = 0; i < id.len; i++) {
        if (id.data[i] < '0' || id.data[i] > '9') {
            break;
        }
    }

    if (id.len == 0 || id.len > 18 || i < id.len) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_NOT_FOUND, "no_such_signup",
                                  "the tenant has no sign-up with this id",
                                  "id");
        return;
    }

    ngx_str_null(&reason);

    if (ctx->body) {
        if (ngx_http_tenant_api_only(ctx, known) != NGX_OK) {
            return;
        }

        why = ngx_http_tenant_api_str_max(ctx, "reason", 0, 500, &reason);

        if (why == NULL && reason.data) {
            why = ngx_http_tenant_api_check_text(reason.data, reason.len,
                                                 500);
        }

        if (why) {
            ngx_http_tenant_api_error(ctx, 422, "invalid_field", why,
                                      "reason");
            return;
        }
    }

    (void) ngx_http_tenant_api_query(ctx,
        "SELECT * FROM signup_decide($1, $2::bigint, $3::boolean, $4, $5)",
        ngx_http_tenant_api_signup_decided, 5, tenant.data, id.data, approve,
        reason.data, ctx->actor.data);
}


static void
ngx_http_tenant_api_signup_decided(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res)
{
    u_char  *msg;
    char    *state;
    json_t  *s, *j;

    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        ngx_http_tenant_api_db_error(ctx, res);
        return;
    }

    if (!PQgetisnull(res, 0, 0)) {
        state = PQgetvalue(res, 0, 0);

        if (ngx_strcmp(state, "signup") == 0) {
            ngx_http_tenant_api_error(ctx, NGX_HTTP_NOT_FOUND,
                                      "no_such_signup",
                                      "the tenant has no sign-up with this "
                                      "id", "id");
            return;
        }

        msg = ngx_pnalloc(ctx->pool, 64);
        if (msg == NULL) {
            ngx_http_tenant_api_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                      "internal", "out of memory", NULL);
            return;
        }

        *ngx_snprintf(msg, 63, "this sign-up was %s already", state) = '\0';
        ngx_http_tenant_api_error(ctx, NGX_HTTP_CONFLICT, "wrong_status",
                                  (const char *) msg, NULL);
        return;
    }

    s = ngx_http_tenant_api_json(res, 1);
    j = ngx_http_tenant_api_json(res, 2);

    if (s == NULL || j == NULL) {
        json_decref(s);
        json_decref(j);
        ngx_http_tenant_api_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                  "internal", "bad registry answer", NULL);
        return;
    }

    ngx_http_tenant_api_reply(ctx, NGX_HTTP_OK,
                              json_pack("{s:o, s:o}", "signup", s, "job", j));
}
