
/*
 * "name:size", as limit_req_zone and the others take a zone: one parser, so
 * every zone directive refuses alike and says what it wants.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_http_tenant_conf.h"


char *
ngx_http_tenant_conf_zone(ngx_conf_t *cf, ngx_str_t *arg, size_t min,
    ngx_str_t *name, ssize_t *size)
{
    u_char     *p;
    ngx_str_t   s;

    p = (u_char *) ngx_strlchr(arg->data, arg->data + arg->len, ':');

    if (p != NULL) {
        name->data = arg->data;
        name->len = p - arg->data;
        s.data = p + 1;
        s.len = arg->data + arg->len - s.data;

        *size = ngx_parse_size(&s);

        if (name->len && *size != NGX_ERROR && *size >= (ssize_t) min) {
            return NGX_CONF_OK;
        }
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid zone \"%V\", expected name:size, "
                       "the size %uz or more", arg, min);

    return NGX_CONF_ERROR;
}
