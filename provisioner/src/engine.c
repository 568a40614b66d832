#define _GNU_SOURCE

#include "engine.h"
#include "log.h"
#include "logline.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t
collect(char *ptr, size_t size, size_t n, void *data)
{
    struct engine_resp *r = data;
    char               *p;
    size_t              add = size * n;

    p = realloc(r->body, r->len + add + 1);
    if (p == NULL) {
        return 0;
    }
    r->body = p;
    memcpy(r->body + r->len, ptr, add);
    r->len += add;
    r->body[r->len] = '\0';
    return add;
}

/* the engine's "message", else the body, else the HTTP status */
void
engine_error(const struct engine_resp *r, const char *what, char *err,
             size_t len)
{
    json_t     *j = r->body ? json_loads(r->body, 0, NULL) : NULL;
    const char *m = json_string_value(json_object_get(j, "message"));

    snprintf(err, len, "engine: %s: %s (HTTP %ld)", what,
             m ? m : (r->body && r->len < 300 ? r->body : "no message"),
             r->status);
    json_decref(j);
}

int
engine_request(struct engine *e, const char *method, const char *path,
               const char *body, struct engine_resp *r, char *err,
               size_t len)
{
    struct curl_slist  *h = NULL;
    char                url[2048];
    CURLcode            rc;

    memset(r, 0, sizeof(*r));
    snprintf(url, sizeof(url), "http://localhost%s%s", e->prefix, path);

    curl_easy_reset(e->curl);
    curl_easy_setopt(e->curl, CURLOPT_UNIX_SOCKET_PATH, e->socket);
    curl_easy_setopt(e->curl, CURLOPT_URL, url);
    curl_easy_setopt(e->curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(e->curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(e->curl, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e->curl, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(e->curl, CURLOPT_NOSIGNAL, 1L);

    if (body) {
        h = curl_slist_append(h, "Content-Type: application/json");
        curl_easy_setopt(e->curl, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(e->curl, CURLOPT_POSTFIELDS, body);
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(e->curl, CURLOPT_POSTFIELDS, "");
    }

    rc = curl_easy_perform(e->curl);
    curl_slist_free_all(h);

    if (rc != CURLE_OK) {
        snprintf(err, len, "engine at %s: %s %s: %s", e->socket, method, path,
                 curl_easy_strerror(rc));
        free(r->body);
        r->body = NULL;
        return -1;
    }
    curl_easy_getinfo(e->curl, CURLINFO_RESPONSE_CODE, &r->status);
    return 0;
}

char *
engine_escape(struct engine *e, const char *s)
{
    return curl_easy_escape(e->curl, s, 0);
}

/* the API version: the engine's own, from /version */
static int
negotiate(struct engine *e, const char *who)
{
    struct engine_resp  r;
    char                err[512];
    json_t             *j;
    const char         *v;

    e->prefix[0] = '\0';
    if (engine_request(e, "GET", "/version", NULL, &r, err, sizeof(err)) != 0)
    {
        log_err("%s: %s", who, err);
        return -1;
    }
    j = r.status == 200 ? json_loads(r.body, 0, NULL) : NULL;
    v = json_string_value(json_object_get(j, "ApiVersion"));
    if (v == NULL || strlen(v) > 10 || strtod(v, NULL) < 1.24) {
        engine_error(&r, "version", err, sizeof(err));
        log_err("%s: %s (need API 1.24 or later)", who, err);
        json_decref(j);
        free(r.body);
        return -1;
    }
    snprintf(e->prefix, sizeof(e->prefix), "/v%s", v);
    log_info("%s: engine at %s speaks API %s", who, e->socket, v);
    json_decref(j);
    free(r.body);
    return 0;
}

int
engine_open(struct engine *e, const char *socket, const char *who)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        log_err("%s: curl_global_init failed", who);
        return -1;
    }
    e->socket = socket;
    e->curl = curl_easy_init();
    if (e->curl == NULL) {
        log_err("%s: out of memory", who);
        curl_global_cleanup();
        return -1;
    }
    if (negotiate(e, who) != 0) {
        engine_close(e);
        return -1;
    }
    return 0;
}

void
engine_close(struct engine *e)
{
    if (e->curl != NULL) {
        curl_easy_cleanup(e->curl);
        e->curl = NULL;
        curl_global_cleanup();
    }
}


/*
 * Without a TTY the logs endpoints (a container's, a Swarm service's)
 * multiplex stdout and stderr in frames: one byte stream id, three zero
 * bytes, a 4-byte big-endian length.
 */
int
engine_logs(struct engine *e, const char *path, const char *service,
            json_t *out)
{
    struct engine_resp  r;
    unsigned char      *p, *end;
    size_t              n, tlen = 0;
    char               *line, *nl, *text, err[256];

    if (engine_request(e, "GET", path, NULL, &r, err, sizeof(err)) != 0) {
        log_warn("%s: logs: %s", service, err);
        return -1;
    }
    if (r.status == 404) {
        free(r.body);
        return 0;
    }
    if (r.status != 200) {
        engine_error(&r, "logs", err, sizeof(err));
        log_warn("%s: %s", service, err);
        free(r.body);
        return -1;
    }

    text = malloc(r.len + 1);
    if (text == NULL) {
        log_err("%s: logs: out of memory", service);
        free(r.body);
        return -1;
    }
    p = (unsigned char *) r.body;
    end = p + r.len;
    while (end - p >= 8) {
        n = ((size_t) p[4] << 24) | ((size_t) p[5] << 16)
            | ((size_t) p[6] << 8) | p[7];
        if (p[0] > 2 || p[1] || p[2] || p[3] || n > (size_t) (end - p - 8)) {
            break;   /* not a frame: a TTY stream, taken as it is below */
        }
        memcpy(text + tlen, p + 8, n);
        tlen += n;
        p += 8 + n;
    }
    if (p != end && tlen == 0) {
        memcpy(text, r.body, r.len);
        tlen = r.len;
    }
    text[tlen] = '\0';
    free(r.body);

    for (line = text; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        if (nl == NULL) {
            nl = line + strlen(line);
        }
        json_array_append_new(out, logline_json(service, line,
                                                (size_t) (nl - line)));
        if (*nl == '\0') {
            break;
        }
    }
    free(text);
    return 0;
}


struct engine *
engine_new(const char *socket, const char *who)
{
    struct engine  *e;

    e = calloc(1, sizeof(*e));
    if (e == NULL) {
        log_err("%s driver: out of memory", who);
        return NULL;
    }
    if (engine_open(e, socket, who) != 0) {
        free(e);
        return NULL;
    }
    return e;
}


void
engine_free(struct engine *e)
{
    if (e != NULL) {
        engine_close(e);
        free(e);
    }
}


json_t *
engine_get_json(struct engine *e, const char *path, const char *what,
                int *gone, char *err, size_t len)
{
    struct engine_resp  r;
    json_t             *j = NULL;

    *gone = 0;
    if (engine_request(e, "GET", path, NULL, &r, err, len) != 0) {
        return NULL;
    }
    if (r.status == 404) {
        *gone = 1;
        snprintf(err, len, "engine: %s: not found", what);
    } else if (r.status != 200 || (j = json_loads(r.body, 0, NULL)) == NULL)
    {
        engine_error(&r, what, err, len);
    }
    free(r.body);
    return j;
}


json_t *
engine_list(struct engine *e, const char *list, const char *tenant,
            const char *what, char *err, size_t len)
{
    char    filter[256], *esc, path[1024];
    json_t *j;
    int     gone;

    if (tenant) {
        snprintf(filter, sizeof(filter), "{\"label\":[\"" ENGINE_LABEL_TENANT
                 "=%s\"]}", tenant);
    } else {
        snprintf(filter, sizeof(filter), "{\"label\":[\""
                 ENGINE_LABEL_MANAGED "=true\"]}");
    }
    esc = engine_escape(e, filter);
    if (esc == NULL) {
        snprintf(err, len, "out of memory");
        return NULL;
    }
    snprintf(path, sizeof(path), "%sfilters=%s", list, esc);
    curl_free(esc);

    j = engine_get_json(e, path, what, &gone, err, len);
    if (j && !json_is_array(j)) {
        snprintf(err, len, "engine: %s: not an array", what);
        json_decref(j);
        j = NULL;
    }
    return j;
}
