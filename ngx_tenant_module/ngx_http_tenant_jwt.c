
/*
 * tenant_jwt: a request reaches its tenant's stack only with a token that
 * is signed by one of the registry's keys, current, from the configured
 * issuer for the configured audience, and whose tenant claim names the
 * Host's tenant.  401 with WWW-Authenticate for a missing or bad token,
 * 403 for a good token of another tenant; either way nothing is proxied.
 *
 * Runs in the access phase, after the tenant module has resolved the Host
 * in preaccess.  Each worker keeps the keys parsed (again only when the
 * set's serial moves) and the tokens it has verified (a bounded LRU), so a
 * token seen again is not verified again.  With tenant_jwt_approved the
 * token's subject must also be an approved sign-up of the tenant.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_tenant_module.h"
#include "ngx_http_tenant_reply.h"
#include "ngx_http_tenant_jwt_keys.h"
#include "ngx_http_tenant_jwt_token.h"
#include "ngx_http_tenant_jwt_cache.h"
#include "ngx_http_tenant_jwt_signup.h"


/* how long a worker trusts the registry's word on a token's sign-up */
#define NGX_HTTP_TENANT_JWT_APPROVED_TTL  10
#define NGX_HTTP_TENANT_JWT_NOT_TTL       1


typedef struct {
    u_char                          kid[NGX_HTTP_TENANT_JWT_KID_LEN];
    size_t                          kid_len;
    ngx_uint_t                      alg;
    EVP_PKEY                       *pkey;
} ngx_http_tenant_jwt_pkey_t;


/* a worker's own, from its init_process */
typedef struct {
    ngx_http_tenant_jwt_cache_t    *cache;
    ngx_atomic_uint_t               serial;    /* of the keys below; 0:
                                                  none yet (a load makes
                                                  the zone's 1 or more) */
    ngx_uint_t                      nkeys;
    ngx_http_tenant_jwt_pkey_t      keys[NGX_HTTP_TENANT_JWT_KEYS_MAX];
    ngx_http_tenant_jwt_key_t      *copy;      /* room to copy the set */
} ngx_http_tenant_jwt_worker_t;


typedef struct {
    ngx_shm_zone_t                 *zone;      /* NULL: no tenant_jwt on */
    ngx_uint_t                      cache;
    ngx_http_tenant_jwt_worker_t   *worker;
} ngx_http_tenant_jwt_main_conf_t;


typedef struct {
    ngx_flag_t                      enable;
    ngx_str_t                       cookie;
    size_t                          max_size;
    ngx_http_tenant_jwt_rules_t     rules;
} ngx_http_tenant_jwt_loc_conf_t;


/* per request: the sign-up question, and what the variables give */
typedef struct {
    ngx_str_t                       raw;
    ngx_str_t                       payload_b64;
    ngx_str_t                       tenant;
    ngx_str_t                       sub;
    ngx_str_t                       subject;   /* tenant_jwt_approved's */
    json_t                         *payload;   /* parsed when first asked */
    ngx_http_tenant_jwt_signup_t   *ask;
    ngx_uint_t                      answer;
    unsigned                        waiting:1;
    unsigned                        answered:1;
} ngx_http_tenant_jwt_ctx_t;


static ngx_int_t ngx_http_tenant_jwt_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_tenant_jwt_check(ngx_http_request_t *r,
    ngx_http_tenant_jwt_loc_conf_t *jlcf, ngx_str_t *raw,
    ngx_http_tenant_jwt_ctx_t *jctx, const char **why);
static ngx_int_t ngx_http_tenant_jwt_approved(ngx_http_request_t *r,
    ngx_http_tenant_jwt_loc_conf_t *jlcf, ngx_http_tenant_jwt_ctx_t *jctx);
static void ngx_http_tenant_jwt_answered(ngx_http_request_t *r,
    ngx_uint_t answer);
static ngx_int_t ngx_http_tenant_jwt_verify(ngx_http_tenant_jwt_worker_t *w,
    ngx_http_tenant_jwt_keys_t *jk, ngx_http_tenant_jwt_token_t *tok);
static void ngx_http_tenant_jwt_refresh(ngx_http_tenant_jwt_worker_t *w,
    ngx_http_tenant_jwt_keys_t *jk);
static void ngx_http_tenant_jwt_free_keys(ngx_http_tenant_jwt_worker_t *w);
static ngx_int_t ngx_http_tenant_jwt_token(ngx_http_request_t *r,
    ngx_http_tenant_jwt_loc_conf_t *jlcf, ngx_str_t *raw);
static ngx_int_t ngx_http_tenant_jwt_refuse(ngx_http_request_t *r,
    ngx_uint_t status, const char *error, const char *why);
static void ngx_http_tenant_jwt_cleanup(void *data);
static ngx_int_t ngx_http_tenant_jwt_sub_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_tenant_jwt_claim_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_tenant_jwt_add_variables(ngx_conf_t *cf);
static ngx_int_t ngx_http_tenant_jwt_init(ngx_conf_t *cf);
static ngx_int_t ngx_http_tenant_jwt_init_process(ngx_cycle_t *cycle);
static void ngx_http_tenant_jwt_exit_process(ngx_cycle_t *cycle);
static void *ngx_http_tenant_jwt_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_tenant_jwt_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_tenant_jwt_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_tenant_jwt_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_tenant_jwt_enable(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


static ngx_conf_num_bounds_t  ngx_http_tenant_jwt_cache_bounds = {
    ngx_conf_check_num_bounds, 1, 1000000
};


static ngx_command_t  ngx_http_tenant_jwt_commands[] = {

    { ngx_string("tenant_jwt"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_http_tenant_jwt_enable,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tenant_jwt_loc_conf_t, enable),
      NULL },

    { ngx_string("tenant_jwt_cookie"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tenant_jwt_loc_conf_t, cookie),
      NULL },

    { ngx_string("tenant_jwt_issuer"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tenant_jwt_loc_conf_t, rules.issuer),
      NULL },

    { ngx_string("tenant_jwt_audience"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tenant_jwt_loc_conf_t, rules.audience),
      NULL },

    { ngx_string("tenant_jwt_claim"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tenant_jwt_loc_conf_t, rules.claim),
      NULL },

    { ngx_string("tenant_jwt_approved"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tenant_jwt_loc_conf_t, rules.approved),
      NULL },

    { ngx_string("tenant_jwt_leeway"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tenant_jwt_loc_conf_t, rules.leeway),
      NULL },

    { ngx_string("tenant_jwt_max_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tenant_jwt_loc_conf_t, max_size),
      NULL },

    { ngx_string("tenant_jwt_cache"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_tenant_jwt_main_conf_t, cache),
      &ngx_http_tenant_jwt_cache_bounds },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_tenant_jwt_module_ctx = {
    ngx_http_tenant_jwt_add_variables,     /* preconfiguration */
    ngx_http_tenant_jwt_init,              /* postconfiguration */

    ngx_http_tenant_jwt_create_main_conf,  /* create main configuration */
    ngx_http_tenant_jwt_init_main_conf,    /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_tenant_jwt_create_loc_conf,   /* create location configuration */
    ngx_http_tenant_jwt_merge_loc_conf     /* merge location configuration */
};


ngx_module_t  ngx_http_tenant_jwt_module = {
    NGX_MODULE_V1,
    &ngx_http_tenant_jwt_module_ctx,       /* module context */
    ngx_http_tenant_jwt_commands,          /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_tenant_jwt_init_process,      /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_tenant_jwt_exit_process,      /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_variable_t  ngx_http_tenant_jwt_vars[] = {

    { ngx_string("tenant_jwt_sub"), NULL, ngx_http_tenant_jwt_sub_variable,
      0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("tenant_jwt_claim_"), NULL,
      ngx_http_tenant_jwt_claim_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE|NGX_HTTP_VAR_PREFIX, 0 },

      ngx_http_null_variable
};


static ngx_int_t
ngx_http_tenant_jwt_handler(ngx_http_request_t *r)
{
    ngx_int_t                        rc;
    ngx_str_t                        raw;
    const char                      *why;
    ngx_pool_cleanup_t              *cln;
    ngx_http_tenant_ctx_t           *ctx;
    ngx_http_tenant_jwt_ctx_t       *jctx;
    ngx_http_tenant_jwt_loc_conf_t  *jlcf;

    jlcf = ngx_http_get_module_loc_conf(r, ngx_http_tenant_jwt_module);

    if (!jlcf->enable || r != r->main) {
        return NGX_DECLINED;
    }

    jctx = ngx_http_get_module_ctx(r, ngx_http_tenant_jwt_module);

    if (jctx) {
        /* back from the registry, or still waiting for it */
        return jctx->waiting ? NGX_AGAIN
                             : ngx_http_tenant_jwt_approved(r, jlcf, jctx);
    }

    ctx = ngx_http_tenant_get_ctx(r);

    if (ctx == NULL || ctx->record.id.len == 0) {
        /* fail closed: there is no tenant to hold the token to */
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "tenant: tenant_jwt without a tenant for the request "
                      "(is \"tenant on\" set here?)");
        return NGX_HTTP_FORBIDDEN;
    }

    rc = ngx_http_tenant_jwt_token(r, jlcf, &raw);

    if (rc == NGX_DECLINED) {
        return ngx_http_tenant_jwt_refuse(r, NGX_HTTP_UNAUTHORIZED, NULL,
                                          NULL);
    }

    if (raw.len > jlcf->max_size) {
        return ngx_http_tenant_jwt_refuse(r, NGX_HTTP_UNAUTHORIZED,
                                          "invalid_token",
                                          "the token is too long");
    }

    cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_http_tenant_jwt_ctx_t));
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    jctx = cln->data;
    ngx_memzero(jctx, sizeof(ngx_http_tenant_jwt_ctx_t));
    jctx->raw = raw;
    cln->handler = ngx_http_tenant_jwt_cleanup;

    rc = ngx_http_tenant_jwt_check(r, jlcf, &raw, jctx, &why);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_BUSY) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "tenant: no token keys loaded yet: 503");

        return (ngx_http_tenant_reply_header(r, "Retry-After", 1, "1")
                == NGX_OK)
               ? NGX_HTTP_SERVICE_UNAVAILABLE : NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED) {
        return ngx_http_tenant_jwt_refuse(r, NGX_HTTP_UNAUTHORIZED,
                                          "invalid_token", why);
    }

    if (jctx->tenant.len != ctx->record.id.len
        || ngx_strncmp(jctx->tenant.data, ctx->record.id.data,
                       jctx->tenant.len)
           != 0)
    {
        return ngx_http_tenant_jwt_refuse(r, NGX_HTTP_FORBIDDEN,
                                          "insufficient_scope",
                                          "the token is not for this tenant");
    }

    ngx_http_set_ctx(r, jctx, ngx_http_tenant_jwt_module);

    if (jlcf->rules.approved.len == 0) {
        return NGX_OK;
    }

    return ngx_http_tenant_jwt_approved(r, jlcf, jctx);
}


/*
 * tenant_jwt_approved: the token's subject must be an approved sign-up of
 * the tenant.  The registry is asked without blocking, and its word kept
 * with the verified token for a few seconds, so a decision reaches the
 * edge within NGX_HTTP_TENANT_JWT_APPROVED_TTL (a refusal within _NOT_TTL)
 * while a busy token costs one question per interval.
 */

static ngx_int_t
ngx_http_tenant_jwt_approved(ngx_http_request_t *r,
    ngx_http_tenant_jwt_loc_conf_t *jlcf, ngx_http_tenant_jwt_ctx_t *jctx)
{
    ngx_int_t                         rc;
    ngx_uint_t                        answer;
    ngx_http_tenant_ctx_t            *ctx;
    ngx_http_tenant_jwt_cached_t     *c;
    ngx_http_tenant_jwt_main_conf_t  *jmcf;

    jmcf = ngx_http_get_module_main_conf(r, ngx_http_tenant_jwt_module);

    c = ngx_http_tenant_jwt_cache_find(jmcf->worker->cache, &jctx->raw,
                                       &jlcf->rules);

    if (jctx->answered) {
        answer = jctx->answer;

        if (c && answer != NGX_HTTP_TENANT_JWT_SIGNUP_FAILED) {
            c->approved = answer;
            c->approved_at = ngx_time();
        }

    } else if (c && c->approved == NGX_HTTP_TENANT_JWT_SIGNUP_APPROVED
               && ngx_time() - c->approved_at
                  < NGX_HTTP_TENANT_JWT_APPROVED_TTL)
    {
        answer = c->approved;

    } else if (c && c->approved == NGX_HTTP_TENANT_JWT_SIGNUP_NOT
               && ngx_time() - c->approved_at < NGX_HTTP_TENANT_JWT_NOT_TTL)
    {
        answer = c->approved;

    } else if (jctx->subject.len == 0) {
        answer = NGX_HTTP_TENANT_JWT_SIGNUP_NOT;

    } else {
        ctx = ngx_http_tenant_get_ctx(r);

        rc = ngx_http_tenant_jwt_signup_ask(r, &ctx->record.id,
                                            &jctx->subject,
                                            ngx_http_tenant_jwt_answered,
                                            &jctx->ask);

        if (rc == NGX_OK) {
            jctx->waiting = 1;
            /* a client that leaves while waiting is noticed and finalized */
            r->read_event_handler = ngx_http_test_reading;
            return NGX_AGAIN;
        }

        answer = (rc == NGX_ERROR) ? NGX_HTTP_TENANT_JWT_SIGNUP_UNKNOWN
                                   : NGX_HTTP_TENANT_JWT_SIGNUP_FAILED;
    }

    switch (answer) {

    case NGX_HTTP_TENANT_JWT_SIGNUP_APPROVED:
        return NGX_OK;

    case NGX_HTTP_TENANT_JWT_SIGNUP_NOT:
        return ngx_http_tenant_jwt_refuse(r, NGX_HTTP_FORBIDDEN,
                                          "insufficient_scope",
                                          "the token's subject is not an "
                                          "approved sign-up of this tenant");

    case NGX_HTTP_TENANT_JWT_SIGNUP_FAILED:
        /* fail closed: no answer is not a yes */
        return NGX_HTTP_SERVICE_UNAVAILABLE;

    default:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
}


static void
ngx_http_tenant_jwt_answered(ngx_http_request_t *r, ngx_uint_t answer)
{
    ngx_http_tenant_jwt_ctx_t  *jctx;

    jctx = ngx_http_get_module_ctx(r, ngx_http_tenant_jwt_module);

    jctx->ask = NULL;
    jctx->waiting = 0;
    jctx->answered = 1;
    jctx->answer = answer;

    /* resume the phases from the event loop, not from inside the answer */
    r->write_event_handler = ngx_http_core_run_phases;
    ngx_post_event(r->connection->write, &ngx_posted_events);
}


/*
 * The token verified (or found verified) and its claims checked: NGX_OK
 * with jctx filled, NGX_DECLINED with why, NGX_BUSY before the keys were
 * first loaded, or NGX_ERROR.
 */

static ngx_int_t
ngx_http_tenant_jwt_check(ngx_http_request_t *r,
    ngx_http_tenant_jwt_loc_conf_t *jlcf, ngx_str_t *raw,
    ngx_http_tenant_jwt_ctx_t *jctx, const char **why)
{
    ngx_int_t                         rc;
    ngx_http_tenant_jwt_keys_t       *jk;
    ngx_http_tenant_jwt_token_t       tok;
    ngx_http_tenant_jwt_claims_t      claims;
    ngx_http_tenant_jwt_cached_t     *c;
    ngx_http_tenant_jwt_worker_t     *w;
    ngx_http_tenant_jwt_main_conf_t  *jmcf;

    jmcf = ngx_http_get_module_main_conf(r, ngx_http_tenant_jwt_module);
    w = jmcf->worker;
    jk = jmcf->zone->data;

    c = ngx_http_tenant_jwt_cache_find(w->cache, raw, &jlcf->rules);

    if (c && c->serial == jk->sh->serial) {

        /* verified before, against these keys: only time has moved */
        if (ngx_time() > c->exp + jlcf->rules.leeway) {
            ngx_http_tenant_jwt_cache_remove(w->cache, c);
            *why = "the token has expired";
            return NGX_DECLINED;
        }

        if (ngx_time() + jlcf->rules.leeway < c->nbf) {
            *why = "the token is not valid yet";
            return NGX_DECLINED;
        }

        jctx->payload_b64.data = raw->data + c->payload;
        jctx->payload_b64.len = c->payload_len;
        jctx->tenant = c->tenant;
        jctx->sub = c->sub;
        jctx->subject = c->subject;

        return NGX_OK;
    }

    if (c) {
        /* the keys changed since: verified again, below */
        ngx_http_tenant_jwt_cache_remove(w->cache, c);
    }

    rc = ngx_http_tenant_jwt_token_parse(r->pool, raw, &tok, why);

    if (rc != NGX_OK) {
        return rc;
    }

    if (jk->sh->serial == 0) {
        /*
         * Just started, the keys not read yet (or the registry down since
         * start): a good token must not be told it is bad.
         */
        return NGX_BUSY;
    }

    rc = ngx_http_tenant_jwt_verify(w, jk, &tok);

    if (rc != NGX_OK) {
        *why = (rc == NGX_DECLINED)
               ? "the token's signature is not one of the platform's keys"
               : NULL;
        return rc;
    }

    rc = ngx_http_tenant_jwt_token_claims(r->pool, &tok, &jlcf->rules,
                                          ngx_time(), &claims, why);

    if (rc != NGX_OK) {
        return rc;
    }

    c = ngx_http_tenant_jwt_cache_add(w->cache, raw, &jlcf->rules,
                                      &claims.tenant, &claims.sub,
                                      &claims.subject);
    if (c) {
        c->serial = w->serial;
        c->exp = claims.exp;
        c->nbf = claims.nbf;
        c->payload = tok.payload_b64.data - raw->data;
        c->payload_len = tok.payload_b64.len;
    }

    jctx->payload_b64 = tok.payload_b64;
    jctx->tenant = claims.tenant;
    jctx->sub = claims.sub;
    jctx->subject = claims.subject;

    return NGX_OK;
}


/*
 * By the token's "kid" when it has one, else each key of its algorithm in
 * turn.  A key verifies only the algorithm it was stored with.
 */

static ngx_int_t
ngx_http_tenant_jwt_verify(ngx_http_tenant_jwt_worker_t *w,
    ngx_http_tenant_jwt_keys_t *jk, ngx_http_tenant_jwt_token_t *tok)
{
    ngx_int_t                    rc;
    ngx_uint_t                   i;
    ngx_http_tenant_jwt_pkey_t  *k;

    if (w->serial != jk->sh->serial) {
        ngx_http_tenant_jwt_refresh(w, jk);
    }

    for (i = 0; i < w->nkeys; i++) {
        k = &w->keys[i];

        if (k->pkey == NULL || k->alg != tok->alg) {
            continue;
        }

        if (tok->kid.len
            && (tok->kid.len != k->kid_len
                || ngx_memcmp(tok->kid.data, k->kid, k->kid_len) != 0))
        {
            continue;
        }

        rc = ngx_http_tenant_jwt_token_verify(tok, k->pkey, k->alg);

        if (rc != NGX_DECLINED || tok->kid.len) {
            return rc;
        }
    }

    return NGX_DECLINED;
}


static void
ngx_http_tenant_jwt_refresh(ngx_http_tenant_jwt_worker_t *w,
    ngx_http_tenant_jwt_keys_t *jk)
{
    u_char                       *p;
    ngx_uint_t                    i, n;
    ngx_atomic_uint_t             serial;
    ngx_http_tenant_jwt_key_t    *key;
    ngx_http_tenant_jwt_pkey_t   *k;

    n = ngx_http_tenant_jwt_keys_copy(jk, w->copy, &serial);

    ngx_http_tenant_jwt_free_keys(w);

    for (i = 0; i < n; i++) {
        key = &w->copy[i];
        k = &w->keys[i];

        p = key->der;
        k->pkey = d2i_PUBKEY(NULL, (const u_char **) &p, key->der_len);

        if (k->pkey == NULL) {
            ngx_ssl_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "tenant: token key \"%*s\" does not parse: "
                          "skipped", (size_t) key->kid_len, key->kid);
        }

        ngx_memcpy(k->kid, key->kid, key->kid_len);
        k->kid_len = key->kid_len;
        k->alg = key->alg;
    }

    w->nkeys = n;
    w->serial = serial;
}


static void
ngx_http_tenant_jwt_free_keys(ngx_http_tenant_jwt_worker_t *w)
{
    ngx_uint_t  i;

    for (i = 0; i < w->nkeys; i++) {
        if (w->keys[i].pkey) {
            EVP_PKEY_free(w->keys[i].pkey);
            w->keys[i].pkey = NULL;
        }
    }

    w->nkeys = 0;
}


/* "Authorization: Bearer <token>", else the cookie; NGX_DECLINED: none */

static ngx_int_t
ngx_http_tenant_jwt_token(ngx_http_request_t *r,
    ngx_http_tenant_jwt_loc_conf_t *jlcf, ngx_str_t *raw)
{
    u_char           *p, *last;
    ngx_table_elt_t  *h;

    h = r->headers_in.authorization;

    if (h && h->value.len > 7
        && ngx_strncasecmp(h->value.data, (u_char *) "Bearer ", 7) == 0)
    {
        p = h->value.data + 7;
        last = h->value.data + h->value.len;

        while (p < last && *p == ' ') {
            p++;
        }

        while (last > p && last[-1] == ' ') {
            last--;
        }

        if (p < last) {
            raw->data = p;
            raw->len = last - p;
            return NGX_OK;
        }
    }

    if (jlcf->cookie.len
        && ngx_http_parse_multi_header_lines(&r->headers_in.cookies,
                                             &jlcf->cookie, raw)
           != NGX_DECLINED
        && raw->len)
    {
        return NGX_OK;
    }

    return NGX_DECLINED;
}


/* RFC 6750 §3: the challenge, and why in its error_description */

static ngx_int_t
ngx_http_tenant_jwt_refuse(ngx_http_request_t *r, ngx_uint_t status,
    const char *error, const char *why)
{
    ngx_int_t  rc;

    /* error and why are this module's own text, never the token's */

    if (error == NULL) {
        rc = ngx_http_tenant_reply_header(r, "WWW-Authenticate", 32,
                                          "Bearer realm=\"tenant\"");

    } else {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "tenant: token refused: %s", why);

        rc = ngx_http_tenant_reply_header(r, "WWW-Authenticate",
                                          128 + ngx_strlen(why),
                                          "Bearer realm=\"tenant\", "
                                          "error=\"%s\", "
                                          "error_description=\"%s\"",
                                          error, why);
    }

    return (rc == NGX_OK) ? (ngx_int_t) status
                          : NGX_HTTP_INTERNAL_SERVER_ERROR;
}


static void
ngx_http_tenant_jwt_cleanup(void *data)
{
    ngx_http_tenant_jwt_ctx_t  *jctx = data;

    if (jctx->ask) {
        ngx_http_tenant_jwt_signup_cancel(jctx->ask);
    }

    if (jctx->payload) {
        json_decref(jctx->payload);
    }
}


static ngx_int_t
ngx_http_tenant_jwt_sub_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_uint_t                  i;
    ngx_http_tenant_jwt_ctx_t  *jctx;

    jctx = ngx_http_get_module_ctx(r->main, ngx_http_tenant_jwt_module);

    if (jctx == NULL || jctx->sub.len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    /* a header line is where it goes: no control characters */
    for (i = 0; i < jctx->sub.len; i++) {
        if (jctx->sub.data[i] < 0x20 || jctx->sub.data[i] == 0x7f) {
            v->not_found = 1;
            return NGX_OK;
        }
    }

    v->data = jctx->sub.data;
    v->len = jctx->sub.len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


/*
 * $tenant_jwt_claim_NAME: a string claim as it is, another value as
 * compact JSON.  A string with a control character is not given at all:
 * it would break the header line it is set in.
 */

static ngx_int_t
ngx_http_tenant_jwt_claim_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t  *name = (ngx_str_t *) data;

    u_char                     *key;
    char                       *text;
    size_t                      len, i, prefix;
    json_t                     *claim;
    ngx_http_tenant_jwt_ctx_t  *jctx;

    v->not_found = 1;

    jctx = ngx_http_get_module_ctx(r->main, ngx_http_tenant_jwt_module);

    if (jctx == NULL) {
        return NGX_OK;
    }

    if (jctx->payload == NULL) {
        jctx->payload = ngx_http_tenant_jwt_token_payload(r->pool,
                                                          &jctx->payload_b64);
        if (jctx->payload == NULL) {
            return NGX_OK;
        }
    }

    prefix = sizeof("tenant_jwt_claim_") - 1;

    key = ngx_pnalloc(r->pool, name->len - prefix + 1);
    if (key == NULL) {
        return NGX_ERROR;
    }

    *ngx_cpymem(key, name->data + prefix, name->len - prefix) = '\0';

    claim = json_object_get(jctx->payload, (char *) key);

    if (claim == NULL || json_is_null(claim)) {
        return NGX_OK;
    }

    if (json_is_string(claim)) {
        len = json_string_length(claim);

        for (i = 0; i < len; i++) {
            if ((u_char) json_string_value(claim)[i] < 0x20
                || json_string_value(claim)[i] == 0x7f)
            {
                return NGX_OK;
            }
        }

        v->data = ngx_pnalloc(r->pool, len);
        if (v->data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(v->data, json_string_value(claim), len);

    } else {
        text = json_dumps(claim, JSON_COMPACT | JSON_ENCODE_ANY);
        if (text == NULL) {
            return NGX_ERROR;
        }

        len = ngx_strlen(text);

        v->data = ngx_pnalloc(r->pool, len);
        if (v->data == NULL) {
            free(text);
            return NGX_ERROR;
        }

        ngx_memcpy(v->data, text, len);
        free(text);
    }

    v->len = len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


static ngx_int_t
ngx_http_tenant_jwt_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_tenant_jwt_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_tenant_jwt_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt              *h;
    ngx_http_core_main_conf_t        *cmcf;
    ngx_http_tenant_jwt_main_conf_t  *jmcf;

    jmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_tenant_jwt_module);

    if (jmcf->zone == NULL) {
        return NGX_OK;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_tenant_jwt_handler;

    return NGX_OK;
}


static ngx_int_t
ngx_http_tenant_jwt_init_process(ngx_cycle_t *cycle)
{
    ngx_http_tenant_jwt_worker_t     *w;
    ngx_http_tenant_jwt_main_conf_t  *jmcf;

    jmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_tenant_jwt_module);

    if (jmcf == NULL || jmcf->zone == NULL) {
        return NGX_OK;
    }

    w = ngx_pcalloc(cycle->pool, sizeof(ngx_http_tenant_jwt_worker_t));
    if (w == NULL) {
        return NGX_ERROR;
    }

    w->copy = ngx_palloc(cycle->pool, NGX_HTTP_TENANT_JWT_KEYS_MAX
                                      * sizeof(ngx_http_tenant_jwt_key_t));
    w->cache = ngx_http_tenant_jwt_cache_create(cycle->pool, jmcf->cache);

    if (w->copy == NULL || w->cache == NULL) {
        return NGX_ERROR;
    }

    jmcf->worker = w;

    return NGX_OK;
}


static void
ngx_http_tenant_jwt_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_tenant_jwt_main_conf_t  *jmcf;

    jmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_tenant_jwt_module);

    if (jmcf == NULL || jmcf->worker == NULL) {
        return;
    }

    ngx_http_tenant_jwt_cache_destroy(jmcf->worker->cache);
    ngx_http_tenant_jwt_free_keys(jmcf->worker);
}


static void *
ngx_http_tenant_jwt_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_tenant_jwt_main_conf_t  *jmcf;

    jmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_tenant_jwt_main_conf_t));
    if (jmcf == NULL) {
        return NULL;
    }

    jmcf->cache = NGX_CONF_UNSET_UINT;

    return jmcf;
}


static char *
ngx_http_tenant_jwt_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_tenant_jwt_main_conf_t  *jmcf = conf;

    ngx_conf_init_uint_value(jmcf->cache, 10000);

    return NGX_CONF_OK;
}


static void *
ngx_http_tenant_jwt_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_tenant_jwt_loc_conf_t  *jlcf;

    jlcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_tenant_jwt_loc_conf_t));
    if (jlcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     jlcf->cookie = { 0, NULL };
     *     jlcf->rules.issuer = { 0, NULL };
     *     jlcf->rules.audience = { 0, NULL };
     *     jlcf->rules.claim = { 0, NULL };
     */

    jlcf->enable = NGX_CONF_UNSET;
    jlcf->max_size = NGX_CONF_UNSET_SIZE;
    jlcf->rules.leeway = NGX_CONF_UNSET;

    return jlcf;
}


static char *
ngx_http_tenant_jwt_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_tenant_jwt_loc_conf_t  *prev = parent;
    ngx_http_tenant_jwt_loc_conf_t  *conf = child;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_str_value(conf->cookie, prev->cookie, "");
    ngx_conf_merge_size_value(conf->max_size, prev->max_size, 8192);
    ngx_conf_merge_str_value(conf->rules.issuer, prev->rules.issuer, "");
    ngx_conf_merge_str_value(conf->rules.audience, prev->rules.audience, "");
    /* a C string: jansson looks members up by one (ngx_conf_set_str_slot
     * values end in NUL) */
    ngx_conf_merge_str_value(conf->rules.claim, prev->rules.claim,
                             "tenant_id");
    ngx_conf_merge_sec_value(conf->rules.leeway, prev->rules.leeway, 30);

    /* tenant_jwt_approved off | on (the "sub" claim) | the claim's name */
    ngx_conf_merge_str_value(conf->rules.approved, prev->rules.approved,
                             "off");

    if (ngx_strcmp(conf->rules.approved.data, "off") == 0) {
        ngx_str_set(&conf->rules.approved, "");

    } else if (ngx_strcmp(conf->rules.approved.data, "on") == 0) {
        ngx_str_set(&conf->rules.approved, "sub");
    }

    if (conf->rules.claim.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"tenant_jwt_claim\" is empty: the name of the "
                           "claim that carries the tenant, e.g. tenant_id "
                           "or https://example.com/tenant_id");
        return NGX_CONF_ERROR;
    }

    if (conf->max_size < 64 || conf->max_size > 65536) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"tenant_jwt_max_size\" must be 64 to 64k "
                           "bytes");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* tenant_jwt on: the first one makes the key zone, and tells the tenant
 * module's listener to keep it loaded */

static char *
ngx_http_tenant_jwt_enable(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char                             *rv;
    ngx_http_tenant_jwt_loc_conf_t   *jlcf = conf;
    ngx_http_tenant_main_conf_t      *tmcf;
    ngx_http_tenant_jwt_main_conf_t  *jmcf;

    rv = ngx_conf_set_flag_slot(cf, cmd, conf);

    if (rv != NGX_CONF_OK || !jlcf->enable) {
        return rv;
    }

    jmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_tenant_jwt_module);

    if (jmcf->zone) {
        return NGX_CONF_OK;
    }

    jmcf->zone = ngx_http_tenant_jwt_keys_zone(cf,
                                               &ngx_http_tenant_jwt_module);
    if (jmcf->zone == NULL) {
        return NGX_CONF_ERROR;
    }

    tmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_tenant_module);
    tmcf->jwt_zone = jmcf->zone;

    return NGX_CONF_OK;
}
