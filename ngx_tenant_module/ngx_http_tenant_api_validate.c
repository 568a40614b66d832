
/*
 * Admin API input validation.  Tenant names become DNS labels, database
 * names and file names, so they are held to a narrow pattern (PCRE2) and
 * kept off a list of names the platform itself uses.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_http_tenant_api_validate.h"
#include "ngx_http_tenant_host.h"
#include "ngx_http_tenant_reserved.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>


static ngx_int_t ngx_http_tenant_api_match(pcre2_code **re,
    const char *pattern, u_char *s, size_t len);


/*
 * 3-30 of [a-z0-9-]; no leading, trailing or double hyphen.  Lookarounds
 * keep it one pattern, as documented.
 */
static const char  ngx_http_tenant_api_name_re[] = NGX_HTTP_TENANT_NAME_RE;

static const char  ngx_http_tenant_api_slug_re[] =
    "^[a-z0-9][a-z0-9_-]{0,63}$";

/* compiled on first use in a worker, freed when it exits */
static pcre2_code  *ngx_http_tenant_api_name_code;
static pcre2_code  *ngx_http_tenant_api_slug_code;

static const char *ngx_http_tenant_api_reserved[] = {
    NGX_HTTP_TENANT_RESERVED
};


const char *
ngx_http_tenant_api_check_name(u_char *s, size_t len)
{
    const char  **w;

    switch (ngx_http_tenant_api_match(&ngx_http_tenant_api_name_code,
                                      ngx_http_tenant_api_name_re,
                                      s, len))
    {
    case NGX_OK:
        break;

    case NGX_DECLINED:
        return "must be 3-30 of a-z, 0-9 and '-', with no leading, trailing "
               "or double '-', not starting with rt- (the platform's)";

    default:
        return "cannot be checked";
    }

    for (w = ngx_http_tenant_api_reserved; *w; w++) {
        if (ngx_strlen(*w) == len && ngx_strncmp(*w, s, len) == 0) {
            return "is reserved";
        }
    }

    return NULL;
}


const char *
ngx_http_tenant_api_check_slug(u_char *s, size_t len)
{
    switch (ngx_http_tenant_api_match(&ngx_http_tenant_api_slug_code,
                                      ngx_http_tenant_api_slug_re,
                                      s, len))
    {
    case NGX_OK:
        return NULL;

    case NGX_DECLINED:
        return "must be 1-64 of a-z, 0-9, '_' and '-'";

    default:
        return "cannot be checked";
    }
}


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


void
ngx_http_tenant_api_validate_free(void)
{
    pcre2_code_free(ngx_http_tenant_api_name_code);
    pcre2_code_free(ngx_http_tenant_api_slug_code);

    ngx_http_tenant_api_name_code = NULL;
    ngx_http_tenant_api_slug_code = NULL;
}


static ngx_int_t
ngx_http_tenant_api_match(pcre2_code **re, const char *pattern, u_char *s,
    size_t len)
{
    int                  rc, errcode;
    PCRE2_SIZE           erroff;
    pcre2_match_data    *md;

    if (*re == NULL) {
        *re = pcre2_compile((PCRE2_SPTR) pattern, PCRE2_ZERO_TERMINATED,
                            PCRE2_DOLLAR_ENDONLY, &errcode, &erroff, NULL);
        if (*re == NULL) {
            return NGX_ERROR;
        }
    }

    md = pcre2_match_data_create_from_pattern(*re, NULL);
    if (md == NULL) {
        return NGX_ERROR;
    }

    /*
     * NUL bytes are part of the subject: len, not strlen, bounds it;
     * DOLLAR_ENDONLY keeps "$" from matching before a trailing newline
     */
    rc = pcre2_match(*re, (PCRE2_SPTR) s, len, 0, 0, md, NULL);

    pcre2_match_data_free(md);

    if (rc == PCRE2_ERROR_NOMATCH) {
        return NGX_DECLINED;
    }

    return rc < 0 ? NGX_ERROR : NGX_OK;
}
