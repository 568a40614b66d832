
/*
 * The admin API: a location with tenant_admin_api.
 */


#ifndef _NGX_HTTP_TENANT_API_H_INCLUDED_
#define _NGX_HTTP_TENANT_API_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <ngx_thread_pool.h>
#include <jansson.h>
#include "ngx_http_tenant_module.h"
#include "ngx_http_tenant_pg.h"
#include "ngx_http_tenant_certs.h"


#define NGX_HTTP_TENANT_API_MAX_BODY    65536
#define NGX_HTTP_TENANT_API_MAX_WAIT    60
#define NGX_HTTP_TENANT_API_MAX_PARAMS  NGX_HTTP_TENANT_PG_MAX_PARAMS


typedef struct ngx_http_tenant_api_ctx_s  ngx_http_tenant_api_ctx_t;

typedef void (*ngx_http_tenant_api_next_pt)(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res);
typedef void (*ngx_http_tenant_api_action_pt)(ngx_http_tenant_api_ctx_t *ctx);


/* the query string's arguments the routes know, raw; data NULL if absent */
typedef struct {
    ngx_str_t                       limit;
    ngx_str_t                       after;
    ngx_str_t                       before;
    ngx_str_t                       tenant;
    ngx_str_t                       status;
    ngx_str_t                       lines;
    ngx_str_t                       within_days;
    ngx_str_t                       prefix;
} ngx_http_tenant_api_args_t;


/* what a tenant's key may do with a route (api_keys.tenant_id) */
#define NGX_HTTP_TENANT_API_PLATFORM    0   /* nothing: 403 */
#define NGX_HTTP_TENANT_API_TENANT      1   /* tenants/{name}: its own */
#define NGX_HTTP_TENANT_API_OWNED       2   /* jobs/{id}, backups/{id}: its
                                               tenant's */


typedef struct {
    ngx_uint_t                      method;
    const char                     *path;       /* "tenants/{name}" style, see below */
    ngx_uint_t                      auth;
    ngx_uint_t                      body;
    ngx_http_tenant_api_action_pt   action;
    ngx_uint_t                      scope;      /* NGX_HTTP_TENANT_API_* */
} ngx_http_tenant_api_route_t;


/*
 * Lives in a pool of its own: a registry query may still be running when
 * the client goes away, and must find its context alive when it returns.
 */
struct ngx_http_tenant_api_ctx_s {
    ngx_pool_t                     *pool;
    ngx_http_request_t             *request;    /* NULL once it is gone */
    ngx_http_tenant_api_route_t    *route;

    ngx_str_t                       prefix;     /* the location's */
    ngx_str_t                       arg[2];     /* the route's '*' parts */
    ngx_http_tenant_api_args_t      args;
    ngx_str_t                       idempotency_key;  /* the header's */
    ngx_http_tenant_main_conf_t    *tmcf;
    ngx_http_tenant_certs_t        *certs;      /* NULL: no tenant_ssl_zone */
    json_t                         *body;

    ngx_str_t                       key_id;
    u_char                          key_hash[32];
    ngx_str_t                       key_tenant; /* a tenant's key: its
                                                   tenant; len 0: none */
    ngx_str_t                       owned;      /* the path's id it owns */
    ngx_str_t                       actor;      /* "key:<id>", "user:<name>" */

    /* an operator's session (ngx_http_tenant_api_session.c) */
    ngx_str_t                       cookie;     /* its token, as sent */
    ngx_str_t                       csrf_header;
    const char                     *user_agent;   /* C strings */
    const char                     *address;
    ngx_thread_pool_t              *thread_pool;
    ngx_str_t                       user;
    ngx_str_t                       csrf;
    ngx_str_t                       session_token;  /* a new one's */
    char                           *session_hex;  /* SHA-256 of the token */

    const char                     *list_prefix;  /* GET tenants' */
    const char                     *list_status;
    ngx_str_t                       idempotency;

    ngx_int_t                       wait;       /* seconds, -1: no */
    ngx_uint_t                      create_limit;
    ngx_flag_t                      verify_domains;
    time_t                          create_window;
    time_t                          retry_after;    /* 0: no header */
    json_t                         *openapi;        /* the location's */
    int64_t                         job;
    ngx_event_t                     wait_timer;
    ngx_queue_t                     wait_queue;
    ngx_http_tenant_api_action_pt   unwait;     /* set while waiting */

    void                           *data;       /* the action's own */

    ngx_http_tenant_pg_query_t      query;
    ngx_http_tenant_api_next_pt     next;

    unsigned                        in_query:1;
    unsigned                        session:1;  /* authenticated by one */
    unsigned                        waiting:1;
    unsigned                        recheck:1;  /* job_done during a read */
};


/* ngx_http_tenant_api_ctx.c */
ngx_int_t ngx_http_tenant_api_query(ngx_http_tenant_api_ctx_t *ctx,
    const char *sql, ngx_http_tenant_api_next_pt next, ngx_uint_t n, ...);
void ngx_http_tenant_api_reply(ngx_http_tenant_api_ctx_t *ctx,
    ngx_uint_t status, json_t *body);
void ngx_http_tenant_api_error(ngx_http_tenant_api_ctx_t *ctx,
    ngx_uint_t status, const char *code, const char *message,
    const char *field);
void ngx_http_tenant_api_db_error(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res);
ngx_int_t ngx_http_tenant_api_tenant_row(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res);
json_t *ngx_http_tenant_api_json(PGresult *res, int col);
ngx_int_t ngx_http_tenant_api_arg(ngx_http_tenant_api_ctx_t *ctx,
    ngx_uint_t n, ngx_str_t *value);
const char *ngx_http_tenant_api_str(ngx_http_tenant_api_ctx_t *ctx,
    const char *name, ngx_uint_t required, ngx_str_t *value);
ngx_int_t ngx_http_tenant_api_only(ngx_http_tenant_api_ctx_t *ctx,
    const char **fields);
void ngx_http_tenant_api_free(ngx_http_tenant_api_ctx_t *ctx);
const char *ngx_http_tenant_api_str_max(ngx_http_tenant_api_ctx_t *ctx,
    const char *name, ngx_uint_t required, size_t max, ngx_str_t *value);
ngx_int_t ngx_http_tenant_api_number(ngx_http_tenant_api_ctx_t *ctx,
    ngx_str_t *v, const char *name, ngx_int_t def, ngx_int_t lo,
    ngx_int_t hi);
ngx_int_t ngx_http_tenant_api_status_arg(ngx_http_tenant_api_ctx_t *ctx,
    const char **values, const char *valid, const char **out);
void ngx_http_tenant_api_wrap(ngx_http_tenant_api_ctx_t *ctx, PGresult *res,
    const char *name, const char *code, const char *message,
    const char *field);

/* ngx_http_tenant_api_browse.c */
void ngx_http_tenant_api_blueprints(ngx_http_tenant_api_ctx_t *ctx);
void ngx_http_tenant_api_platform(ngx_http_tenant_api_ctx_t *ctx);
void ngx_http_tenant_api_jobs(ngx_http_tenant_api_ctx_t *ctx);
void ngx_http_tenant_api_audit(ngx_http_tenant_api_ctx_t *ctx);
void ngx_http_tenant_api_openapi(ngx_http_tenant_api_ctx_t *ctx);

/* ngx_http_tenant_api_certs.c */
void ngx_http_tenant_api_cert_put(ngx_http_tenant_api_ctx_t *ctx);
void ngx_http_tenant_api_cert_get(ngx_http_tenant_api_ctx_t *ctx);
void ngx_http_tenant_api_cert_delete(ngx_http_tenant_api_ctx_t *ctx);
void ngx_http_tenant_api_certs_expiring(ngx_http_tenant_api_ctx_t *ctx);
void ngx_http_tenant_api_hsts(ngx_http_tenant_api_ctx_t *ctx);

/* ngx_http_tenant_api_limits.c */
void ngx_http_tenant_api_limits_get(ngx_http_tenant_api_ctx_t *ctx);
void ngx_http_tenant_api_limits_put(ngx_http_tenant_api_ctx_t *ctx);
void ngx_http_tenant_api_plans(ngx_http_tenant_api_ctx_t *ctx);
void ngx_http_tenant_api_plan_put(ngx_http_tenant_api_ctx_t *ctx);

/* ngx_http_tenant_api_session.c */
#define NGX_HTTP_TENANT_API_SESSION_COOKIE  "ngx_tenant_session"
void ngx_http_tenant_api_signin(ngx_http_tenant_api_ctx_t *ctx);
void ngx_http_tenant_api_session_show(ngx_http_tenant_api_ctx_t *ctx);
void ngx_http_tenant_api_signout(ngx_http_tenant_api_ctx_t *ctx);
ngx_int_t ngx_http_tenant_api_session_auth(ngx_http_tenant_api_ctx_t *ctx);

/* ngx_http_tenant_api_traffic.c */
void ngx_http_tenant_api_traffic(ngx_http_tenant_api_ctx_t *ctx);

/* ngx_http_tenant_api_jobs.c */
void ngx_http_tenant_api_job(ngx_http_tenant_api_ctx_t *ctx);
void ngx_http_tenant_api_job_reply(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res);

/* ngx_http_tenant_api_actions.c */
extern ngx_http_tenant_api_route_t  ngx_http_tenant_api_routes[];

/*
 * A mutation waiting to be sent: after the Idempotency-Key replay check, or
 * at once without the header.
 */
typedef struct {
    const char                     *sql;
    const char                     *params[NGX_HTTP_TENANT_API_MAX_PARAMS];
    ngx_uint_t                      nparams;
    ngx_http_tenant_api_next_pt     next;

    /* a 409 held back while the Idempotency-Key is looked up once more */
    const char                     *code;
    const char                     *message;
    const char                     *field;
} ngx_http_tenant_api_stmt_t;

/* a constraint the registry may report, and the 409 it stands for */
typedef struct {
    const char                     *constraint;
    const char                     *code;
    const char                     *message;
    const char                     *field;
} ngx_http_tenant_api_conflict_t;

/* ngx_http_tenant_api_mutate.c */
extern const char  ngx_http_tenant_api_replay_sql[];
/* the answer of the replay look-up: the first request's job, or the
 * statement sent */
void ngx_http_tenant_api_replayed(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res);
ngx_int_t ngx_http_tenant_api_name_arg(ngx_http_tenant_api_ctx_t *ctx,
    ngx_str_t *name);
ngx_int_t ngx_http_tenant_api_written(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res, const ngx_http_tenant_api_conflict_t *conflicts,
    const char *wrong);
void ngx_http_tenant_api_conflict(ngx_http_tenant_api_ctx_t *ctx,
    const char *code, const char *message, const char *field);
ngx_http_tenant_api_stmt_t *ngx_http_tenant_api_stmt(
    ngx_http_tenant_api_ctx_t *ctx, const char *sql,
    ngx_http_tenant_api_next_pt next);
/* sends st with the idempotency key and the actor as its last params */
void ngx_http_tenant_api_mutate(ngx_http_tenant_api_ctx_t *ctx,
    ngx_http_tenant_api_stmt_t *st);
/* the answer of a tenant_* lifecycle function: the job, or 404/409 */
void ngx_http_tenant_api_job_made(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res);

/* ngx_http_tenant_api_signups.c */
void ngx_http_tenant_api_signup(ngx_http_tenant_api_ctx_t *ctx);
void ngx_http_tenant_api_signups(ngx_http_tenant_api_ctx_t *ctx);
void ngx_http_tenant_api_signup_settings(ngx_http_tenant_api_ctx_t *ctx);
void ngx_http_tenant_api_signup_approve(ngx_http_tenant_api_ctx_t *ctx);
void ngx_http_tenant_api_signup_reject(ngx_http_tenant_api_ctx_t *ctx);

/* ngx_http_tenant_api_keys.c */
void ngx_http_tenant_api_keys(ngx_http_tenant_api_ctx_t *ctx);
void ngx_http_tenant_api_key_create(ngx_http_tenant_api_ctx_t *ctx);
void ngx_http_tenant_api_key_revoke(ngx_http_tenant_api_ctx_t *ctx);

/* ngx_http_tenant_api_jwt.c */
void ngx_http_tenant_api_jwt_keys(ngx_http_tenant_api_ctx_t *ctx);
void ngx_http_tenant_api_jwt_key_add(ngx_http_tenant_api_ctx_t *ctx);
void ngx_http_tenant_api_jwt_key_delete(ngx_http_tenant_api_ctx_t *ctx);
void ngx_http_tenant_api_jwks_sources(ngx_http_tenant_api_ctx_t *ctx);
void ngx_http_tenant_api_jwks_source_add(ngx_http_tenant_api_ctx_t *ctx);
void ngx_http_tenant_api_jwks_source_delete(ngx_http_tenant_api_ctx_t *ctx);

/* ngx_http_tenant_api_backups.c */
void ngx_http_tenant_api_backups(ngx_http_tenant_api_ctx_t *ctx);
void ngx_http_tenant_api_backup_create(ngx_http_tenant_api_ctx_t *ctx);
void ngx_http_tenant_api_backup_get(ngx_http_tenant_api_ctx_t *ctx);
void ngx_http_tenant_api_backup_verify(ngx_http_tenant_api_ctx_t *ctx);
void ngx_http_tenant_api_backup_restore(ngx_http_tenant_api_ctx_t *ctx);
void ngx_http_tenant_api_backup_clone(ngx_http_tenant_api_ctx_t *ctx);
void ngx_http_tenant_api_migrations(ngx_http_tenant_api_ctx_t *ctx);
void ngx_http_tenant_api_migration_start(ngx_http_tenant_api_ctx_t *ctx);
void ngx_http_tenant_api_migration_get(ngx_http_tenant_api_ctx_t *ctx);
void ngx_http_tenant_api_migration_resume(ngx_http_tenant_api_ctx_t *ctx);


#endif /* _NGX_HTTP_TENANT_API_H_INCLUDED_ */
