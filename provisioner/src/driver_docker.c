#define _GNU_SOURCE

/*
 * The docker driver: the Docker Engine REST API (engine.c), which Docker
 * and Podman both serve. Containers are named
 * tenant-<tenant>-<service> and labelled with the tenant, service and
 * blueprint; the tenant's directory is bind-mounted at the same path, so
 * blueprint files and commands work as with the process driver. Networking
 * is the host's (ports from the provisioner) or, with docker_network =
 * bridge, a network per tenant where the container's own IP is the
 * endpoint. Engine errors reach the job with the engine's own message.
 */

#include "driver.h"
#include "engine.h"
#include "fsutil.h"
#include "log.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
name_of(char *out, size_t len, const char *tenant, const char *service)
{
    snprintf(out, len, "tenant-%s-%s", tenant, service);
}

/* GET /containers/NAME/json: the inspect document, or NULL if none */
static json_t *
inspect(struct driver *d, const char *name, int *gone, char *err, size_t len)
{
    char  path[512];

    snprintf(path, sizeof(path), "/containers/%s/json", name);
    return engine_get_json(d->data, path, "inspect", gone, err, len);
}

static int
ensure_network(struct driver *d, const char *tenant, char *err, size_t len)
{
    struct engine_resp  r;
    char         body[256], path[128];

    /* Podman answers 500, not 409, to an existing name: look first */
    snprintf(path, sizeof(path), "/networks/tenant-%s", tenant);
    if (engine_request(d->data, "GET", path, NULL, &r, err, len) != 0) {
        return -1;
    }
    free(r.body);
    if (r.status == 200) {
        return 0;
    }

    snprintf(body, sizeof(body), "{\"Name\":\"tenant-%s\",\"Labels\":{\""
             ENGINE_LABEL_MANAGED "\":\"true\",\"" ENGINE_LABEL_TENANT "\":\"%s\"}}",
             tenant, tenant);
    if (engine_request(d->data, "POST", "/networks/create", body, &r, err, len) != 0) {
        return -1;
    }
    if (r.status != 201 && r.status != 200 && r.status != 409) {
        engine_error(&r, "create network", err, len);
        free(r.body);
        return -1;
    }
    free(r.body);
    return 0;
}


static int
bridge(const struct driver *d)
{
    return strcmp(d->conf->docker_network, "bridge") == 0;
}

static int
dk_create(struct driver *d, const struct service_spec *s, const char *name,
          char *err, size_t len)
{
    json_t      *body, *cmd, *env, *host, *labels;
    char        *text, path[512], bind[2100], net[128];
    struct engine_resp  r;
    size_t       i;
    int          rc = -1;

    if (s->image == NULL) {
        snprintf(err, len, "blueprint %s: service %s has no image for the "
                 "docker driver", s->blueprint, s->service);
        return -1;
    }

    snprintf(net, sizeof(net), "tenant-%s", s->tenant);
    if (bridge(d) && ensure_network(d, s->tenant, err, len) != 0) {
        return -1;
    }

    cmd = json_array();
    env = json_array();
    for (i = 0; s->argv && s->argv[i]; i++) {
        json_array_append_new(cmd, json_string(s->argv[i]));
    }
    for (i = 0; s->envp && s->envp[i]; i++) {
        json_array_append_new(env, json_string(s->envp[i]));
    }
    snprintf(bind, sizeof(bind), "%s:%s", s->dir, s->dir);
    labels = json_pack("{s:s, s:s, s:s, s:s}", ENGINE_LABEL_MANAGED, "true",
                       ENGINE_LABEL_TENANT, s->tenant, ENGINE_LABEL_SERVICE, s->service,
                       ENGINE_LABEL_BP, s->blueprint);
    /* an init as PID 1 passes SIGTERM on: a bare service there ignores it */
    host = json_pack("{s:s, s:[s], s:{s:s}, s:b}",
                     "NetworkMode", bridge(d) ? net : "host",
                     "Binds", bind,
                     "RestartPolicy", "Name", "unless-stopped",
                     "Init", 1);
    if (host && s->memory_mb > 0) {
        json_object_set_new(host, "Memory",
                            json_integer((json_int_t) s->memory_mb << 20));
    }
    if (host && s->cpus > 0) {
        json_object_set_new(host, "NanoCpus",
                            json_integer((json_int_t) (s->cpus * 1e9)));
    }

    body = json_pack("{s:s, s:o, s:o, s:o, s:s, s:o}", "Image", s->image,
                     "Env", env, "Labels", labels, "HostConfig", host,
                     "WorkingDir", s->dir, "Cmd", cmd);
    text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (text == NULL) {
        snprintf(err, len, "out of memory");
        return -1;
    }

    snprintf(path, sizeof(path), "/containers/create?name=%s", name);
    if (engine_request(d->data, "POST", path, text, &r, err, len) == 0) {
        if (r.status == 201 || r.status == 200) {
            rc = 0;
        } else {
            engine_error(&r, "create container", err, len);
        }
        free(r.body);
    }
    explicit_bzero(text, strlen(text));
    free(text);
    return rc;
}

static int
dk_start(struct driver *d, const struct service_spec *s, char *err,
         size_t len)
{
    char         name[256], path[512];
    json_t      *c;
    struct engine_resp  r;
    int          gone;

    if (mkdirs(s->dir, NULL, 0750) != 0) {
        snprintf(err, len, "cannot create %s", s->dir);
        return -1;
    }

    name_of(name, sizeof(name), s->tenant, s->service);
    c = inspect(d, name, &gone, err, len);
    if (c == NULL && !gone) {
        return -1;
    }
    if (c && json_is_true(json_object_get(json_object_get(c, "State"),
                                          "Running")))
    {
        json_decref(c);
        return 0;
    }
    json_decref(c);

    if (gone && dk_create(d, s, name, err, len) != 0) {
        return -1;
    }

    snprintf(path, sizeof(path), "/containers/%s/start", name);
    if (engine_request(d->data, "POST", path, NULL, &r, err, len) != 0) {
        return -1;
    }
    /* 304: already running */
    if (r.status != 204 && r.status != 304) {
        engine_error(&r, "start container", err, len);
        free(r.body);
        return -1;
    }
    free(r.body);
    log_info("%s/%s: container %s started", s->tenant, s->service, name);
    return 0;
}

/* by name or id; 304 (not running) and 404 (no such container) are stopped */
static int
stop_container(struct driver *d, const char *ref, char *err, size_t len)
{
    char         path[512];
    struct engine_resp  r;

    snprintf(path, sizeof(path), "/containers/%s/stop?t=5", ref);
    if (engine_request(d->data, "POST", path, NULL, &r, err, len) != 0) {
        return -1;
    }
    if (r.status != 204 && r.status != 304 && r.status != 404) {
        engine_error(&r, "stop container", err, len);
        free(r.body);
        return -1;
    }
    free(r.body);
    return 0;
}

static int
dk_stop(struct driver *d, const char *tenant, const char *service, char *err,
        size_t len)
{
    char name[256];

    name_of(name, sizeof(name), tenant, service);
    return stop_container(d, name, err, len);
}

/*
 * A graceful stop first: the service gets SIGTERM and 5 s to close its
 * connections, and Podman before 4.4 could drop a container it was still
 * stopping from its store while the processes lived on.
 */
static int
remove_container(struct driver *d, const char *id, char *err, size_t len)
{
    char         path[512];
    struct engine_resp  r;

    if (stop_container(d, id, err, len) != 0) {
        return -1;
    }
    snprintf(path, sizeof(path), "/containers/%s?force=true&v=true", id);
    if (engine_request(d->data, "DELETE", path, NULL, &r, err, len) != 0) {
        return -1;
    }
    if (r.status != 204 && r.status != 404) {
        engine_error(&r, "remove container", err, len);
        free(r.body);
        return -1;
    }
    free(r.body);
    return 0;
}

static int
dk_remove(struct driver *d, const char *tenant, char *err, size_t len)
{
    json_t      *all, *c;
    size_t       i;
    struct engine_resp  r;
    char         path[512], dir[1024];
    const char  *id;

    all = engine_list(d->data, "/containers/json?all=1&", tenant,
                      "list containers", err, len);
    if (all == NULL) {
        return -1;
    }
    json_array_foreach(all, i, c) {
        id = json_string_value(json_object_get(c, "Id"));
        if (id == NULL) {
            continue;
        }
        if (remove_container(d, id, err, len) != 0) {
            json_decref(all);
            return -1;
        }
    }
    json_decref(all);

    if (bridge(d)) {
        snprintf(path, sizeof(path), "/networks/tenant-%s", tenant);
        if (engine_request(d->data, "DELETE", path, NULL, &r, err, len) != 0) {
            return -1;
        }
        free(r.body);
    }

    snprintf(dir, sizeof(dir), "%s/%s", d->conf->state_dir, tenant);
    if (rmtree(dir) != 0) {
        snprintf(err, len, "cannot remove %s", dir);
        return -1;
    }
    log_info("%s: containers removed", tenant);
    return 0;
}

static int
dk_status(struct driver *d, const char *tenant, const char *service)
{
    char    name[256], err[256];
    json_t *c;
    int     gone, up;

    name_of(name, sizeof(name), tenant, service);
    c = inspect(d, name, &gone, err, sizeof(err));
    if (c == NULL) {
        return gone ? 0 : -1;
    }
    up = json_is_true(json_object_get(json_object_get(c, "State"),
                                      "Running"));
    json_decref(c);
    return up;
}

static int
dk_logs(struct driver *d, const char *tenant, const char *service, int lines,
        json_t *out)
{
    char  name[256], path[512];

    name_of(name, sizeof(name), tenant, service);
    snprintf(path, sizeof(path),
             "/containers/%s/logs?stdout=1&stderr=1&timestamps=1&tail=%d",
             name, lines);
    return engine_logs(d->data, path, service, out);
}

static json_t *
dk_list(struct driver *d)
{
    char         err[256];
    json_t      *all, *c, *out, *labels, *svcs;
    const char  *tenant, *service, *state;
    size_t       i;

    out = json_object();
    all = engine_list(d->data, "/containers/json?all=1&", NULL,
                      "list containers", err, sizeof(err));
    if (all == NULL) {
        /* an engine that does not answer lists nothing: no orphans */
        log_warn("docker: %s", err);
        return out;
    }
    json_array_foreach(all, i, c) {
        labels = json_object_get(c, "Labels");
        tenant = json_string_value(json_object_get(labels, ENGINE_LABEL_TENANT));
        service = json_string_value(json_object_get(labels, ENGINE_LABEL_SERVICE));
        state = json_string_value(json_object_get(c, "State"));
        if (tenant == NULL || service == NULL) {
            continue;
        }
        svcs = json_object_get(out, tenant);
        if (svcs == NULL) {
            svcs = json_object();
            json_object_set_new(out, tenant, svcs);
        }
        json_object_set_new(svcs, service,
                            json_boolean(state
                                         && strcmp(state, "running") == 0));
    }
    json_decref(all);
    return out;
}

static void
dk_tick(struct driver *d)
{
    (void) d;
}

static int
dk_address(struct driver *d, const struct service_spec *s, char *out,
           size_t len)
{
    char        name[256], err[256], net[128];
    json_t     *c;
    const char *ip;
    int         gone, rc;

    if (!bridge(d)) {
        return snprintf(out, len, "127.0.0.1:%d", s->port) >= (int) len ? -1
                                                                         : 0;
    }

    name_of(name, sizeof(name), s->tenant, s->service);
    snprintf(net, sizeof(net), "tenant-%s", s->tenant);
    c = inspect(d, name, &gone, err, sizeof(err));
    ip = json_string_value(json_object_get(json_object_get(json_object_get(
             json_object_get(c, "NetworkSettings"), "Networks"), net),
             "IPAddress"));
    rc = (ip && *ip) ? (snprintf(out, len, "%s:%d", ip, s->port) >= (int) len
                        ? -1 : 0)
                     : -1;
    json_decref(c);
    return rc;
}

static void
dk_cleanup(struct driver *d)
{
    engine_free(d->data);
    d->data = NULL;
}

static int
dk_init(struct driver *d)
{
    d->data = engine_new(d->conf->docker_socket, "docker");
    return d->data ? 0 : -1;
}

/* blueprints with setup commands run on the process driver only (their
 * validation says so): nothing here runs one */
static int
dk_run(struct driver *d, const struct service_spec *s, char *const *argv,
       char *const *env, int timeout_s, char *err, size_t len)
{
    (void) d;
    (void) env;
    (void) timeout_s;
    snprintf(err, len, "%s/%s: the docker driver runs no one-off command "
             "(%s)", s->tenant, s->service, argv[0]);
    return -1;
}

const struct driver_ops  driver_docker_ops = {
    .name = "docker",
    .init = dk_init,
    .start = dk_start,
    .stop = dk_stop,
    .run = dk_run,
    .remove = dk_remove,
    .status = dk_status,
    .logs = dk_logs,
    .list = dk_list,
    .tick = dk_tick,
    .address = dk_address,
    .cleanup = dk_cleanup,
};
