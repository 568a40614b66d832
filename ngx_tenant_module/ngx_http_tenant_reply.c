
/*
 * What the module answers by itself.  Both APIs reply in JSON alike: one
 * compact line, ASCII-escaped so that no byte a tenant supplied can break
 * out of its string, with a Content-Length.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_tenant_reply.h"


static ngx_int_t ngx_http_tenant_reply_send(ngx_http_request_t *r,
    ngx_uint_t status, const char *type, ngx_buf_t *b);


/* takes body (NULL: out of memory); the caller finalizes with the result */

ngx_int_t
ngx_http_tenant_reply_json(ngx_http_request_t *r, ngx_uint_t status,
    json_t *body)
{
    char       *text;
    size_t      len;
    ngx_buf_t  *b;

    text = body ? json_dumps(body, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(body);

    if (text == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = ngx_strlen(text);

    b = ngx_create_temp_buf(r->pool, len + 1);
    if (b == NULL) {
        free(text);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_cpymem(b->last, text, len);
    *b->last++ = '\n';

    free(text);

    return ngx_http_tenant_reply_send(r, status, "application/json", b);
}


/* a plain-text body (an ACME key authorisation), no newline added */

ngx_int_t
ngx_http_tenant_reply_text(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *body)
{
    ngx_buf_t  *b;

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = body->data;
    b->last = body->data + body->len;
    b->memory = 1;

    return ngx_http_tenant_reply_send(r, status, "text/plain", b);
}


static ngx_int_t
ngx_http_tenant_reply_send(ngx_http_request_t *r, ngx_uint_t status,
    const char *type, ngx_buf_t *b)
{
    ngx_int_t    rc;
    ngx_chain_t  out;

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = status;
    r->headers_out.content_length_n = b->last - b->pos;
    r->headers_out.content_type.data = (u_char *) type;
    r->headers_out.content_type.len = ngx_strlen(type);
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/* {"error": {"code", "message"[, "field"]}}; NULL when out of memory */

json_t *
ngx_http_tenant_reply_error(const char *code, const char *message,
    const char *field)
{
    json_t  *err;

    err = json_pack("{s:s, s:s}", "code", code, "message", message);

    if (err && field) {
        json_object_set_new(err, "field", json_string(field));
    }

    return err ? json_pack("{s:o}", "error", err) : NULL;
}


/* an output header whose value is printed from fmt, at most max bytes */

ngx_int_t
ngx_http_tenant_reply_header(ngx_http_request_t *r, const char *key,
    size_t max, const char *fmt, ...)
{
    va_list           args;
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->value.data = ngx_pnalloc(r->pool, max);
    if (h->value.data == NULL) {
        h->hash = 0;
        return NGX_ERROR;
    }

    va_start(args, fmt);
    h->value.len = ngx_vslprintf(h->value.data, h->value.data + max, fmt,
                                 args)
                   - h->value.data;
    va_end(args);

    h->hash = 1;
    h->key.data = (u_char *) key;
    h->key.len = ngx_strlen(key);

    return NGX_OK;
}


/* the request's path below its location's prefix, without edge slashes */

void
ngx_http_tenant_reply_path(ngx_http_request_t *r, ngx_str_t *path)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    *path = r->uri;

    if (path->len >= clcf->name.len
        && ngx_strncmp(path->data, clcf->name.data, clcf->name.len) == 0)
    {
        path->data += clcf->name.len;
        path->len -= clcf->name.len;
    }

    while (path->len && path->data[0] == '/') {
        path->data++;
        path->len--;
    }

    while (path->len && path->data[path->len - 1] == '/') {
        path->len--;
    }
}
