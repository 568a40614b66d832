
/*
 * A tenant name becomes a DNS label, a database name, a Unix user and a
 * directory, so it is held to 3-30 of [a-z0-9-] with no leading, trailing
 * or double hyphen (which DNS and IDNA treat specially), off the rt- prefix
 * that names the platform's shared runtimes, and off a list of names the
 * platform itself answers to.  The README states the same rule as a regular
 * expression; t/unit/test_names.c holds the two to each other.
 */


#include "tenant_names.h"

#include <string.h>


static const char  *tenant_reserved[] = {
    "admin", "administrator", "api", "app", "apps", "assets", "auth",
    "billing", "blog-admin", "cdn", "console", "dashboard", "dev", "dns",
    "docs", "email", "ftp", "git", "help", "imap", "internal", "localhost",
    "login", "mail", "mx", "ns1", "ns2", "pop", "pop3", "postmaster",
    "root", "smtp", "staff", "static", "status", "superadmin", "support",
    "sysadmin", "system", "tenant", "tenants", "test", "webmail", "www",
    NULL
};


static int
tenant_lower_digit(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}


const char *
tenant_name_check(const unsigned char *s, size_t len)
{
    size_t        i;
    const char  **w;

    if (len < TENANT_NAME_MIN || len > TENANT_NAME_MAX) {
        goto invalid;
    }

    for (i = 0; i < len; i++) {
        if (tenant_lower_digit(s[i])) {
            continue;
        }

        if (s[i] != '-' || i == 0 || i == len - 1 || s[i - 1] == '-') {
            goto invalid;
        }
    }

    if (memcmp(s, "rt-", 3) == 0) {
        goto invalid;
    }

    for (w = tenant_reserved; *w; w++) {
        if (strlen(*w) == len && memcmp(*w, s, len) == 0) {
            return "is reserved";
        }
    }

    return NULL;

invalid:

    return "must be 3-30 of a-z, 0-9 and '-', with no leading, trailing or "
           "double '-', not starting with rt- (the platform's)";
}


/* blueprint and theme names, key ids: 1-64 of [a-z0-9_-], a letter or digit
 * first */

const char *
tenant_slug_check(const unsigned char *s, size_t len)
{
    size_t  i;

    if (len == 0 || len > TENANT_SLUG_MAX || !tenant_lower_digit(s[0])) {
        return "must be 1-64 of a-z, 0-9, '_' and '-'";
    }

    for (i = 1; i < len; i++) {
        if (!tenant_lower_digit(s[i]) && s[i] != '_' && s[i] != '-') {
            return "must be 1-64 of a-z, 0-9, '_' and '-'";
        }
    }

    return NULL;
}
