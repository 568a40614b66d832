#define _GNU_SOURCE

/*
 * The swarm driver: each tenant service is a Docker Swarm service of one
 * replica, named tenant-<tenant>-<service> and labelled as the docker
 * driver labels its containers, over the same Engine API client
 * (engine.c) talking to a manager. Tasks use the host's network, so a
 * service's endpoint is the address of the node its running task is on
 * and the port the provisioner gave it; where the task moves (a node
 * drained or lost), address() says so and the reconciler rewrites the
 * tenant's endpoints. Suspending scales a service to 0 replicas; a new
 * image or command reaches it as a rolling update (stop-first: the new
 * task needs the old one's port).
 */

#include "driver.h"
#include "engine.h"
#include "clock.h"
#include "fsutil.h"
#include "log.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* how long start and stop wait for the swarm to converge */
#define SWARM_CONVERGE_MS  30000

static void
name_of(char *out, size_t len, const char *tenant, const char *service)
{
    snprintf(out, len, "tenant-%s-%s", tenant, service);
}

static const char *
task_state(json_t *task)
{
    const char *st = json_string_value(json_object_get(json_object_get(task,
                                                       "Status"), "State"));
    return st ? st : "";
}

static json_t *
inspect_service(struct driver *d, const char *name, int *gone, char *err,
                size_t len)
{
    char  path[512];

    snprintf(path, sizeof(path), "/services/%s", name);
    return engine_get_json(d->data, path, "inspect service", gone, err, len);
}

/* GET /tasks with one filter (JSON, escaped here): the array, or NULL */
static json_t *
list_tasks(struct driver *d, const char *filter, char *err, size_t len)
{
    char    *esc, path[1024];
    json_t  *j;
    int      gone;

    esc = engine_escape(d->data, filter);
    if (esc == NULL) {
        snprintf(err, len, "out of memory");
        return NULL;
    }
    snprintf(path, sizeof(path), "/tasks?filters=%s", esc);
    curl_free(esc);

    j = engine_get_json(d->data, path, "list tasks", &gone, err, len);
    if (j && !json_is_array(j)) {
        snprintf(err, len, "engine: list tasks: not an array");
        json_decref(j);
        j = NULL;
    }
    return j;
}

/* the service's running task (a new reference), NULL if none or error */
static json_t *
running_task(struct driver *d, const char *name, int *error)
{
    char     filter[512], err[256];
    json_t  *tasks, *task, *found = NULL;
    size_t   i;

    *error = 0;
    snprintf(filter, sizeof(filter), "{\"service\":[\"%s\"],"
             "\"desired-state\":[\"running\"]}", name);
    tasks = list_tasks(d, filter, err, sizeof(err));
    if (tasks == NULL) {
        log_warn("swarm: %s: %s", name, err);
        *error = 1;
        return NULL;
    }
    json_array_foreach(tasks, i, task) {
        if (strcmp(task_state(task), "running") == 0) {
            found = json_incref(task);
            break;
        }
    }
    json_decref(tasks);
    return found;
}

/* tasks of the service still holding a container (not yet shut down) */
static int
live_tasks(struct driver *d, const char *name, char *err, size_t len)
{
    static const char *const done[] = { "complete", "shutdown", "failed",
                                        "rejected", "orphaned", "remove",
                                        NULL };
    char          filter[512];
    json_t       *tasks, *task;
    const char   *state;
    size_t        i, k;
    int           n = 0;

    snprintf(filter, sizeof(filter), "{\"service\":[\"%s\"]}", name);
    tasks = list_tasks(d, filter, err, len);
    if (tasks == NULL) {
        return -1;
    }
    json_array_foreach(tasks, i, task) {
        state = task_state(task);
        for (k = 0; done[k] && strcmp(done[k], state) != 0; k++) {
            /* void */
        }
        if (done[k] == NULL) {
            n++;
        }
    }
    json_decref(tasks);
    return n;
}

static json_t *
service_spec_json(const struct service_spec *s, const char *name)
{
    json_t      *cmd, *env, *labels, *cs, *res, *tt, *spec, *lim;
    char         user[32];
    size_t       i;

    cmd = json_array();
    env = json_array();
    for (i = 0; s->argv && s->argv[i]; i++) {
        json_array_append_new(cmd, json_string(s->argv[i]));
    }
    for (i = 0; s->envp && s->envp[i]; i++) {
        json_array_append_new(env, json_string(s->envp[i]));
    }
    labels = json_pack("{s:s, s:s, s:s, s:s}", ENGINE_LABEL_MANAGED, "true",
                       ENGINE_LABEL_TENANT, s->tenant,
                       ENGINE_LABEL_SERVICE, s->service,
                       ENGINE_LABEL_BP, s->blueprint);
    snprintf(user, sizeof(user), "%u:%u", s->uid, s->uid);

    /* an init as PID 1 passes SIGTERM on: a bare service there ignores it */
    cs = json_pack("{s:s, s:o, s:o, s:s, s:s, s:[{s:s, s:s, s:s}], s:b,"
                   " s:[s], s:O}",
                   "Image", s->image, "Command", cmd, "Env", env,
                   "Dir", s->dir, "User", user,
                   "Mounts", "Type", "bind", "Source", s->dir, "Target",
                   s->dir,
                   "Init", 1, "CapabilityDrop", "ALL", "Labels", labels);

    lim = json_object();
    if (s->memory_mb > 0) {
        json_object_set_new(lim, "MemoryBytes",
                            json_integer((json_int_t) s->memory_mb << 20));
    }
    if (s->cpus > 0) {
        json_object_set_new(lim, "NanoCPUs",
                            json_integer((json_int_t) (s->cpus * 1e9)));
    }
    /*
     * Memory is reserved as much as allowed, so the scheduler places by
     * what fits; CPU is not (a 2-core node would hold 4 tenants of 0.25
     * CPUs and two services): CPU is shared, memory is not.
     */
    res = json_pack("{s:o, s:{}}", "Limits", lim, "Reservations");
    if (res && s->memory_mb > 0) {
        json_object_set_new(json_object_get(res, "Reservations"),
                            "MemoryBytes",
                            json_integer((json_int_t) s->memory_mb << 20));
    }

    tt = json_pack("{s:o, s:o, s:{s:s, s:i, s:i}, s:[{s:s}]}",
                   "ContainerSpec", cs, "Resources", res,
                   "RestartPolicy", "Condition", "any",
                   "Delay", 1000000000, "MaxAttempts", 0,
                   "Networks", "Target", "host");
    if (tt && s->placement && json_array_size(s->placement) > 0) {
        json_object_set_new(tt, "Placement",
                            json_pack("{s:O}", "Constraints", s->placement));
    }

    spec = json_pack("{s:s, s:o, s:o, s:{s:{s:i}}, s:{s:i, s:s, s:s}}",
                     "Name", name, "Labels", labels, "TaskTemplate", tt,
                     "Mode", "Replicated", "Replicas", 1,
                     "UpdateConfig", "Parallelism", 1, "Order", "stop-first",
                     "FailureAction", "rollback");
    return spec;
}

/* a in b: b (the engine's, with its defaults added) says what a says */
static int
covers(json_t *b, json_t *a)
{
    const char *k;
    json_t     *v;
    size_t      i;

    if (json_is_object(a)) {
        if (!json_is_object(b)) {
            return 0;
        }
        json_object_foreach(a, k, v) {
            if (!covers(json_object_get(b, k), v)) {
                return 0;
            }
        }
        return 1;
    }
    if (json_is_array(a)) {
        if (!json_is_array(b) || json_array_size(a) != json_array_size(b)) {
            return 0;
        }
        json_array_foreach(a, i, v) {
            if (!covers(json_array_get(b, i), v)) {
                return 0;
            }
        }
        return 1;
    }
    return json_equal(a, b);
}

/* POST path with body; 0 when the engine answers one of ok1, ok2 */
static int
post(struct driver *d, const char *path, json_t *body, long ok1, long ok2,
     const char *what, char *err, size_t len)
{
    struct engine_resp  r;
    char               *text;
    int                 rc = -1;

    text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    if (body && text == NULL) {
        snprintf(err, len, "out of memory");
        return -1;
    }
    if (engine_request(d->data, "POST", path, text, &r, err, len) == 0) {
        if (r.status == ok1 || r.status == ok2) {
            rc = 0;
        } else {
            engine_error(&r, what, err, len);
        }
        free(r.body);
    }
    if (text) {
        /* the environment may carry the tenant's secrets */
        explicit_bzero(text, strlen(text));
        free(text);
    }
    return rc;
}

/* the service's spec replaced by spec, at the version it was read at */
static int
update_service(struct driver *d, json_t *svc, json_t *spec, char *err,
               size_t len)
{
    char        path[512];
    const char *id = json_string_value(json_object_get(svc, "ID"));
    json_int_t  version = json_integer_value(json_object_get(
                              json_object_get(svc, "Version"), "Index"));

    if (id == NULL) {
        snprintf(err, len, "engine: a service without an ID");
        return -1;
    }
    snprintf(path, sizeof(path), "/services/%s/update?version=%lld", id,
             (long long) version);
    return post(d, path, spec, 200, 200, "update service", err, len);
}

/* ": <the swarm's reason>" of a task not running, or "" */
static const char *
why_pending(struct driver *d, const char *name, char *why, size_t wlen)
{
    char         filter[512], err[256];
    json_t      *tasks, *task;
    const char  *e;
    size_t       i;

    why[0] = '\0';
    snprintf(filter, sizeof(filter), "{\"service\":[\"%s\"],"
             "\"desired-state\":[\"running\"]}", name);
    tasks = list_tasks(d, filter, err, sizeof(err));
    json_array_foreach(tasks, i, task) {
        e = json_string_value(json_object_get(json_object_get(task,
                                                              "Status"),
                                              "Err"));
        if (e && *e) {
            snprintf(why, wlen, ": %s", e);
            break;
        }
    }
    json_decref(tasks);
    return why;
}

/* waits until the service has a running task (want 1) or none live */
static int
converge(struct driver *d, const char *name, int want, char *err, size_t len)
{
    double  until = clock_now() + SWARM_CONVERGE_MS / 1000.0;
    char    why[256];
    json_t *task;
    int     error, n;

    for ( ;; ) {
        if (want) {
            task = running_task(d, name, &error);
            json_decref(task);
            if (task) {
                return 0;
            }
        } else {
            n = live_tasks(d, name, err, len);
            if (n < 0) {
                return -1;
            }
            if (n == 0) {
                return 0;
            }
        }
        if (clock_now() > until) {
            snprintf(err, len, "swarm: %s: %s after %d s%s", name,
                     want ? "no task running" : "tasks still running",
                     SWARM_CONVERGE_MS / 1000,
                     want ? why_pending(d, name, why, sizeof(why)) : "");
            return -1;
        }
        clock_pause_ms(50);
    }
}

static int
sw_start(struct driver *d, const struct service_spec *s, char *err,
         size_t len)
{
    char     name[256];
    json_t  *svc, *spec, *have;
    int      gone, rc;

    if (s->image == NULL) {
        snprintf(err, len, "blueprint %s: service %s has no image for the "
                 "swarm driver", s->blueprint, s->service);
        return -1;
    }
    if (mkdirs(s->dir, NULL, 0750) != 0) {
        snprintf(err, len, "cannot create %s", s->dir);
        return -1;
    }

    name_of(name, sizeof(name), s->tenant, s->service);
    spec = service_spec_json(s, name);
    if (spec == NULL) {
        snprintf(err, len, "out of memory");
        return -1;
    }

    svc = inspect_service(d, name, &gone, err, len);
    if (svc == NULL && !gone) {
        json_decref(spec);
        return -1;
    }

    if (gone) {
        rc = post(d, "/services/create", spec, 201, 200, "create service",
                  err, len);
        if (rc == 0) {
            log_info("%s/%s: swarm service %s created", s->tenant,
                     s->service, name);
        }

    } else {
        /* the same spec runs on; another (or replicas back to 1) rolls out */
        have = json_object_get(svc, "Spec");
        if (covers(have, spec)) {
            rc = 0;
        } else {
            rc = update_service(d, svc, spec, err, len);
            if (rc == 0) {
                log_info("%s/%s: swarm service %s updated", s->tenant,
                         s->service, name);
            }
        }
    }
    json_decref(svc);
    json_decref(spec);

    return rc == 0 ? converge(d, name, 1, err, len) : -1;
}

static int
sw_stop(struct driver *d, const char *tenant, const char *service, char *err,
        size_t len)
{
    char     name[256];
    json_t  *svc, *spec, *replicas;
    int      gone, rc = 0;

    name_of(name, sizeof(name), tenant, service);
    svc = inspect_service(d, name, &gone, err, len);
    if (svc == NULL) {
        return gone ? 0 : -1;
    }

    spec = json_deep_copy(json_object_get(svc, "Spec"));
    replicas = json_object_get(json_object_get(json_object_get(spec, "Mode"),
                                               "Replicated"), "Replicas");
    if (replicas == NULL) {
        snprintf(err, len, "swarm: %s is not a replicated service", name);
        rc = -1;
    } else if (json_integer_value(replicas) != 0) {
        json_integer_set(replicas, 0);
        rc = update_service(d, svc, spec, err, len);
    }
    json_decref(spec);
    json_decref(svc);

    return rc == 0 ? converge(d, name, 0, err, len) : -1;
}

/* the tasks go with the service, their containers a moment later */
static int
sw_remove(struct driver *d, const char *tenant, char *err, size_t len)
{
    json_t      *all, *svc;
    size_t       i;
    struct engine_resp  r;
    char         path[512], dir[1024];
    const char  *name;

    all = engine_list(d->data, "/services?", tenant, "list services", err,
                      len);
    if (all == NULL) {
        return -1;
    }
    json_array_foreach(all, i, svc) {
        name = json_string_value(json_object_get(json_object_get(svc, "Spec"),
                                                 "Name"));
        if (name == NULL) {
            continue;
        }
        snprintf(path, sizeof(path), "/services/%s", name);
        if (engine_request(d->data, "DELETE", path, NULL, &r, err, len) != 0)
        {
            json_decref(all);
            return -1;
        }
        if (r.status != 200 && r.status != 404) {
            engine_error(&r, "remove service", err, len);
            free(r.body);
            json_decref(all);
            return -1;
        }
        free(r.body);
        if (converge(d, name, 0, err, len) != 0) {
            json_decref(all);
            return -1;
        }
    }
    json_decref(all);

    snprintf(dir, sizeof(dir), "%s/%s", d->conf->state_dir, tenant);
    if (rmtree(dir) != 0) {
        snprintf(err, len, "cannot remove %s", dir);
        return -1;
    }
    log_info("%s: swarm services removed", tenant);
    return 0;
}

static int
sw_status(struct driver *d, const char *tenant, const char *service)
{
    char     name[256];
    json_t  *task;
    int      error;

    name_of(name, sizeof(name), tenant, service);
    task = running_task(d, name, &error);
    json_decref(task);
    return error ? -1 : (task != NULL);
}

static int
sw_logs(struct driver *d, const char *tenant, const char *service, int lines,
        json_t *out)
{
    char  name[256], path[512];

    name_of(name, sizeof(name), tenant, service);
    snprintf(path, sizeof(path),
             "/services/%s/logs?stdout=1&stderr=1&timestamps=1&tail=%d",
             name, lines);
    return engine_logs(d->data, path, service, out);
}

static json_t *
sw_list(struct driver *d)
{
    char         err[256];
    json_t      *all, *svc, *out, *labels, *svcs, *tasks, *task, *up;
    const char  *tenant, *service, *id;
    size_t       i;

    out = json_object();
    all = engine_list(d->data, "/services?", NULL, "list services", err,
                      sizeof(err));
    tasks = all ? list_tasks(d, "{\"desired-state\":[\"running\"]}", err,
                             sizeof(err))
                : NULL;
    if (tasks == NULL) {
        /* an engine that does not answer lists nothing: no orphans */
        log_warn("swarm: %s", err);
        json_decref(all);
        return out;
    }

    up = json_object();
    json_array_foreach(tasks, i, task) {
        id = json_string_value(json_object_get(task, "ServiceID"));
        if (id && strcmp(task_state(task), "running") == 0) {
            json_object_set_new(up, id, json_true());
        }
    }

    json_array_foreach(all, i, svc) {
        labels = json_object_get(json_object_get(svc, "Spec"), "Labels");
        tenant = json_string_value(json_object_get(labels,
                                                   ENGINE_LABEL_TENANT));
        service = json_string_value(json_object_get(labels,
                                                    ENGINE_LABEL_SERVICE));
        id = json_string_value(json_object_get(svc, "ID"));
        if (tenant == NULL || service == NULL || id == NULL) {
            continue;
        }
        svcs = json_object_get(out, tenant);
        if (svcs == NULL) {
            svcs = json_object();
            json_object_set_new(out, tenant, svcs);
        }
        json_object_set_new(svcs, service,
                            json_boolean(json_object_get(up, id) != NULL));
    }
    json_decref(up);
    json_decref(tasks);
    json_decref(all);
    return out;
}

static void
sw_tick(struct driver *d)
{
    (void) d;
}

/* where the running task is: its node's address and the service's port */
static int
sw_address(struct driver *d, const struct service_spec *s, char *out,
           size_t len)
{
    char         name[256], path[256], err[256];
    json_t      *task, *node;
    const char  *nid, *addr;
    int          error, gone, rc = -1;

    name_of(name, sizeof(name), s->tenant, s->service);
    task = running_task(d, name, &error);
    nid = json_string_value(json_object_get(task, "NodeID"));
    if (nid == NULL) {
        json_decref(task);
        return -1;
    }
    snprintf(path, sizeof(path), "/nodes/%s", nid);
    node = engine_get_json(d->data, path, "inspect node", &gone, err,
                           sizeof(err));
    addr = json_string_value(json_object_get(json_object_get(node, "Status"),
                                             "Addr"));
    if (addr && *addr) {
        rc = snprintf(out, len, "%s:%d", addr, s->port) >= (int) len ? -1 : 0;
    } else {
        log_warn("swarm: %s: node %s has no address%s%s", name, nid,
                 node ? "" : ": ", node ? "" : err);
    }
    json_decref(node);
    json_decref(task);
    return rc;
}

static void
sw_cleanup(struct driver *d)
{
    engine_free(d->data);
    d->data = NULL;
}

/* a manager of an active swarm, or nothing to drive */
static int
sw_init(struct driver *d)
{
    json_t      *info, *sw;
    char         err[256];
    const char  *state;
    int          gone;

    d->data = engine_new(d->conf->docker_socket, "swarm");
    if (d->data == NULL) {
        return -1;
    }

    info = engine_get_json(d->data, "/info", "info", &gone, err,
                           sizeof(err));
    if (info == NULL) {
        log_err("swarm driver: %s", err);
        sw_cleanup(d);
        return -1;
    }
    sw = json_object_get(info, "Swarm");
    state = json_string_value(json_object_get(sw, "LocalNodeState"));
    if (state == NULL || strcmp(state, "active") != 0
        || !json_is_true(json_object_get(sw, "ControlAvailable")))
    {
        log_err("swarm driver: the engine at %s is not a swarm manager "
                "(node state \"%s\"): run docker swarm init, or point "
                "docker_socket at a manager", d->conf->docker_socket,
                state ? state : "unknown");
        json_decref(info);
        sw_cleanup(d);
        return -1;
    }
    log_info("swarm: a manager of %lld node(s)",
             (long long) json_integer_value(json_object_get(sw, "Nodes")));
    json_decref(info);
    return 0;
}

/* blueprints with setup commands run on the process driver only (their
 * validation says so): nothing here runs one */
static int
sw_run(struct driver *d, const struct service_spec *s, char *const *argv,
       char *const *env, int timeout_s, char *err, size_t len)
{
    (void) d;
    (void) env;
    (void) timeout_s;
    snprintf(err, len, "%s/%s: the swarm driver runs no one-off command "
             "(%s)", s->tenant, s->service, argv[0]);
    return -1;
}

const struct driver_ops  driver_swarm_ops = {
    .name = "swarm",
    .moves = 1,
    .init = sw_init,
    .start = sw_start,
    .stop = sw_stop,
    .run = sw_run,
    .remove = sw_remove,
    .status = sw_status,
    .logs = sw_logs,
    .list = sw_list,
    .tick = sw_tick,
    .address = sw_address,
    .cleanup = sw_cleanup,
};
