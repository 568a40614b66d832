#define _POSIX_C_SOURCE 200809L

#include "names.h"
#include "ngx_http_tenant_reserved.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <string.h>

/* shared with the admin API, so both refuse the same names */
static const char *const reserved[] = { NGX_HTTP_TENANT_RESERVED };

const char *
name_check(const char *name)
{
    static pcre2_code   *re;
    pcre2_match_data    *md;
    int                  rc, errcode;
    PCRE2_SIZE           erroff;
    const char *const   *w;

    if (re == NULL) {
        re = pcre2_compile((PCRE2_SPTR) NGX_HTTP_TENANT_NAME_RE,
                           PCRE2_ZERO_TERMINATED, PCRE2_DOLLAR_ENDONLY,
                           &errcode, &erroff, NULL);
        if (re == NULL) {
            return "cannot be checked";
        }
    }

    md = pcre2_match_data_create_from_pattern(re, NULL);
    if (md == NULL) {
        return "cannot be checked";
    }
    rc = pcre2_match(re, (PCRE2_SPTR) name, strlen(name), 0, 0, md, NULL);
    pcre2_match_data_free(md);

    if (rc < 0) {
        return "must be 3-30 of a-z, 0-9 and '-', with no leading, trailing "
               "or double '-', not starting with rt- (the platform's)";
    }
    for (w = reserved; *w; w++) {
        if (strcmp(*w, name) == 0) {
            return "is reserved";
        }
    }
    return NULL;
}
