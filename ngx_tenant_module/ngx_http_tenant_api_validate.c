
/*
 * Admin API input validation: pure functions, fuzzed on their own.  The
 * tenant name rules are the provisioner's too (common/tenant_names.c).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_http_tenant_api_validate.h"
#include "ngx_http_tenant_host.h"
#include "tenant_names.h"


/* deliberately simple: one '@', a dotted domain, printable ASCII only */

const char *
ngx_http_tenant_api_check_email(u_char *s, size_t len)
{
    u_char  *at, *p;
    size_t   i;

    if (len < 3 || len > 254) {
        return "must be 3-254 characters";
    }

    for (i = 0; i < len; i++) {
        /* it is written into login files whose fields ':' separates */
        if (s[i] <= 0x20 || s[i] >= 0x7f || s[i] == '"' || s[i] == '\\'
            || s[i] == '<' || s[i] == '>' || s[i] == ':' || s[i] == ','
            || s[i] == ';')
        {
            return "must be a plain address like owner@example.com: no "
                   "spaces, control characters, quotes, '<', '>', ':', "
                   "',' or ';'";
        }
    }

    at = ngx_strlchr(s, s + len, '@');

    if (at == NULL || at == s || ngx_strlchr(at + 1, s + len, '@')) {
        return "must contain exactly one '@' after a local part";
    }

    p = ngx_strlchr(at + 1, s + len, '.');

    if (p == NULL || p == at + 1 || p == s + len - 1) {
        return "must have a domain like example.com";
    }

    return NULL;
}


const char *
ngx_http_tenant_api_check_password(u_char *s, size_t len)
{
    size_t  i;

    if (len < 10 || len > 128) {
        return "must be 10-128 characters";
    }

    for (i = 0; i < len; i++) {
        if (s[i] < 0x20 || s[i] == 0x7f) {
            return "must not contain control characters";
        }
    }

    return NULL;
}


/* free text (display names): no control characters; UTF-8 is jansson's */

const char *
ngx_http_tenant_api_check_text(u_char *s, size_t len, size_t max)
{
    size_t  i;

    /* the callers' limits, so the message can state them */
    if (len > max) {
        return max == 200 ? "is too long: at most 200 bytes"
                          : "is too long for its field";
    }

    for (i = 0; i < len; i++) {
        if (s[i] < 0x20 || s[i] == 0x7f) {
            return "must not contain control characters";
        }
    }

    return NULL;
}


/* a custom domain: a normalised host name with at least two labels */

const char *
ngx_http_tenant_api_check_domain(u_char *buf, u_char *s, size_t len,
    size_t *out)
{
    ngx_int_t  n;

    if (ngx_strlchr(s, s + len, ':')) {
        return "must be a host name without a port";
    }

    n = ngx_http_tenant_host_normalize(buf, s, len);

    if (n == 0) {
        return "must be a name, not an IP address";
    }

    if (n < 0) {
        return "must be a valid host name";
    }

    if (ngx_strlchr(buf, buf + n, '.') == NULL) {
        return "must have at least two labels, like shop.example.com";
    }

    *out = n;

    return NULL;
}
