#define _POSIX_C_SOURCE 200809L

#include "names.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <string.h>

static const char *const reserved[] = {
    "admin", "administrator", "api", "app", "apps", "assets", "auth",
    "billing", "blog-admin", "cdn", "console", "dashboard", "dev", "dns",
    "docs", "email", "ftp", "git", "help", "imap", "internal", "localhost",
    "login", "mail", "mx", "ns1", "ns2", "pop", "pop3", "postmaster",
    "root", "smtp", "staff", "static", "status", "superadmin", "support",
    "sysadmin", "system", "tenant", "tenants", "test", "webmail", "www",
    NULL
};

const char *
name_check(const char *name)
{
    static pcre2_code   *re;
    pcre2_match_data    *md;
    int                  rc, errcode;
    PCRE2_SIZE           erroff;
    const char *const   *w;

    if (re == NULL) {
        re = pcre2_compile((PCRE2_SPTR) "^(?!-)(?!.*--)[a-z0-9-]{3,30}(?<!-)$",
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
               "or double '-'";
    }
    for (w = reserved; *w; w++) {
        if (strcmp(*w, name) == 0) {
            return "is reserved";
        }
    }
    return NULL;
}
