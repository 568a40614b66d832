#define _POSIX_C_SOURCE 200809L

#include "jwks.h"
#include "db.h"
#include "jwk.h"
#include "log.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JWKS_TIMEOUT   10
#define JWKS_MAX_BODY  (256 * 1024)
#define JWKS_MAX_KEYS  64

struct body {
    char    *data;
    size_t   len;
    int      too_big;
};

static size_t
collect(char *ptr, size_t size, size_t n, void *arg)
{
    struct body  *b = arg;
    size_t        add = size * n;
    char         *d;

    if (b->len + add > JWKS_MAX_BODY) {
        b->too_big = 1;
        return 0;               /* ends the transfer */
    }
    d = realloc(b->data, b->len + add + 1);
    if (d == NULL) {
        return 0;
    }
    memcpy(d + b->len, ptr, add);
    b->data = d;
    b->len += add;
    d[b->len] = '\0';
    return add;
}

/* the body of a 200; NULL with err */
static char *
get(const char *url, char *err, size_t errlen)
{
    CURL         *curl;
    CURLcode      rc;
    long          code = 0;
    struct body   b = { NULL, 0, 0 };

    curl = curl_easy_init();
    if (curl == NULL) {
        snprintf(err, errlen, "cannot make an HTTP client");
        return NULL;
    }
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, (long) JWKS_TIMEOUT);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "https");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 3L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);

    rc = curl_easy_perform(curl);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    }
    curl_easy_cleanup(curl);

    if (b.too_big) {
        snprintf(err, errlen, "%.300s: more than %d bytes", url,
                 JWKS_MAX_BODY);
    } else if (rc != CURLE_OK) {
        snprintf(err, errlen, "%.300s: %s", url, curl_easy_strerror(rc));
    } else if (code != 200) {
        snprintf(err, errlen, "%.300s answered %ld", url, code);
    } else if (b.data == NULL) {
        snprintf(err, errlen, "%.300s: an empty answer", url);
    } else {
        return b.data;
    }
    free(b.data);
    return NULL;
}

/* the usable keys of a JWKS document into keys: how many, or -1 */
static int
parse(const char *doc, struct jwk_key *keys, char *err, size_t errlen)
{
    json_t        *root, *list, *jwk;
    json_error_t   jerr;
    size_t         i;
    int            n = 0, rc;
    char           why[256];

    root = json_loads(doc, JSON_REJECT_DUPLICATES, &jerr);
    list = json_object_get(root, "keys");
    if (!json_is_array(list)) {
        snprintf(err, errlen, "not a JWKS (an object with a \"keys\" "
                 "array)%s%s", root ? "" : ": ", root ? "" : jerr.text);
        json_decref(root);
        return -1;
    }
    json_array_foreach(list, i, jwk) {
        if (n == JWKS_MAX_KEYS) {
            snprintf(err, errlen, "more than %d keys", JWKS_MAX_KEYS);
            json_decref(root);
            return -1;
        }
        rc = jwk_from_json(jwk, &keys[n], why, sizeof(why));
        if (rc == 0) {
            n++;
        } else if (rc == PROV_NONE) {
            log_info("jwks: skipped: %s", why);
        } else {
            snprintf(err, errlen, "key %zu: %s", i, why);
            json_decref(root);
            return -1;
        }
    }
    json_decref(root);
    if (n == 0) {
        /* an issuer publishing nothing usable is more likely broken than
         * revoking every token at once: keep what the edge has */
        snprintf(err, errlen, "no RS256 or ES256 signing key in the set");
        return -1;
    }
    return n;
}

/* keys as three PostgreSQL array literals; -1 when they do not fit */
static int
arrays(const struct jwk_key *keys, int n, char **kids, char **algs,
       char **ders)
{
    size_t  kl = 3, al = 3, dl = 3, i, j;
    char   *k, *a, *d;

    for (i = 0; i < (size_t) n; i++) {
        kl += 2 * strlen(keys[i].kid) + 3;
        al += 8;
        dl += 2 * keys[i].k.der_len + 6;
    }
    k = *kids = malloc(kl);
    a = *algs = malloc(al);
    d = *ders = malloc(dl);
    if (k == NULL || a == NULL || d == NULL) {
        return -1;
    }
    *k++ = '{';
    *a++ = '{';
    *d++ = '{';
    for (i = 0; i < (size_t) n; i++) {
        if (i) {
            *k++ = ',';
            *a++ = ',';
            *d++ = ',';
        }
        /* a kid is printable ASCII: quoted, with " and \ escaped */
        *k++ = '"';
        for (j = 0; keys[i].kid[j]; j++) {
            if (keys[i].kid[j] == '"' || keys[i].kid[j] == '\\') {
                *k++ = '\\';
            }
            *k++ = keys[i].kid[j];
        }
        *k++ = '"';
        a += sprintf(a, "%s", keys[i].k.alg);
        d += sprintf(d, "\"\\\\x");
        for (j = 0; j < keys[i].k.der_len; j++) {
            d += sprintf(d, "%02x", keys[i].k.der[j]);
        }
        *d++ = '"';
    }
    strcpy(k, "}");
    strcpy(a, "}");
    strcpy(d, "}");
    return 0;
}

static void
failed(struct prov *p, const char *id, const char *why)
{
    const char  *params[2] = { id, why };
    char         e[256];

    if (db_run(p->conn, "record a JWKS fetch that failed",
               "SELECT jwks_failed($1::bigint, $2)", 2, params, e, sizeof(e))
        != 0)
    {
        log_warn("%s", e);
    }
}

int
jwks_fetch(struct prov *p, const char *id, const char *url, char *err,
           size_t errlen)
{
    struct jwk_key  *keys;
    char            *doc, *kids = NULL, *algs = NULL, *ders = NULL;
    const char      *params[4];
    PGresult        *res;
    int              n;

    keys = calloc(JWKS_MAX_KEYS, sizeof(*keys));
    if (keys == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    doc = get(url, err, errlen);
    n = doc ? parse(doc, keys, err, errlen) : -1;
    free(doc);

    if (n > 0 && arrays(keys, n, &kids, &algs, &ders) != 0) {
        snprintf(err, errlen, "out of memory");
        n = -1;
    }
    free(keys);

    if (n < 0) {
        free(kids);
        free(algs);
        free(ders);
        failed(p, id, err);
        return -1;
    }

    params[0] = id;
    params[1] = kids;
    params[2] = algs;
    params[3] = ders;
    res = db_query(p->conn, "store the JWKS keys",
                   "SELECT jwks_sync($1::bigint, $2::text[], $3::text[],"
                   " $4::bytea[])", 4, params);
    free(kids);
    free(algs);
    free(ders);
    if (res == NULL) {
        snprintf(err, errlen, "registry: cannot store the keys of %.300s",
                 url);
        return -1;
    }
    if (!PQgetisnull(res, 0, 0)) {
        snprintf(err, errlen, "%.300s: %s", url,
                 strcmp(PQgetvalue(res, 0, 0), "full") == 0
                 ? "the registry holds 64 keys, the most the edge takes"
                 : PQgetvalue(res, 0, 0));
        PQclear(res);
        failed(p, id, err);
        return -1;
    }
    PQclear(res);
    return n;
}

int
jwks_refresh(struct prov *p)
{
    PGresult  *res;
    char       err[512];
    int        i, n, done = 0;

    res = db_query(p->conn, "find the JWKS sources due a refresh",
                   "SELECT id, url FROM jwks_sources WHERE next_at <= now()"
                   " ORDER BY next_at LIMIT 16", 0, NULL);
    if (res == NULL) {
        return -1;
    }
    n = PQntuples(res);
    for (i = 0; i < n && !*p->stop; i++) {
        if (jwks_fetch(p, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), err,
                       sizeof(err)) < 0)
        {
            log_warn("jwks: %s (the keys it had stay)", err);
        } else {
            done++;
        }
    }
    PQclear(res);
    return done;
}
