
/*
 * libFuzzer target: admin API body parsing and validation
 * (ngx_http_tenant_api_validate.c), as the API does it: jansson with
 * duplicate keys refused, then every string field through the validators.
 * A name that passes must satisfy the documented rule.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <jansson.h>
#include "ngx_http_tenant_api_validate.h"
#include "ngx_http_tenant_host.h"


static void
check(const char *s, size_t len)
{
    u_char  buf[NGX_HTTP_TENANT_HOST_MAX + 1];
    size_t  i, n;

    if (tenant_name_check((u_char *) s, len) == NULL) {
        if (len < 3 || len > 30 || s[0] == '-' || s[len - 1] == '-') {
            __builtin_trap();
        }
        for (i = 0; i < len; i++) {
            if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')
                  || s[i] == '-') || (s[i] == '-' && s[i + 1] == '-'))
            {
                __builtin_trap();
            }
        }
    }

    (void) tenant_slug_check((u_char *) s, len);
    (void) ngx_http_tenant_api_check_email((u_char *) s, len);
    (void) ngx_http_tenant_api_check_password((u_char *) s, len);
    (void) ngx_http_tenant_api_check_text((u_char *) s, len, 200);

    if (ngx_http_tenant_api_check_domain(buf, (u_char *) s, len, &n) == NULL
        && (n == 0 || n > NGX_HTTP_TENANT_HOST_MAX))
    {
        __builtin_trap();
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t       *body, *v;
    json_error_t  err;
    const char   *key;

    if (size > 65536) {
        return 0;
    }

    /* the raw bytes as one field value */
    check((const char *) data, size);

    body = json_loadb((const char *) data, size, JSON_REJECT_DUPLICATES, &err);
    if (body == NULL) {
        return 0;
    }

    if (json_is_object(body)) {
        json_object_foreach(body, key, v) {
            check(key, strlen(key));
            if (json_is_string(v)) {
                check(json_string_value(v), json_string_length(v));
            }
        }
    }

    json_decref(body);
    return 0;
}
