#define _GNU_SOURCE

#include "acme_client.h"
#include "acme_crypto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* a CA's answers are small: directories, orders, a certificate chain */
#define ACME_BODY_MAX  (256 * 1024)

static size_t
collect(char *data, size_t size, size_t n, void *arg)
{
    struct acme_reply  *r = arg;
    size_t              len = size * n;
    char               *grown;

    if (r->len + len > ACME_BODY_MAX) {
        return 0;
    }
    grown = realloc(r->body, r->len + len + 1);
    if (grown == NULL) {
        return 0;
    }
    r->body = grown;
    memcpy(r->body + r->len, data, len);
    r->len += len;
    r->body[r->len] = '\0';
    return len;
}

/* the value of a "Name: value" line when it is that header, trimmed */
static int
header_value(const char *line, size_t n, const char *name, char *out,
             size_t size)
{
    size_t  nl = strlen(name), end;

    if (n <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':') {
        return 0;
    }
    line += nl + 1;
    n -= nl + 1;
    while (n > 0 && (*line == ' ' || *line == '\t')) {
        line++;
        n--;
    }
    end = n;
    while (end > 0 && (line[end - 1] == '\r' || line[end - 1] == '\n'
                       || line[end - 1] == ' '))
    {
        end--;
    }
    if (end >= size) {
        return 0;
    }
    memcpy(out, line, end);
    out[end] = '\0';
    return 1;
}

static size_t
header(char *data, size_t size, size_t n, void *arg)
{
    struct acme_reply  *r = arg;
    size_t              len = size * n;
    char                link[ACME_URL + 64], *gt;

    header_value(data, len, "Location", r->location, sizeof(r->location));
    header_value(data, len, "Replay-Nonce", r->nonce, sizeof(r->nonce));

    /* RFC 8288: <url>;rel="next" (an account's orders come in pages) */
    if (header_value(data, len, "Link", link, sizeof(link))
        && link[0] == '<' && (gt = strchr(link, '>')) != NULL
        && strstr(gt, "rel=\"next\"") != NULL
        && (size_t) (gt - link - 1) < sizeof(r->link_next))
    {
        memcpy(r->link_next, link + 1, gt - link - 1);
        r->link_next[gt - link - 1] = '\0';
    }
    return len;
}

void
acme_reply_free(struct acme_reply *r)
{
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof(*r));
}

/* one exchange; body NULL is a GET, "" with head a HEAD */
static int
exchange(struct acme *a, const char *method, const char *url,
         const char *body, struct acme_reply *r, char *err, size_t len)
{
    struct curl_slist  *h = NULL;
    char                cerr[CURL_ERROR_SIZE] = "";
    CURLcode            rc;

    memset(r, 0, sizeof(*r));
    curl_easy_reset(a->curl);
    curl_easy_setopt(a->curl, CURLOPT_URL, url);
    curl_easy_setopt(a->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(a->curl, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(a->curl, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(a->curl, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(a->curl, CURLOPT_USERAGENT, "ngx_tenant-provisioner");
    curl_easy_setopt(a->curl, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(a->curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(a->curl, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(a->curl, CURLOPT_HEADERFUNCTION, header);
    curl_easy_setopt(a->curl, CURLOPT_HEADERDATA, r);
    if (a->ca_file[0] != '\0') {
        curl_easy_setopt(a->curl, CURLOPT_CAINFO, a->ca_file);
    }

    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(a->curl, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "POST") == 0) {
        h = curl_slist_append(h, "Content-Type: application/jose+json");
        curl_easy_setopt(a->curl, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(a->curl, CURLOPT_POSTFIELDS, body);
    }

    rc = curl_easy_perform(a->curl);
    curl_slist_free_all(h);
    if (rc != CURLE_OK) {
        snprintf(err, len, "%s %s: %s", method, url,
                 cerr[0] ? cerr : curl_easy_strerror(rc));
        acme_reply_free(r);
        return -1;
    }
    curl_easy_getinfo(a->curl, CURLINFO_RESPONSE_CODE, &r->status);
    if (r->body != NULL) {
        r->json = json_loadb(r->body, r->len, 0, NULL);
    }
    if (r->nonce[0] != '\0') {
        snprintf(a->nonce, sizeof(a->nonce), "%s", r->nonce);
    }
    return 0;
}

static const char *
str(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));

    return s != NULL ? s : "";
}

/* the CA's problem document (RFC 7807) in one line */
static void
problem(const char *url, struct acme_reply *r, char *err, size_t len)
{
    const char  *type = str(r->json, "type"), *p;

    p = strrchr(type, ':');
    snprintf(err, len, "%s: %ld %s%s%.300s", url, r->status,
             p ? p + 1 : type, type[0] ? ": " : "",
             r->json ? str(r->json, "detail")
                     : (r->body ? r->body : "no answer"));
}

int
acme_open(struct acme *a, const char *directory, const char *ca_file,
          EVP_PKEY *key, char *err, size_t len)
{
    struct acme_reply  r;
    const char        *keys[3] = { "newNonce", "newAccount", "newOrder" };
    char              *dst[3];
    size_t             i;

    memset(a, 0, sizeof(*a));
    a->key = key;
    snprintf(a->ca_file, sizeof(a->ca_file), "%s", ca_file);
    dst[0] = a->new_nonce;
    dst[1] = a->new_account;
    dst[2] = a->new_order;

    a->curl = curl_easy_init();
    if (a->curl == NULL) {
        snprintf(err, len, "cannot start libcurl");
        return -1;
    }
    if (exchange(a, "GET", directory, NULL, &r, err, len) != 0) {
        return -1;
    }
    if (r.status != 200 || !json_is_object(r.json)) {
        snprintf(err, len, "ACME directory %s answered %ld, not a directory",
                 directory, r.status);
        acme_reply_free(&r);
        return -1;
    }
    for (i = 0; i < 3; i++) {
        const char *u = str(r.json, keys[i]);

        if (u[0] == '\0' || strlen(u) >= ACME_URL) {
            snprintf(err, len, "ACME directory %s has no %s", directory,
                     keys[i]);
            acme_reply_free(&r);
            return -1;
        }
        memcpy(dst[i], u, strlen(u) + 1);
    }
    acme_reply_free(&r);
    return 0;
}

void
acme_close(struct acme *a)
{
    if (a->curl != NULL) {
        curl_easy_cleanup(a->curl);
    }
    a->curl = NULL;
}

int
acme_post(struct acme *a, const char *url, const char *payload,
          struct acme_reply *r, char *err, size_t len)
{
    char  *jws;
    int    tries;

    for (tries = 0; tries < 5; tries++) {
        if (a->nonce[0] == '\0') {
            if (exchange(a, "HEAD", a->new_nonce, "", r, err, len) != 0) {
                return -1;
            }
            acme_reply_free(r);
            if (a->nonce[0] == '\0') {
                snprintf(err, len, "%s gave no Replay-Nonce", a->new_nonce);
                return -1;
            }
        }

        jws = acme_jws(a->key, a->kid, a->nonce, url,
                       payload != NULL ? payload : "");
        a->nonce[0] = '\0';     /* each nonce is good for one request */
        if (jws == NULL) {
            snprintf(err, len, "cannot sign the request to %s", url);
            return -1;
        }
        if (exchange(a, "POST", url, jws, r, err, len) != 0) {
            free(jws);
            return -1;
        }
        free(jws);

        if (r->status >= 200 && r->status < 300) {
            return 0;
        }
        /* RFC 8555 §6.5: a rejected nonce is retried with the fresh one
         * the error carries */
        if (r->status == 400
            && strcmp(str(r->json, "type"),
                      "urn:ietf:params:acme:error:badNonce") == 0)
        {
            acme_reply_free(r);
            continue;
        }
        problem(url, r, err, len);
        acme_reply_free(r);
        return -1;
    }
    snprintf(err, len, "%s: the CA rejected 5 nonces in a row", url);
    return -1;
}

int
acme_account(struct acme *a, const char *email, char *err, size_t len)
{
    struct acme_reply   r;
    json_t             *req;
    char               *payload, contact[400];
    int                 rc;

    a->kid[0] = '\0';
    req = json_pack("{s:b}", "termsOfServiceAgreed", 1);
    if (req != NULL && email != NULL && email[0] != '\0') {
        snprintf(contact, sizeof(contact), "mailto:%s", email);
        json_object_set_new(req, "contact", json_pack("[s]", contact));
    }
    payload = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (payload == NULL) {
        snprintf(err, len, "out of memory");
        return -1;
    }

    rc = acme_post(a, a->new_account, payload, &r, err, len);
    free(payload);
    if (rc != 0) {
        return -1;
    }
    if (r.location[0] == '\0') {
        snprintf(err, len, "%s: the CA gave the account no URL",
                 a->new_account);
        acme_reply_free(&r);
        return -1;
    }
    snprintf(a->kid, sizeof(a->kid), "%s", r.location);
    acme_reply_free(&r);
    return 0;
}
