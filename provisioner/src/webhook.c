#define _GNU_SOURCE

/*
 * A sign-up's decision posted to the tenant's own stack: JSON to its site
 * endpoint at the tenant's signup_webhook path, signed with HMAC-SHA256
 * under its webhook_secret ({{secret:webhook_secret}} gives the stack the
 * same key). The header X-Ngx-Tenant-Delivery (the job's id) is the same
 * on every retry, so a receiver that saw it already can say 2xx again; a
 * failed post is retried by the job with backoff.
 */

#include "task.h"
#include "db.h"
#include "log.h"
#include "secret.h"
#include "tenant.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

#define WEBHOOK_TIMEOUT  10

static size_t
discard(char *ptr, size_t size, size_t n, void *data)
{
    (void) ptr;
    (void) data;
    return size * n;
}

/* 0 delivered (2xx), 1 refused for good (4xx but 408, 429), -1 retry */
static int
post(const char *url, const char *body, const char *sig, const char *id,
     char *err)
{
    CURL               *curl;
    struct curl_slist  *h = NULL, *n;
    char                line[160];
    long                code = 0;
    CURLcode            rc;

    curl = curl_easy_init();
    if (curl == NULL) {
        snprintf(err, ERRLEN, "webhook: cannot make an HTTP client");
        return -1;
    }
    n = curl_slist_append(h, "Content-Type: application/json");
    h = n ? n : h;
    snprintf(line, sizeof(line), "X-Ngx-Tenant-Signature: sha256=%s", sig);
    n = n ? curl_slist_append(h, line) : NULL;
    h = n ? n : h;
    snprintf(line, sizeof(line), "X-Ngx-Tenant-Delivery: %s", id);
    n = n ? curl_slist_append(h, line) : NULL;
    if (n == NULL) {
        curl_slist_free_all(h);
        curl_easy_cleanup(curl);
        snprintf(err, ERRLEN, "webhook: out of memory");
        return -1;
    }
    h = n;

    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, (long) WEBHOOK_TIMEOUT);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);

    rc = curl_easy_perform(curl);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(curl);

    if (rc != CURLE_OK) {
        snprintf(err, ERRLEN, "webhook %.300s: %s", url,
                 curl_easy_strerror(rc));
        return -1;
    }
    if (code >= 200 && code < 300) {
        return 0;
    }
    snprintf(err, ERRLEN, "webhook %.300s answered %ld", url, code);
    return (code >= 400 && code < 500 && code != 408 && code != 429) ? 1 : -1;
}

/* the decision as it is posted; NULL (err says why) if it cannot be */
static char *
payload(struct prov *p, struct job *j, char *url, size_t ulen, char *err)
{
    const char  *params[2] = { j->idstr, j->tenant };
    PGresult    *res;
    char        *body;

    res = db_query(p->conn, "read the sign-up and where it goes",
                   "SELECT json_build_object('delivery', j.id,"
                   "         'event', 'signup.' || s.status,"
                   "         'signup', signup_json(s))::text,"
                   "       t.settings ->> 'signup_webhook',"
                   "       (SELECT address FROM tenant_endpoints e"
                   "         WHERE e.tenant_id = t.id AND e.role = 'site'"
                   "           AND e.address NOT LIKE 'unix:%'"
                   "         ORDER BY address LIMIT 1)"
                   "  FROM jobs j"
                   "  JOIN tenant_signups s"
                   "    ON s.id = (j.payload ->> 'signup')::bigint"
                   "  JOIN tenants t ON t.id = s.tenant_id"
                   " WHERE j.id = $1::bigint AND t.id = $2", 2, params);
    if (res == NULL) {
        snprintf(err, ERRLEN, "registry: cannot read the sign-up");
        return NULL;
    }
    if (PQntuples(res) != 1 || PQgetisnull(res, 0, 1)
        || PQgetisnull(res, 0, 2))
    {
        snprintf(err, ERRLEN, PQntuples(res) != 1
                 ? "the sign-up is gone"
                 : PQgetisnull(res, 0, 1)
                 ? "the tenant has no signup_webhook path (PUT "
                   "tenants/{name}/signups)"
                 : "the tenant has no site endpoint to post to");
        PQclear(res);
        return NULL;
    }
    snprintf(url, ulen, "http://%s%s", PQgetvalue(res, 0, 2),
             PQgetvalue(res, 0, 1));
    body = strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    if (body == NULL) {
        snprintf(err, ERRLEN, "out of memory");
    }
    return body;
}

enum outcome
webhook_do_send(struct prov *p, struct job *j, struct tenant *t, char *err)
{
    unsigned char  md[EVP_MAX_MD_SIZE];
    unsigned int   mdlen = 0;
    char           url[700], sig[2 * 32 + 1], *body;
    const char    *key;
    int            rc;

    body = payload(p, j, url, sizeof(url), err);
    if (body == NULL) {
        /* nowhere to send it: the decision stands, said in the result */
        if (strncmp(err, "registry", 8) == 0 || job_begin(p) != 0) {
            return FAILED;
        }
        return task_finish(p, j, task_skipped(err), err);
    }

    if (tenant_ensure_named_secret(p, t, "webhook_secret", err, ERRLEN)
        != 0)
    {
        free(body);
        return FAILED;
    }
    key = json_string_value(json_object_get(t->secrets, "webhook_secret"));
    if (key == NULL
        || HMAC(EVP_sha256(), key, (int) strlen(key),
                (const unsigned char *) body, strlen(body), md, &mdlen)
           == NULL
        || mdlen != 32)
    {
        free(body);
        snprintf(err, ERRLEN, "cannot sign the webhook");
        return FAILED;
    }
    hex_encode(sig, md, 32);

    rc = post(url, body, sig, j->idstr, err);
    free(body);
    if (rc != 0) {
        log_warn("job %lld: %s", j->id, err);
        return rc > 0 ? PERMANENT : FAILED;
    }

    if (job_begin(p) != 0) {
        return FAILED;
    }
    return task_finish(p, j, json_pack("{s:s}", "delivered", url), err);
}
