
/*
 * The question outlives the request that asked it: a client may leave
 * while the registry answers.  The request's cleanup cancels, and the
 * answer then only frees the question.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_tenant_jwt_signup.h"
#include "ngx_http_tenant_pg.h"


struct ngx_http_tenant_jwt_signup_s {
    ngx_http_tenant_pg_query_t      query;
    ngx_http_request_t             *request;   /* NULL: cancelled */
    ngx_http_tenant_jwt_signup_pt   handler;
    u_char                         *tenant;
    u_char                         *subject;
};


static void ngx_http_tenant_jwt_signup_answer(ngx_http_tenant_pg_query_t *q,
    PGresult *res);


/* sign-ups keep their email in lower case (migration 018) */
static const char  ngx_http_tenant_jwt_signup_sql[] =
    "SELECT 1 FROM tenant_signups"
    " WHERE tenant_id = $1 AND email = lower($2) AND status = 'approved'";


ngx_int_t
ngx_http_tenant_jwt_signup_ask(ngx_http_request_t *r, ngx_str_t *tenant,
    ngx_str_t *subject, ngx_http_tenant_jwt_signup_pt handler,
    ngx_http_tenant_jwt_signup_t **ask)
{
    u_char                        *p;
    ngx_http_tenant_jwt_signup_t  *a;

    a = ngx_calloc(sizeof(ngx_http_tenant_jwt_signup_t) + tenant->len
                   + subject->len + 2, r->connection->log);
    if (a == NULL) {
        return NGX_ERROR;
    }

    p = (u_char *) (a + 1);
    a->tenant = p;
    p = ngx_cpymem(p, tenant->data, tenant->len);
    *p++ = '\0';
    a->subject = p;
    p = ngx_cpymem(p, subject->data, subject->len);
    *p = '\0';

    a->request = r;
    a->handler = handler;

    a->query.sql = ngx_http_tenant_jwt_signup_sql;
    a->query.nparams = 2;
    a->query.params[0] = (char *) a->tenant;
    a->query.params[1] = (char *) a->subject;
    a->query.handler = ngx_http_tenant_jwt_signup_answer;
    a->query.data = a;

    if (ngx_http_tenant_pg_send(&a->query) != NGX_OK) {
        ngx_free(a);
        return NGX_DECLINED;
    }

    *ask = a;

    return NGX_OK;
}


void
ngx_http_tenant_jwt_signup_cancel(ngx_http_tenant_jwt_signup_t *ask)
{
    ask->request = NULL;
}


static void
ngx_http_tenant_jwt_signup_answer(ngx_http_tenant_pg_query_t *q,
    PGresult *res)
{
    ngx_http_tenant_jwt_signup_t  *a = q->data;

    ngx_uint_t  answer;

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "tenant: sign-up of \"%s\" could not be checked: %s",
                      a->tenant,
                      res ? PQresultErrorMessage(res) : "no answer");
        answer = NGX_HTTP_TENANT_JWT_SIGNUP_FAILED;

    } else {
        answer = PQntuples(res) ? NGX_HTTP_TENANT_JWT_SIGNUP_APPROVED
                                : NGX_HTTP_TENANT_JWT_SIGNUP_NOT;
    }

    if (a->request) {
        a->handler(a->request, answer);
    }

    ngx_free(a);
}
