#ifndef PROV_ENGINE_H
#define PROV_ENGINE_H

/*
 * The Docker Engine REST API over a unix socket (libcurl), which Docker
 * and Podman both serve: one HTTP layer for every driver that speaks it
 * (driver_docker.c, and a Swarm driver's services next). Blocking, with a
 * timeout: the provisioner's, never nginx's.
 */

#include <curl/curl.h>
#include <jansson.h>
#include <stddef.h>

struct engine {
    CURL        *curl;
    const char  *socket;
    char         prefix[32];     /* "/v1.41": the engine's own version */
};

struct engine_resp {
    long    status;
    char   *body;                /* NUL-terminated; the caller frees it */
    size_t  len;
};

/* the labels every driver over the engine puts on what it makes */
#define ENGINE_LABEL_MANAGED  "io.ngx-tenant.managed"
#define ENGINE_LABEL_TENANT   "io.ngx-tenant.tenant"
#define ENGINE_LABEL_SERVICE  "io.ngx-tenant.service"
#define ENGINE_LABEL_BP       "io.ngx-tenant.blueprint"

/* a new engine, opened (engine_open); NULL logged */
struct engine *engine_new(const char *socket, const char *who);
/* closes and frees e; NULL is fine */
void engine_free(struct engine *e);

/* connects and asks the engine's API version (1.24 or later): 0, or -1
 * logged with who ("docker") */
int  engine_open(struct engine *e, const char *socket, const char *who);
void engine_close(struct engine *e);

/* one request, body JSON or NULL: 0 with r filled whatever the status,
 * or -1 (err says why) when the engine did not answer */
int  engine_request(struct engine *e, const char *method, const char *path,
                    const char *body, struct engine_resp *r, char *err,
                    size_t len);

/* "engine: <what>: <the engine's message> (HTTP <status>)" into err */
void engine_error(const struct engine_resp *r, const char *what, char *err,
                  size_t len);

/* GET path: the decoded 200 answer, or NULL (*gone on 404; else err
 * says why) */
json_t *engine_get_json(struct engine *e, const char *path, const char *what,
                        int *gone, char *err, size_t len);

/* GET list (a path ending in "?" or "&") with a filter on our labels:
 * what we made for one tenant, or (tenant NULL) for all; an array, or
 * NULL with err */
json_t *engine_list(struct engine *e, const char *list, const char *tenant,
                    const char *what, char *err, size_t len);

/* GET path, a logs endpoint: its lines appended to out as the service's
 * (404: none); 0, or -1 logged */
int  engine_logs(struct engine *e, const char *path, const char *service,
                 json_t *out);

/* s escaped for a query string (curl_free() it), or NULL */
char *engine_escape(struct engine *e, const char *s);

#endif
