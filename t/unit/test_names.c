
/*
 * Unit tests for the tenant name rules (common/tenant_names.c), held to the
 * regular expression the README states: every string over an alphabet that
 * exercises each rule, up to six characters, must get the same verdict from
 * both; prints TAP for prove.
 *
 * sources: common/tenant_names.c
 * libs: -lpcre2-8
 */


#define PCRE2_CODE_UNIT_WIDTH 8

#include <pcre2.h>
#include <stdio.h>
#include <string.h>

#include "tenant_names.h"


#define NAME_RE  "^(?!-)(?!.*--)(?!rt-)[a-z0-9-]{3,30}(?<!-)$"


static int  ntests;


static void
ok(int cond, const char *what, const char *s)
{
    ntests++;
    printf("%s %d - %s \"%s\"\n", cond ? "ok" : "not ok", ntests, what, s);
}


static int
regex_says(pcre2_code *re, pcre2_match_data *md, const char *s)
{
    return pcre2_match(re, (PCRE2_SPTR) s, strlen(s), 0, 0, md, NULL) >= 0;
}


static int
check_says(const char *s)
{
    const char  *why;

    why = tenant_name_check((const unsigned char *) s, strlen(s));

    /* a reserved name fits the pattern: only the list refuses it */
    return why == NULL || strcmp(why, "is reserved") == 0;
}


int
main(void)
{
    static const char   alphabet[] = "a-rt0Z_.";
    char                s[40], first[40], slug[65];
    int                 errcode, len, i, n, idx[6], disagree;
    long                tried;
    PCRE2_SIZE          erroff;
    pcre2_code         *re;
    pcre2_match_data   *md;

    re = pcre2_compile((PCRE2_SPTR) NAME_RE, PCRE2_ZERO_TERMINATED,
                       PCRE2_DOLLAR_ENDONLY, &errcode, &erroff, NULL);
    md = pcre2_match_data_create_from_pattern(re, NULL);

    printf("1..16\n");

    /* every string of 0-6 characters over the alphabet: 8^0 + ... + 8^6 */
    n = (int) strlen(alphabet);
    disagree = 0;
    tried = 0;
    first[0] = '\0';

    for (len = 0; len <= 6; len++) {
        memset(idx, 0, sizeof(idx));

        for ( ;; ) {
            for (i = 0; i < len; i++) {
                s[i] = alphabet[idx[i]];
            }
            s[len] = '\0';
            tried++;

            if (regex_says(re, md, s) != check_says(s)) {
                if (disagree++ == 0) {
                    strcpy(first, s);
                }
            }

            for (i = 0; i < len && ++idx[i] == n; i++) {
                idx[i] = 0;
            }
            if (i == len) {
                break;
            }
        }
    }

    printf("# %ld strings compared, %d disagreements\n", tried, disagree);
    ok(disagree == 0 && tried == 299593, "the check and the regex agree on",
       disagree ? first : "all");

    /* the edges of length, which the exhaustive pass does not reach */
    memset(s, 'a', 30);
    s[30] = '\0';
    ok(regex_says(re, md, s) && check_says(s), "30 characters pass", s);
    s[30] = 'a';
    s[31] = '\0';
    ok(!regex_says(re, md, s) && !check_says(s), "31 characters fail", s);
    memcpy(s, "abc-def-ghi-jkl-mno-pqr-stu-v-", 30);
    s[30] = '\0';
    ok(!check_says(s), "a trailing hyphen at 30 fails", s);

    ok(tenant_name_check((const unsigned char *) "www", 3) != NULL
       && strcmp(tenant_name_check((const unsigned char *) "www", 3),
                 "is reserved") == 0, "reserved", "www");
    ok(tenant_name_check((const unsigned char *) "admin", 5) != NULL,
       "reserved", "admin");
    ok(tenant_name_check((const unsigned char *) "shop1", 5) == NULL,
       "valid", "shop1");
    ok(tenant_name_check((const unsigned char *) "rt-static", 9) != NULL,
       "the platform's prefix", "rt-static");
    ok(tenant_name_check((const unsigned char *) "art-shop", 8) == NULL,
       "rt- inside a name is fine", "art-shop");

    /* a NUL inside the subject is a character like any other */
    ok(tenant_name_check((const unsigned char *) "ab\0cd", 5) != NULL,
       "an embedded NUL fails", "ab\\0cd");

    ok(tenant_slug_check((const unsigned char *) "static", 6) == NULL,
       "slug", "static");
    ok(tenant_slug_check((const unsigned char *) "my_theme-2", 10) == NULL,
       "slug", "my_theme-2");
    ok(tenant_slug_check((const unsigned char *) "_x", 2) != NULL,
       "slug must start with a letter or digit", "_x");
    ok(tenant_slug_check((const unsigned char *) "", 0) != NULL,
       "empty slug", "");
    memset(slug, 'b', sizeof(slug));
    ok(tenant_slug_check((const unsigned char *) slug, 64) == NULL
       && tenant_slug_check((const unsigned char *) slug, 65) != NULL,
       "a slug has at most 64 characters", "b x 64");
    ok(tenant_slug_check((const unsigned char *) "Abc", 3) != NULL,
       "slug is lower case", "Abc");

    pcre2_match_data_free(md);
    pcre2_code_free(re);

    return 0;
}
