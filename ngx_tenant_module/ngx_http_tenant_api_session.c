
/*
 * Operators' sessions for the dashboard (migration 015): sign-in with a
 * name and a password, a session cookie, CSRF on every change.
 *
 *   - The password is checked against its yescrypt hash in one of nginx's
 *     thread pools ("default"): some 30 ms of CPU that would otherwise
 *     stop the worker.  An unknown name is checked against a dummy hash,
 *     so both take as long.
 *   - Past 5 failures for a name, or 20 from an address, in 15 minutes,
 *     sign-ins are refused with 429 and Retry-After before any hashing.
 *   - The cookie holds 32 random bytes; the registry knows their SHA-256
 *     only, so its rows cannot be replayed.  HttpOnly, SameSite=Strict,
 *     Secure over HTTPS, Path=/ on the platform host.
 *   - The CSRF token comes with the session (sign-in, GET session) and
 *     must come back as X-CSRF-Token with every request that is not a
 *     GET; SameSite=Strict already keeps other sites' forms out, the token
 *     keeps out whatever slips past it.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <ngx_thread_pool.h>
#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include "ngx_http_tenant_api.h"
#include "ngx_http_tenant_reply.h"


#define NGX_HTTP_TENANT_SESSION_TTL     43200
#define NGX_HTTP_TENANT_SESSION_TTL_S   "43200"
#define NGX_HTTP_TENANT_PASSWORD_MAX    1024


typedef struct {
    ngx_http_tenant_api_ctx_t      *ctx;
    char                           *password;
    char                           *hash;
    ngx_uint_t                      ok;
} ngx_http_tenant_signin_t;


static void ngx_http_tenant_api_signin_begun(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res);
static void ngx_http_tenant_api_signin_verify(void *data, ngx_log_t *log);
static void ngx_http_tenant_api_signin_verified(ngx_event_t *ev);
static void ngx_http_tenant_api_signin_failed(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res);
static void ngx_http_tenant_api_signin_made(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res);
static void ngx_http_tenant_api_session_found(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res);
static void ngx_http_tenant_api_signout_done(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res);
static ngx_int_t ngx_http_tenant_api_session_cookie(
    ngx_http_tenant_api_ctx_t *ctx, ngx_str_t *token, ngx_uint_t max_age);
static ngx_int_t ngx_http_tenant_api_session_hash(
    ngx_http_tenant_api_ctx_t *ctx, ngx_str_t *token);


static ngx_str_t  ngx_http_tenant_session_name =
    ngx_string(NGX_HTTP_TENANT_API_SESSION_COOKIE);

/* a yescrypt hash of a password nobody has: what an unknown name costs */
static const char  ngx_http_tenant_dummy_hash[] =
    "$y$j9T$4hvFL0bcKp853RgadNOXQ0$xrPSsAdG.Z9vW9f7uEmEq.uCRPx4zQ2uKcxFVS5tN6/";


/* POST session {"user", "password"} */

void
ngx_http_tenant_api_signin(ngx_http_tenant_api_ctx_t *ctx)
{
    size_t                     len;
    json_t                    *v;
    ngx_str_t                  user, password;
    const char                *why, *field;
    const char                *fields[] = { "user", "password", NULL };
    ngx_http_tenant_signin_t  *si;

    if (ngx_http_tenant_api_only(ctx, fields) != NGX_OK) {
        return;
    }

    field = "user";
    why = ngx_http_tenant_api_str_max(ctx, field, 1, 4096, &user);

    if (why == NULL && (user.len == 0 || user.len > 64)) {
        why = "1 to 64 characters";
    }

    if (why == NULL) {
        field = "password";
        why = ngx_http_tenant_api_str_max(ctx, field, 1, 4096, &password);

        if (why == NULL
            && (password.len == 0
                || password.len > NGX_HTTP_TENANT_PASSWORD_MAX))
        {
            why = "1 to 1024 characters";
        }
    }

    if (why) {
        ngx_http_tenant_api_error(ctx, 422, "invalid_field", why, field);
        return;
    }

    si = ngx_pcalloc(ctx->pool, sizeof(ngx_http_tenant_signin_t));
    if (si == NULL) {
        goto internal;
    }

    si->ctx = ctx;
    len = ngx_strlen(password.data);

    /*
     * Its own copy, wiped once checked, and the parsed body's wiped now
     * (the request's raw buffer goes with its pool, unwiped).
     */
    si->password = ngx_pnalloc(ctx->pool, len + 1);
    if (si->password == NULL) {
        goto internal;
    }

    ngx_memcpy(si->password, password.data, len + 1);
    ngx_explicit_memzero(password.data, len);

    v = json_object_get(ctx->body, "password");
    ngx_explicit_memzero((char *) json_string_value(v), json_string_length(v));

    ctx->data = si;
    ctx->user = user;

    (void) ngx_http_tenant_api_query(ctx,
        "SELECT operator_signin_begin($1, $2)",
        ngx_http_tenant_api_signin_begun, 2, user.data,
        ctx->address);

    return;

internal:

    ngx_http_tenant_api_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR, "internal",
                              "out of memory", NULL);
}


static void
ngx_http_tenant_api_signin_begun(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res)
{
    json_t                    *doc, *v;
    ngx_str_t                  copy;
    const char                *hash;
    ngx_thread_task_t         *task;
    ngx_http_tenant_signin_t  *si, *tsi;

    si = ctx->data;

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_tenant_api_db_error(ctx, res);
        return;
    }

    doc = ngx_http_tenant_api_json(res, 0);
    if (doc == NULL) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                  "internal", "cannot read the registry",
                                  NULL);
        return;
    }

    v = json_object_get(doc, "retry_after");

    if (json_is_integer(v)) {
        ctx->retry_after = (time_t) json_integer_value(v);
        json_decref(doc);
        ngx_http_tenant_api_error(ctx, NGX_HTTP_TOO_MANY_REQUESTS,
                                  "too_many_signins",
                                  "too many failed sign-ins for this user "
                                  "or from this address: try again after "
                                  "Retry-After seconds", NULL);
        return;
    }

    hash = json_string_value(json_object_get(doc, "hash"));
    hash = hash ? hash : ngx_http_tenant_dummy_hash;

    task = ngx_thread_task_alloc(ctx->pool, sizeof(ngx_http_tenant_signin_t));
    if (task == NULL) {
        json_decref(doc);
        goto internal;
    }

    tsi = task->ctx;
    *tsi = *si;

    copy.data = (u_char *) hash;
    copy.len = ngx_strlen(hash) + 1;
    tsi->hash = (char *) ngx_pstrdup(ctx->pool, &copy);
    json_decref(doc);

    if (tsi->hash == NULL) {
        goto internal;
    }

    /* an unknown name never signs in, whatever the dummy hash says */
    if (hash == ngx_http_tenant_dummy_hash) {
        tsi->hash[0] = '!';
    }

    ctx->data = tsi;

    task->handler = ngx_http_tenant_api_signin_verify;
    task->event.data = tsi;
    task->event.handler = ngx_http_tenant_api_signin_verified;

    if (ctx->thread_pool == NULL
        || ngx_thread_task_post(ctx->thread_pool, task) != NGX_OK)
    {
        goto internal;
    }

    /* the context outlives the request until the thread is done */
    ctx->in_query = 1;

    return;

internal:

    ngx_http_tenant_api_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR, "internal",
                              "cannot check the password now", NULL);
}


/* in a thread of the pool: nothing of nginx's here */

static void
ngx_http_tenant_api_signin_verify(void *data, ngx_log_t *log)
{
    ngx_http_tenant_signin_t  *si = data;

    char                *h;
    size_t               len;
    struct crypt_data   *cd;

    si->ok = 0;

    cd = calloc(1, sizeof(struct crypt_data));
    if (cd == NULL) {
        return;
    }

    /* the dummy's marker is put back for the hashing, so it costs alike */
    len = strlen(si->hash);

    if (si->hash[0] == '!') {
        si->hash[0] = '$';
        h = crypt_r(si->password, si->hash, cd);
        si->hash[0] = '!';
        h = NULL;

    } else {
        h = crypt_r(si->password, si->hash, cd);
    }

    if (h && h[0] == '$' && strlen(h) == len
        && CRYPTO_memcmp(h, si->hash, len) == 0)
    {
        si->ok = 1;
    }

    OPENSSL_cleanse(cd, sizeof(struct crypt_data));
    free(cd);
}


static void
ngx_http_tenant_api_signin_verified(ngx_event_t *ev)
{
    ngx_http_tenant_signin_t  *si = ev->data;

    u_char                      raw[32], *token, *csrf, *p;
    ngx_str_t                   t, s;
    ngx_uint_t                  i;
    ngx_http_tenant_api_ctx_t  *ctx;

    ctx = si->ctx;
    ctx->in_query = 0;

    ngx_explicit_memzero(si->password, ngx_strlen(si->password));

    if (ctx->request == NULL) {
        ngx_http_tenant_api_free(ctx);
        return;
    }

    if (!si->ok) {
        (void) ngx_http_tenant_api_query(ctx,
            "SELECT operator_signin_failed($1, $2)",
            ngx_http_tenant_api_signin_failed, 2, ctx->user.data,
            ctx->address);
        return;
    }

    /* the cookie's token: 32 random bytes, base64url */

    token = ngx_pnalloc(ctx->pool, ngx_base64_encoded_length(32) + 1);
    csrf = ngx_pnalloc(ctx->pool, 64 + 1);

    if (token == NULL || csrf == NULL || RAND_bytes(raw, 32) != 1) {
        goto internal;
    }

    s.data = raw;
    s.len = 32;
    t.data = token;
    ngx_encode_base64url(&t, &s);
    token[t.len] = '\0';
    ctx->session_token = t;

    if (RAND_bytes(raw, 32) != 1) {
        goto internal;
    }

    p = ngx_hex_dump(csrf, raw, 32);
    *p = '\0';

    if (ngx_http_tenant_api_session_hash(ctx, &t) != NGX_OK) {
        goto internal;
    }

    for (i = 0; i < 32; i++) {
        raw[i] = 0;
    }

    (void) ngx_http_tenant_api_query(ctx,
        "SELECT operator_session_create($1, decode($2, 'hex'), $3, $4, $5,"
        "                               $6::integer)",
        ngx_http_tenant_api_signin_made, 6, ctx->user.data,
        ctx->session_hex, csrf, ctx->address,
        ctx->user_agent, NGX_HTTP_TENANT_SESSION_TTL_S);

    return;

internal:

    ngx_http_tenant_api_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR, "internal",
                              "cannot make a session", NULL);
}


static void
ngx_http_tenant_api_signin_failed(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res)
{
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_tenant_api_db_error(ctx, res);
        return;
    }

    ngx_http_tenant_api_error(ctx, NGX_HTTP_UNAUTHORIZED, "bad_credentials",
                              "wrong user name or password", NULL);
}


static void
ngx_http_tenant_api_signin_made(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res)
{
    json_t  *doc;

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_tenant_api_db_error(ctx, res);
        return;
    }

    doc = ngx_http_tenant_api_json(res, 0);

    if (doc == NULL || json_is_null(doc)) {
        /* removed between the check and now */
        json_decref(doc);
        ngx_http_tenant_api_error(ctx, NGX_HTTP_UNAUTHORIZED,
                                  "bad_credentials",
                                  "wrong user name or password", NULL);
        return;
    }

    if (ngx_http_tenant_api_session_cookie(ctx, &ctx->session_token,
                                           NGX_HTTP_TENANT_SESSION_TTL)
        != NGX_OK)
    {
        json_decref(doc);
        ngx_http_tenant_api_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                  "internal", "cannot set the cookie", NULL);
        return;
    }

    ngx_http_tenant_api_reply(ctx, NGX_HTTP_OK, doc);
}


/*
 * NGX_DECLINED: no session cookie (api.c found it in ctx->cookie).  Otherwise the route's action runs once
 * the session is found live (and, for a change, its CSRF token matches),
 * or an error is sent.
 */

ngx_int_t
ngx_http_tenant_api_session_auth(ngx_http_tenant_api_ctx_t *ctx)
{
    ngx_str_t  token;

    token = ctx->cookie;

    if (token.data == NULL) {
        return NGX_DECLINED;
    }

    if (token.len != ngx_base64_encoded_length(32) - 1
        || ngx_http_tenant_api_session_hash(ctx, &token) != NGX_OK)
    {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_UNAUTHORIZED,
                                  "unauthorized",
                                  "sign in again: this session is not "
                                  "valid", NULL);
        return NGX_OK;
    }

    (void) ngx_http_tenant_api_query(ctx,
        "SELECT operator_session_get(decode($1, 'hex'))",
        ngx_http_tenant_api_session_found, 1, ctx->session_hex);

    return NGX_OK;
}


static void
ngx_http_tenant_api_session_found(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res)
{
    u_char     *p;
    json_t     *doc;
    ngx_str_t   csrf, user;

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_tenant_api_db_error(ctx, res);
        return;
    }

    doc = ngx_http_tenant_api_json(res, 0);

    if (doc == NULL || !json_is_object(doc)) {
        json_decref(doc);
        ngx_http_tenant_api_error(ctx, NGX_HTTP_UNAUTHORIZED,
                                  "unauthorized",
                                  "sign in again: this session has ended "
                                  "(signed out, expired or revoked)", NULL);
        return;
    }

    user.data = (u_char *) json_string_value(json_object_get(doc, "user"));
    csrf.data = (u_char *) json_string_value(json_object_get(doc, "csrf"));

    if (user.data == NULL || csrf.data == NULL) {
        json_decref(doc);
        ngx_http_tenant_api_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                  "internal", "cannot read the session",
                                  NULL);
        return;
    }

    user.len = ngx_strlen(user.data);
    csrf.len = ngx_strlen(csrf.data);

    /* "user:<name>" for the audit log, "u.<name>" for idempotency keys */

    p = ngx_pnalloc(ctx->pool, 2 * user.len + 8 + csrf.len + 1);
    if (p == NULL) {
        json_decref(doc);
        ngx_http_tenant_api_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                  "internal", "out of memory", NULL);
        return;
    }

    ctx->actor.data = p;
    p = ngx_sprintf(p, "user:%V", &user);
    ctx->actor.len = p - ctx->actor.data;
    *p++ = '\0';

    ctx->key_id.data = p;
    p = ngx_sprintf(p, "u.%V", &user);
    ctx->key_id.len = p - ctx->key_id.data;
    *p++ = '\0';

    ctx->user.data = ctx->actor.data + 5;
    ctx->user.len = user.len;

    ctx->csrf.data = p;
    ctx->csrf.len = csrf.len;
    p = ngx_cpymem(p, csrf.data, csrf.len);
    *p = '\0';

    ctx->session = 1;
    json_decref(doc);

    if (ctx->request->method != NGX_HTTP_GET
        && ctx->request->method != NGX_HTTP_HEAD)
    {
        if (ctx->csrf_header.len != ctx->csrf.len
            || CRYPTO_memcmp(ctx->csrf_header.data, ctx->csrf.data,
                             ctx->csrf.len)
               != 0)
        {
            ngx_http_tenant_api_error(ctx, NGX_HTTP_FORBIDDEN, "csrf",
                                      "a change made with a session needs "
                                      "the session's X-CSRF-Token header "
                                      "(GET /api/session gives it)", NULL);
            return;
        }
    }

    ctx->route->action(ctx);
}


/* GET session: who is signed in, and the CSRF token for changes */

void
ngx_http_tenant_api_session_show(ngx_http_tenant_api_ctx_t *ctx)
{
    json_t  *doc;

    if (!ctx->session) {
        doc = json_pack("{s:n, s:s%}", "user", "key",
                        ctx->key_id.data, ctx->key_id.len);

    } else {
        doc = json_pack("{s:s%, s:s%}", "user", ctx->user.data,
                        ctx->user.len, "csrf", ctx->csrf.data,
                        ctx->csrf.len);
    }

    ngx_http_tenant_api_reply(ctx, NGX_HTTP_OK, doc);
}


/* DELETE session: signs out; the cookie is cleared */

void
ngx_http_tenant_api_signout(ngx_http_tenant_api_ctx_t *ctx)
{
    if (!ctx->session) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_BAD_REQUEST, "no_session",
                                  "this request has an API key, not a "
                                  "session: revoke keys with "
                                  "provisioner api-key revoke", NULL);
        return;
    }

    (void) ngx_http_tenant_api_query(ctx,
        "SELECT operator_session_revoke(decode($1, 'hex'))",
        ngx_http_tenant_api_signout_done, 1, ctx->session_hex);
}


static void
ngx_http_tenant_api_signout_done(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res)
{
    ngx_str_t  none = ngx_null_string;

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_tenant_api_db_error(ctx, res);
        return;
    }

    if (ngx_http_tenant_api_session_cookie(ctx, &none, 0) != NGX_OK) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                  "internal", "cannot clear the cookie",
                                  NULL);
        return;
    }

    ngx_http_tenant_api_reply(ctx, NGX_HTTP_OK,
                              json_pack("{s:b}", "signed_out", 1));
}


static ngx_int_t
ngx_http_tenant_api_session_cookie(ngx_http_tenant_api_ctx_t *ctx,
    ngx_str_t *token, ngx_uint_t max_age)
{
    ngx_uint_t  secure;

#if (NGX_HTTP_SSL)
    secure = (ctx->request->connection->ssl != NULL);
#else
    secure = 0;
#endif

    return ngx_http_tenant_reply_header(ctx->request, "Set-Cookie",
                                        ngx_http_tenant_session_name.len
                                        + token->len + 128,
                                        "%V=%V; Path=/; Max-Age=%ui; "
                                        "HttpOnly; SameSite=Strict%s",
                                        &ngx_http_tenant_session_name, token,
                                        max_age, secure ? "; Secure" : "");
}


/* the token's SHA-256, in hex, as ctx->session_hex */

static ngx_int_t
ngx_http_tenant_api_session_hash(ngx_http_tenant_api_ctx_t *ctx,
    ngx_str_t *token)
{
    u_char        digest[32], *p;
    unsigned int  dlen;

    if (EVP_Digest(token->data, token->len, digest, &dlen, EVP_sha256(),
                   NULL)
        != 1 || dlen != 32)
    {
        return NGX_ERROR;
    }

    p = ngx_pnalloc(ctx->pool, 65);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ctx->session_hex = (char *) p;
    p = ngx_hex_dump(p, digest, 32);
    *p = '\0';

    return NGX_OK;
}
