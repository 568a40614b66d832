#define _GNU_SOURCE

/*
 * Orders as jobs. Everything a resumed job needs is in the registry before
 * the CA is asked: the account key (sealed, one per directory), and for
 * each order its row in acme_orders with the certificate's key, written
 * before newOrder and given the order's URL right after. A job killed
 * between those two writes finds its order again in the account's order
 * list (RFC 8555 §7.1.2.1), so the CA never sees the same name ordered
 * twice by one attempt. Names are checked against acme_wanted before the
 * order and again when the certificate is stored.
 */

#include "acme.h"
#include "acme_client.h"
#include "acme_crypto.h"
#include "acme_dns.h"
#include "cert_seal.h"
#include "clock.h"
#include "db.h"
#include "log.h"
#include "tenant_cert.h"
#include "tenant_seal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define AAD_ACCOUNT  "ngx_tenant/acme-account/1"
#define AAD_ORDER    "ngx_tenant/acme-order/1"

struct order {
    struct prov  *p;
    struct job   *j;
    struct acme   a;
    EVP_PKEY     *account;
    EVP_PKEY     *key;             /* the certificate's */
    char         *key_pem;
    size_t        key_pem_len;
    char          host[256];
    char          tenant[64];      /* "" for the platform's wildcard */
    char          wildcard[260];   /* "*.{base_domain}" with a DNS hook */
    char          id[24];          /* acme_orders.id */
    char          url[ACME_URL];
    char          thumb[64];
    char         *err;
    size_t        len;
};

static const char *
str(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));

    return s != NULL ? s : "";
}

static void
wildcard_of(const struct prov *p, char *out, size_t size)
{
    if (p->conf.acme_dns_hook[0] != '\0') {
        snprintf(out, size, "*.%s", p->conf.base_domain);
    } else {
        out[0] = '\0';
    }
}

/* --- the schedule ----------------------------------------------------------- */

int
acme_schedule(struct prov *p)
{
    char         wildcard[260];
    const char  *params[2];
    PGresult    *res;
    int          n;

    if (p->conf.acme_directory[0] == '\0') {
        return 0;
    }
    wildcard_of(p, wildcard, sizeof(wildcard));
    params[0] = wildcard;
    params[1] = p->conf.domain_verification ? "t" : "f";

    res = db_query(p->conn, "schedule certificate orders",
                   "SELECT acme_schedule(NULLIF($1, ''), $2::bool, 500)", 2,
                   params);
    if (res == NULL) {
        return -1;
    }
    n = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    if (n > 0) {
        log_info("acme: %d certificate order(s) queued", n);
    }
    return n;
}

/* --- sealing what a resumed job needs ----------------------------------------- */

/* nonce and sealed PEM, as hex for encode()/decode() */
static int
seal_pem(struct prov *p, const char *aad_kind, const char *name,
         const char *pem, size_t len, char nonce_hex[32], char **sealed_hex)
{
    unsigned char   nonce[TENANT_SEAL_NONCE], *ct, aad[1100];
    size_t          alen = strlen(aad_kind) + 1 + strlen(name);
    int             rc = -1;

    if (alen > sizeof(aad)) {
        return -1;
    }
    snprintf((char *) aad, sizeof(aad), "%s", aad_kind);
    memcpy(aad + strlen(aad_kind) + 1, name, strlen(name));

    ct = malloc(len + TENANT_SEAL_TAG);
    *sealed_hex = malloc(2 * (len + TENANT_SEAL_TAG) + 1);
    if (ct != NULL && *sealed_hex != NULL
        && tenant_seal(p->key, aad, alen, (const unsigned char *) pem, len,
                       nonce, ct) == 0)
    {
        hex_encode(nonce_hex, nonce, TENANT_SEAL_NONCE);
        hex_encode(*sealed_hex, ct, len + TENANT_SEAL_TAG);
        rc = 0;
    }
    free(ct);
    if (rc != 0) {
        free(*sealed_hex);
        *sealed_hex = NULL;
    }
    return rc;
}

/* the PEM, malloc'd (wipe and free), or NULL */
static char *
unseal_pem(struct prov *p, const char *aad_kind, const char *name,
           const char *nonce_hex, const char *sealed_hex, size_t *len)
{
    unsigned char   nonce[TENANT_SEAL_NONCE], *ct, aad[1100];
    size_t          n = strlen(sealed_hex) / 2;
    size_t          alen = strlen(aad_kind) + 1 + strlen(name);
    char           *plain = NULL;

    if (alen > sizeof(aad) || n <= TENANT_SEAL_TAG
        || strlen(nonce_hex) != 2 * TENANT_SEAL_NONCE
        || tenant_hex_decode(nonce, nonce_hex, TENANT_SEAL_NONCE) != 0)
    {
        return NULL;
    }
    snprintf((char *) aad, sizeof(aad), "%s", aad_kind);
    memcpy(aad + strlen(aad_kind) + 1, name, strlen(name));

    ct = malloc(n);
    plain = malloc(n - TENANT_SEAL_TAG + 1);
    if (ct == NULL || plain == NULL || tenant_hex_decode(ct, sealed_hex, n) != 0
        || tenant_unseal(p->key, aad, alen, nonce, ct, n,
                         (unsigned char *) plain) != 0)
    {
        free(ct);
        free(plain);
        return NULL;
    }
    free(ct);
    plain[n - TENANT_SEAL_TAG] = '\0';
    *len = n - TENANT_SEAL_TAG;
    return plain;
}

static void
free_pem(char *pem, size_t len)
{
    if (pem != NULL) {
        explicit_bzero(pem, len);
        free(pem);
    }
}

/* --- the account -------------------------------------------------------------- */

/* the platform's key for this directory: the stored one, or a new one
 * (two provisioners racing store one of theirs, and both use it) */
static int
account_key(struct order *o)
{
    struct prov  *p = o->p;
    const char   *params[3] = { p->conf.acme_directory, NULL, NULL };
    char          nonce[32], *sealed = NULL, *pem;
    size_t        len;
    PGresult     *res;
    int           tries;
    EVP_PKEY     *fresh;

    for (tries = 0; tries < 2; tries++) {
        res = db_query(p->conn, "read the ACME account",
                       "SELECT encode(key_nonce, 'hex'),"
                       "       encode(key_sealed, 'hex'), coalesce(url, '')"
                       "  FROM acme_accounts WHERE directory = $1", 1, params);
        if (res == NULL) {
            snprintf(o->err, o->len, "registry: cannot read the ACME account");
            return -1;
        }
        if (PQntuples(res) == 1) {
            pem = unseal_pem(p, AAD_ACCOUNT, p->conf.acme_directory,
                             PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1),
                             &len);
            if (pem == NULL) {
                PQclear(res);
                snprintf(o->err, o->len, "the ACME account key of %s does "
                         "not open with this provisioner's secret_key",
                         p->conf.acme_directory);
                return -1;
            }
            o->account = acme_key_from_pem(pem, len);
            free_pem(pem, len);
            snprintf(o->a.kid, sizeof(o->a.kid), "%s", PQgetvalue(res, 0, 2));
            PQclear(res);
            if (o->account == NULL) {
                snprintf(o->err, o->len, "the stored ACME account key is "
                         "not an EC key");
                return -1;
            }
            return 0;
        }
        PQclear(res);

        fresh = acme_key_new();
        pem = fresh ? acme_key_pem(fresh, &len) : NULL;
        EVP_PKEY_free(fresh);
        if (pem == NULL
            || seal_pem(p, AAD_ACCOUNT, p->conf.acme_directory, pem, len,
                        nonce, &sealed) != 0)
        {
            free_pem(pem, pem ? len : 0);
            snprintf(o->err, o->len, "cannot make the ACME account key");
            return -1;
        }
        free_pem(pem, len);
        params[1] = nonce;
        params[2] = sealed;
        res = db_query(p->conn, "store the ACME account key",
                       "INSERT INTO acme_accounts (directory, key_nonce,"
                       " key_sealed) VALUES ($1, decode($2, 'hex'),"
                       " decode($3, 'hex')) ON CONFLICT DO NOTHING", 3,
                       params);
        free(sealed);
        sealed = NULL;
        if (res == NULL) {
            snprintf(o->err, o->len, "registry: cannot store the ACME "
                     "account key");
            return -1;
        }
        PQclear(res);
    }
    snprintf(o->err, o->len, "registry: the ACME account key did not stay");
    return -1;
}

static int
account(struct order *o)
{
    struct prov  *p = o->p;
    char          kid[ACME_URL];
    const char   *params[2];

    if (account_key(o) != 0) {
        return -1;
    }
    snprintf(kid, sizeof(kid), "%s", o->a.kid);
    if (acme_open(&o->a, p->conf.acme_directory, p->conf.acme_ca_file,
                  o->account, o->err, o->len) != 0)
    {
        return -1;
    }
    if (acme_thumbprint(o->account, o->thumb) != 0) {
        snprintf(o->err, o->len, "cannot compute the account's thumbprint");
        return -1;
    }
    if (kid[0] != '\0') {
        snprintf(o->a.kid, sizeof(o->a.kid), "%s", kid);
        return 0;
    }

    if (acme_account(&o->a, p->conf.acme_email, o->err, o->len) != 0) {
        return -1;
    }
    params[0] = p->conf.acme_directory;
    params[1] = o->a.kid;
    if (db_run(p->conn, "record the ACME account",
               "UPDATE acme_accounts SET url = $2 WHERE directory = $1", 2,
               params, o->err, o->len) != 0)
    {
        return -1;
    }
    log_info("acme: account %s at %s", o->a.kid, p->conf.acme_directory);
    return 0;
}

/* --- the order -------------------------------------------------------------- */

static int
order_set(struct order *o, const char *status, const char *error)
{
    const char *params[4] = { o->id, status, o->url, error ? error : "" };

    return db_run(o->p->conn, "record the order",
                  "UPDATE acme_orders SET status = $2,"
                  "       url = coalesce(NULLIF($3, ''), url),"
                  "       error = NULLIF($4, ''), updated_at = now()"
                  " WHERE id = $1", 4, params, o->err, o->len);
}

/* the open order of this name, if any: 0, PROV_NONE, -1 */
static int
order_open(struct order *o)
{
    struct prov  *p = o->p;
    const char   *params[2] = { o->host, p->conf.acme_directory };
    PGresult     *res;

    res = db_query(p->conn, "find the open order",
                   "SELECT id, coalesce(url, ''), encode(key_nonce, 'hex'),"
                   "       encode(key_sealed, 'hex')"
                   "  FROM acme_orders"
                   " WHERE host = $1 AND directory = $2"
                   "   AND status IN ('creating', 'pending', 'ready',"
                   "                  'processing')"
                   " ORDER BY id DESC LIMIT 1", 2, params);
    if (res == NULL) {
        snprintf(o->err, o->len, "registry: cannot read the orders");
        return -1;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        return PROV_NONE;
    }
    snprintf(o->id, sizeof(o->id), "%s", PQgetvalue(res, 0, 0));
    snprintf(o->url, sizeof(o->url), "%s", PQgetvalue(res, 0, 1));
    o->key_pem = unseal_pem(p, AAD_ORDER, o->host, PQgetvalue(res, 0, 2),
                            PQgetvalue(res, 0, 3), &o->key_pem_len);
    PQclear(res);
    if (o->key_pem == NULL
        || (o->key = acme_key_from_pem(o->key_pem, o->key_pem_len)) == NULL)
    {
        snprintf(o->err, o->len, "the key of order %s does not open", o->id);
        return -1;
    }
    return 0;
}

/* a new row, under the hourly cap: 0, ACME_DEFER (*wait_s), -1 */
static int
order_begin(struct order *o, int *wait_s)
{
    struct prov  *p = o->p;
    char          nonce[32], *sealed = NULL, cap[16];
    const char   *params[6];
    PGresult     *res;

    o->key = acme_key_new();
    o->key_pem = o->key ? acme_key_pem(o->key, &o->key_pem_len) : NULL;
    if (o->key_pem == NULL
        || seal_pem(p, AAD_ORDER, o->host, o->key_pem, o->key_pem_len, nonce,
                    &sealed) != 0)
    {
        snprintf(o->err, o->len, "cannot make the certificate's key");
        return -1;
    }

    snprintf(cap, sizeof(cap), "%d", p->conf.acme_orders_per_hour);
    params[0] = o->host;
    params[1] = p->conf.acme_directory;
    params[2] = o->j->idstr;
    params[3] = nonce;
    params[4] = sealed;
    params[5] = cap;
    res = db_query(p->conn, "begin an order",
                   "SELECT id, wait_seconds FROM acme_order_begin($1, $2,"
                   " $3::bigint, decode($4, 'hex'), decode($5, 'hex'),"
                   " $6::int)", 6, params);
    free(sealed);
    if (res == NULL) {
        snprintf(o->err, o->len, "registry: cannot begin the order");
        return -1;
    }
    if (PQgetisnull(res, 0, 0)) {
        *wait_s = atoi(PQgetvalue(res, 0, 1));
        PQclear(res);
        snprintf(o->err, o->len, "%d new orders in the last hour "
                 "(acme_orders_per_hour): next one in %d s",
                 p->conf.acme_orders_per_hour, *wait_s);
        return ACME_DEFER;
    }
    snprintf(o->id, sizeof(o->id), "%s", PQgetvalue(res, 0, 0));
    o->url[0] = '\0';
    PQclear(res);
    return 0;
}

/* does this order at the CA name exactly our host? */
static int
names_host(json_t *order, const char *host)
{
    json_t  *ids = json_object_get(order, "identifiers");

    return json_array_size(ids) == 1
           && strcmp(str(json_array_get(ids, 0), "value"), host) == 0;
}

/*
 * Killed between newOrder and recording its URL: the CA has an order we
 * do not know. It is in the account's order list; adopt it rather than
 * order again. 0 adopted, PROV_NONE not there (or the CA keeps no list).
 */
static int
order_adopt(struct order *o)
{
    struct acme_reply  r, page, one;
    char               next[ACME_URL], why[512];
    const char        *params[1];
    PGresult          *res;
    json_t            *list;
    size_t             i;
    int                pages, known, found = PROV_NONE;

    if (acme_post(&o->a, o->a.kid, NULL, &r, why, sizeof(why)) != 0) {
        log_warn("acme: %s: cannot read the account: %s", o->host, why);
        return PROV_NONE;
    }
    snprintf(next, sizeof(next), "%s", str(r.json, "orders"));
    acme_reply_free(&r);

    for (pages = 0; next[0] != '\0' && pages < 100 && found != 0; pages++) {
        if (acme_post(&o->a, next, NULL, &page, why, sizeof(why)) != 0) {
            log_warn("acme: %s: cannot read the orders: %s", o->host, why);
            return PROV_NONE;
        }
        list = json_object_get(page.json, "orders");
        for (i = 0; i < json_array_size(list) && found != 0; i++) {
            params[0] = json_string_value(json_array_get(list, i));
            if (params[0] == NULL || strlen(params[0]) >= ACME_URL) {
                continue;
            }
            res = db_query(o->p->conn, "look up an order",
                           "SELECT 1 FROM acme_orders WHERE url = $1", 1,
                           params);
            if (res == NULL) {
                continue;
            }
            known = PQntuples(res) > 0;
            PQclear(res);
            if (known
                || acme_post(&o->a, params[0], NULL, &one, why, sizeof(why))
                   != 0)
            {
                continue;
            }
            if (names_host(one.json, o->host)
                && strcmp(str(one.json, "status"), "invalid") != 0)
            {
                snprintf(o->url, sizeof(o->url), "%s", params[0]);
                found = 0;
            }
            acme_reply_free(&one);
        }
        snprintf(next, sizeof(next), "%s", page.link_next);
        acme_reply_free(&page);
    }
    return found;
}

static int
order_new(struct order *o)
{
    struct acme_reply  r;
    json_t            *req;
    char              *payload;
    int                rc;

    req = json_pack("{s:[{s:s, s:s}]}", "identifiers", "type", "dns",
                    "value", o->host);
    payload = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (payload == NULL) {
        snprintf(o->err, o->len, "out of memory");
        return -1;
    }
    rc = acme_post(&o->a, o->a.new_order, payload, &r, o->err, o->len);
    free(payload);
    if (rc != 0) {
        return -1;
    }
    if (r.location[0] == '\0' || strlen(r.location) >= ACME_URL) {
        snprintf(o->err, o->len, "%s gave the order no URL", o->a.new_order);
        acme_reply_free(&r);
        return -1;
    }
    snprintf(o->url, sizeof(o->url), "%s", r.location);
    acme_reply_free(&r);

    /* the window a resumed job must cover: ordered, not yet recorded */
    failpoint("certificate", "ordered");

    log_info("acme: %s: order %s", o->host, o->url);
    return order_set(o, "pending", NULL);
}

/* --- authorisations ------------------------------------------------------------ */

static size_t
keep(char *data, size_t size, size_t n, void *arg)
{
    char    *buf = arg;
    size_t   have = strlen(buf), len = size * n;

    if (have + len >= 512) {
        return 0;
    }
    memcpy(buf + have, data, len);
    buf[have + len] = '\0';
    return len;
}

/*
 * Every edge serves the answer from its shared memory, which its listening
 * worker fills on the registry's notification: under load that can come
 * after a CA that validates at once. Each edge named in acme_edges must
 * answer before the CA is told to look. 0, ACME_STOP, -1.
 */
static int
edges_answer(struct order *o, const char *ident, const char *token,
             const char *keyauth)
{
    struct prov         *p = o->p;
    struct curl_slist   *h = NULL;
    CURL                *curl;
    char                 edges[CONF_STR], *edge, *save, url[600], hdr[300];
    char                 body[512];
    double               deadline = clock_now() + p->conf.acme_timeout;
    int                  rc = 0;

    snprintf(edges, sizeof(edges), "%s", p->conf.acme_edges);
    snprintf(hdr, sizeof(hdr), "Host: %s", ident);
    curl = curl_easy_init();
    h = curl_slist_append(h, hdr);
    if (curl == NULL || h == NULL) {
        snprintf(o->err, o->len, "cannot start libcurl");
        rc = -1;
        goto done;
    }

    for (edge = strtok_r(edges, " ,", &save); edge != NULL && rc == 0;
         edge = strtok_r(NULL, " ,", &save))
    {
        snprintf(url, sizeof(url), "http://%s/.well-known/acme-challenge/%s",
                 edge, token);
        for ( ;; ) {
            body[0] = '\0';
            curl_easy_reset(curl);
            curl_easy_setopt(curl, CURLOPT_URL, url);
            curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
            curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
            curl_easy_setopt(curl, CURLOPT_TIMEOUT, 2L);
            curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, keep);
            curl_easy_setopt(curl, CURLOPT_WRITEDATA, (void *) body);
            if (curl_easy_perform(curl) == CURLE_OK
                && strcmp(body, keyauth) == 0)
            {
                break;
            }
            if (*p->stop) {
                rc = ACME_STOP;
                break;
            }
            if (clock_now() > deadline) {
                snprintf(o->err, o->len, "edge %s does not answer the "
                         "challenge for %s within %d s", edge, ident,
                         p->conf.acme_timeout);
                rc = -1;
                break;
            }
            clock_pause_ms(20);
        }
    }

done:

    curl_slist_free_all(h);
    if (curl != NULL) {
        curl_easy_cleanup(curl);
    }
    return rc;
}

static json_t *
challenge_of(json_t *authz, const char *type)
{
    json_t  *all = json_object_get(authz, "challenges"), *c;
    size_t   i;

    json_array_foreach(all, i, c) {
        if (strcmp(str(c, "type"), type) == 0) {
            return c;
        }
    }
    return NULL;
}

/* why an authorisation failed, from its challenge's error */
static void
authz_error(struct order *o, json_t *authz, json_t *chal)
{
    json_t  *e = json_object_get(chal, "error");

    snprintf(o->err, o->len, "%s: authorization %s: %.400s",
             str(json_object_get(authz, "identifier"), "value"),
             str(authz, "status"),
             e ? str(e, "detail") : "no reason given");
}

/* 0 valid, ACME_STOP, -1 */
static int
authorize(struct order *o, const char *url)
{
    struct prov        *p = o->p;
    struct acme_reply   r;
    json_t             *chal;
    const char         *type, *params[3];
    char                token[200], chal_url[ACME_URL], keyauth[300];
    char                ident[256];
    char                digest[64], name[300], why[512];
    double              deadline;
    long                wait = 100;
    int                 rc = -1, set = 0, dns;

    if (acme_post(&o->a, url, NULL, &r, o->err, o->len) != 0) {
        return -1;
    }
    if (strcmp(str(r.json, "status"), "valid") == 0) {
        acme_reply_free(&r);
        return 0;
    }

    /* the platform's wildcard can only be proven in DNS */
    dns = o->tenant[0] == '\0';
    type = dns ? "dns-01" : "http-01";
    /* copied: the reply it is in goes before the answer is withdrawn */
    snprintf(ident, sizeof(ident), "%s",
             str(json_object_get(r.json, "identifier"), "value"));
    chal = challenge_of(r.json, type);
    if (chal == NULL || strlen(str(chal, "token")) >= sizeof(token)
        || strlen(str(chal, "url")) >= sizeof(chal_url)
        || strlen(ident) > 253 || ident[0] == '\0')
    {
        snprintf(o->err, o->len, "%s: the CA offers no usable %s challenge",
                 ident, type);
        acme_reply_free(&r);
        return -1;
    }
    if (strcmp(str(r.json, "status"), "pending") != 0) {
        authz_error(o, r.json, chal);
        acme_reply_free(&r);
        return -1;
    }

    snprintf(token, sizeof(token), "%s", str(chal, "token"));
    snprintf(chal_url, sizeof(chal_url), "%s", str(chal, "url"));
    snprintf(keyauth, sizeof(keyauth), "%s.%s", token, o->thumb);
    snprintf(name, sizeof(name), "_acme-challenge.%s", ident);
    params[0] = ident;
    params[1] = token;
    params[2] = keyauth;

    /* publish the answer: in the registry, which every edge serves from its
     * shared memory (HTTP-01), or through the operator's hook (DNS-01) */
    if (dns) {
        if (acme_txt_digest(keyauth, digest) != 0
            || acme_dns_set(p, name, digest, o->err, o->len) != 0)
        {
            goto done;
        }
    } else if (db_run(p->conn, "publish the challenge answer",
                      "INSERT INTO acme_challenges (host, token,"
                      " key_authorization) VALUES ($1, $2, $3)"
                      " ON CONFLICT (host, token) DO UPDATE"
                      "   SET key_authorization = EXCLUDED.key_authorization,"
                      "       expires_at = now() + interval '1 hour'",
                      3, params, o->err, o->len) != 0)
    {
        goto done;
    }
    set = 1;

    if (!dns) {
        rc = edges_answer(o, ident, token, keyauth);
        if (rc != 0) {
            goto done;
        }
        rc = -1;
    }

    if (strcmp(str(chal, "status"), "pending") == 0) {
        acme_reply_free(&r);
        if (acme_post(&o->a, chal_url, "{}", &r, o->err, o->len) != 0) {
            goto done;
        }
    }
    acme_reply_free(&r);

    deadline = clock_now() + p->conf.acme_timeout;
    for ( ;; ) {
        if (acme_post(&o->a, url, NULL, &r, o->err, o->len) != 0) {
            goto done;
        }
        if (strcmp(str(r.json, "status"), "pending") != 0) {
            break;
        }
        acme_reply_free(&r);
        if (*p->stop) {
            rc = ACME_STOP;
            goto done;
        }
        if (clock_now() > deadline) {
            snprintf(o->err, o->len, "%s: the CA did not decide in %d s",
                     ident, p->conf.acme_timeout);
            goto done;
        }
        clock_pause_ms(wait);
        wait = wait * 2 > 1000 ? 1000 : wait * 2;
    }

    if (strcmp(str(r.json, "status"), "valid") == 0) {
        rc = 0;
    } else {
        authz_error(o, r.json, challenge_of(r.json, type));
    }
    acme_reply_free(&r);

done:

    if (set && dns && acme_dns_clear(p, name, digest, why, sizeof(why)) != 0) {
        log_warn("acme: %s", why);
    }
    if (set && !dns
        && db_run(p->conn, "withdraw the challenge answer",
                  "DELETE FROM acme_challenges WHERE host = $1"
                  " AND token = $2", 2, params, why, sizeof(why)) != 0)
    {
        log_warn("acme: %s", why);
    }
    if (r.body != NULL || r.json != NULL) {
        acme_reply_free(&r);
    }
    return rc;
}

/* --- the order's course ---------------------------------------------------------- */

static int
finalize(struct order *o, const char *url)
{
    struct acme_reply   r;
    char               *csr, *payload = NULL;
    int                 rc = -1;

    csr = acme_csr(o->key, o->host);
    if (csr == NULL || asprintf(&payload, "{\"csr\":\"%s\"}", csr) < 0) {
        snprintf(o->err, o->len, "cannot make the CSR");
        payload = NULL;
    } else if (acme_post(&o->a, url, payload, &r, o->err, o->len) == 0) {
        acme_reply_free(&r);
        rc = 0;
    }
    free(csr);
    free(payload);
    return rc;
}

/* follows the order to its certificate: the PEM chain, malloc'd; or NULL
 * with *rc ACME_STOP or -1 */
static char *
follow(struct order *o, size_t *len, int *rc)
{
    struct prov        *p = o->p;
    struct acme_reply   r;
    json_t             *authzs, *a;
    const char         *status;
    char                cert_url[ACME_URL], *pem;
    double              deadline = clock_now() + p->conf.acme_timeout;
    size_t              i;
    long                wait = 100;
    int                 steps;

    *rc = -1;
    for (steps = 0; steps < 64; steps++) {
        if (*p->stop) {
            *rc = ACME_STOP;
            return NULL;
        }
        if (acme_post(&o->a, o->url, NULL, &r, o->err, o->len) != 0) {
            /* an order the CA no longer has is closed: the next attempt
             * starts a new one */
            order_set(o, "abandoned", o->err);
            return NULL;
        }
        status = str(r.json, "status");

        if (strcmp(status, "pending") == 0) {
            authzs = json_object_get(r.json, "authorizations");
            json_array_foreach(authzs, i, a) {
                *rc = authorize(o, json_string_value(a) ? json_string_value(a)
                                                        : "");
                if (*rc != 0) {
                    acme_reply_free(&r);
                    return NULL;
                }
            }
            *rc = -1;
            failpoint("certificate", "authorized");

        } else if (strcmp(status, "ready") == 0) {
            if (order_set(o, "ready", NULL) != 0
                || finalize(o, str(r.json, "finalize")) != 0)
            {
                acme_reply_free(&r);
                return NULL;
            }

        } else if (strcmp(status, "processing") == 0) {
            order_set(o, "processing", NULL);
            if (clock_now() > deadline) {
                snprintf(o->err, o->len, "the CA did not issue in %d s",
                         p->conf.acme_timeout);
                acme_reply_free(&r);
                return NULL;
            }
            clock_pause_ms(wait);
            wait = wait * 2 > 1000 ? 1000 : wait * 2;

        } else if (strcmp(status, "valid") == 0) {
            snprintf(cert_url, sizeof(cert_url), "%s",
                     str(r.json, "certificate"));
            acme_reply_free(&r);
            if (acme_post(&o->a, cert_url, NULL, &r, o->err, o->len) != 0) {
                return NULL;
            }
            pem = r.body;
            *len = r.len;
            r.body = NULL;
            acme_reply_free(&r);
            if (pem == NULL) {
                snprintf(o->err, o->len, "%s: no certificate", cert_url);
            }
            return pem;

        } else {
            snprintf(o->err, o->len, "order %s is %s: %.300s", o->url,
                     status[0] ? status : "unreadable",
                     str(json_object_get(r.json, "error"), "detail"));
            order_set(o, "invalid", o->err);
            acme_reply_free(&r);
            return NULL;
        }
        acme_reply_free(&r);
    }
    snprintf(o->err, o->len, "order %s did not settle", o->url);
    return NULL;
}

/* --- the job --------------------------------------------------------------- */

/* the name's tenant ("" the platform) when it is still wanted: 0,
 * PROV_NONE, -1 */
static int
still_wanted(struct order *o)
{
    const char  *params[3] = { o->wildcard,
                               o->p->conf.domain_verification ? "t" : "f",
                               o->host };
    PGresult    *res;
    int          rc = PROV_NONE;

    res = db_query(o->p->conn, "check the name is wanted",
                   "SELECT coalesce(w.tenant_id, ''),"
                   "       (SELECT source FROM certificates c"
                   "         WHERE c.host = w.host)"
                   "  FROM acme_wanted(NULLIF($1, ''), $2::bool) w"
                   " WHERE w.host = $3", 3, params);
    if (res == NULL) {
        snprintf(o->err, o->len, "registry: cannot check the name");
        return -1;
    }
    /* an operator's own certificate is never replaced */
    if (PQntuples(res) == 1
        && (PQgetisnull(res, 0, 1)
            || strcmp(PQgetvalue(res, 0, 1), "automatic") == 0))
    {
        snprintf(o->tenant, sizeof(o->tenant), "%s", PQgetvalue(res, 0, 0));
        rc = 0;
    }
    PQclear(res);
    return rc;
}

static int
store(struct order *o, const char *pem, size_t len, json_t **result)
{
    struct prov         *p = o->p;
    tenant_cert_t        cert;
    struct cert_sealed   sealed;
    const char          *params[13];
    PGresult            *res;
    json_t              *stored;

    if (tenant_cert_check(pem, len, o->key_pem, o->key_pem_len, o->host,
                          time(NULL), &cert, o->err, o->len) != 0)
    {
        return -1;
    }
    if (cert_seal(p->conf.certificate_key, o->host, &cert, &sealed, o->err,
                  o->len) != 0)
    {
        tenant_cert_free(&cert);
        return -1;
    }

    params[0] = o->host;
    params[1] = o->tenant;
    cert_sealed_params(&sealed, &cert, params + 2);
    params[10] = o->id;
    params[11] = o->wildcard;
    params[12] = p->conf.domain_verification ? "t" : "f";

    res = NULL;
    if (job_begin(p) == 0) {
        res = db_query(p->conn, "store the certificate",
                       "SELECT certificate_put_automatic($1,"
                       " NULLIF($2, ''), $3::bytea, $4::bytea, $5::bytea,"
                       " $6, $7, $8, to_timestamp($9::bigint),"
                       " to_timestamp($10::bigint), $11::bigint,"
                       " NULLIF($12, ''), $13::bool)", 13, params);
    }
    tenant_cert_free(&cert);
    cert_sealed_free(&sealed);
    if (res == NULL) {
        db_rollback(p->conn);
        snprintf(o->err, o->len, "registry: cannot store the certificate");
        return -1;
    }

    if (PQgetisnull(res, 0, 0)) {
        *result = json_pack("{s:s, s:s}", "host", o->host, "skipped",
                            "the name is no longer registered and verified");
    } else {
        stored = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
        *result = json_pack("{s:s, s:o*}", "host", o->host, "certificate",
                            stored);
        log_info("acme: %s: certificate stored (order %s)", o->host, o->id);
    }
    PQclear(res);
    return 0;
}

static void
name_failed(struct order *o)
{
    const char  *params[2] = { o->host, o->err };
    char         why[256];

    if (db_run(o->p->conn, "record the failure",
               "SELECT acme_name_failed($1, $2)", 2, params, why,
               sizeof(why)) != 0)
    {
        log_warn("acme: %s", why);
    }
}

static int
run(struct order *o, json_t **result, int *wait_s)
{
    struct prov  *p = o->p;
    char         *pem;
    size_t        len = 0;
    int           rc, fresh;

    rc = still_wanted(o);
    if (rc == PROV_NONE) {
        log_info("acme: %s is not a registered, verified name without an "
                 "uploaded certificate: not ordered", o->host);
        if (job_begin(p) != 0) {
            snprintf(o->err, o->len, "registry: cannot finish the job");
            return -1;
        }
        *result = json_pack("{s:s, s:s}", "host", o->host, "skipped",
                            "not a registered and verified name");
        return 0;
    }
    if (rc != 0 || account(o) != 0) {
        return -1;
    }

    rc = order_open(o);
    if (rc == -1) {
        return -1;
    }
    fresh = rc == PROV_NONE;
    if (fresh) {
        rc = order_begin(o, wait_s);
        if (rc != 0) {
            return rc;
        }
    }

    if (o->url[0] == '\0') {
        if (!fresh && order_adopt(o) == 0) {
            log_info("acme: %s: order %s found at the CA, continued", o->host,
                     o->url);
            if (order_set(o, "pending", NULL) != 0) {
                return -1;
            }
        } else if (order_new(o) != 0) {
            return -1;
        }
    }

    pem = follow(o, &len, &rc);
    if (pem == NULL) {
        return rc;
    }
    rc = store(o, pem, len, result);
    free(pem);
    return rc;
}

int
acme_certificate(struct prov *p, struct job *j, json_t **result, int *wait_s,
                 char *err, size_t len)
{
    struct order  o;
    const char   *host = json_string_value(json_object_get(j->payload, "host"));
    int           rc;

    memset(&o, 0, sizeof(o));
    o.p = p;
    o.j = j;
    o.err = err;
    o.len = len;
    *result = NULL;

    if (host == NULL || strlen(host) >= sizeof(o.host)) {
        snprintf(err, len, "the job names no host");
        return -1;
    }
    snprintf(o.host, sizeof(o.host), "%s", host);
    wildcard_of(p, o.wildcard, sizeof(o.wildcard));

    if (p->conf.acme_directory[0] == '\0' || !p->have_key) {
        snprintf(err, len, "this provisioner cannot order certificates: "
                 "acme_directory and secret_key must be set");
        return -1;
    }

    rc = run(&o, result, wait_s);
    if (rc == -1) {
        name_failed(&o);
    }

    acme_close(&o.a);
    EVP_PKEY_free(o.account);
    EVP_PKEY_free(o.key);
    free_pem(o.key_pem, o.key_pem_len);
    return rc;
}
