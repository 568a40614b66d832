#ifndef PROV_DRIVER_H
#define PROV_DRIVER_H

#include "conf.h"

#include <jansson.h>

/* one service of one tenant, rendered from its blueprint */
struct service_spec {
    const char   *tenant;
    const char   *service;
    const char   *blueprint;
    const char   *dir;          /* the tenant's directory */
    char        **argv;         /* process: the command */
    char        **envp;         /* "NAME=value" */
    const char   *image;        /* docker: the image */
    int           port;
    long          memory_mb;
    double        cpus;
    unsigned int  uid;          /* process: the user it runs as (never 0) */
    json_t       *placement;    /* swarm: constraints, borrowed; or NULL */
};

struct driver;

/*
 * What a driver does, one constant table per driver (driver_process.c,
 * driver_docker.c, driver_swarm.c); driver.c picks one by name.  Every
 * call is idempotent: starting what runs, stopping what is stopped or
 * removing what is gone succeeds.  Errors are logged with their cause and copied into err for
 * the job.
 */
struct driver_ops {
    const char  *name;
    /* a service's address can change while it runs (a swarm task moved
     * to another node): the reconciler keeps the endpoints current */
    int          moves;
    /* sets up d->data; -1 (logged) when the driver cannot run here */
    int   (*init)(struct driver *d);
    int   (*start)(struct driver *d, const struct service_spec *s,
                   char *err, size_t len);
    int   (*stop)(struct driver *d, const char *tenant, const char *service,
                  char *err, size_t len);
    int   (*remove)(struct driver *d, const char *tenant, char *err,
                    size_t len);
    /* a one-off command as the service runs it (its user, directory and
     * environment, plus env), waited for at most timeout_s seconds, its
     * output appended to the service's log: 0, or -1 with why in err */
    int   (*run)(struct driver *d, const struct service_spec *s,
                 char *const *argv, char *const *env, int timeout_s,
                 char *err, size_t len);
    /* 1 running, 0 not, -1 error */
    int   (*status)(struct driver *d, const char *tenant,
                    const char *service);
    /* appends up to lines lines of the service's output to out */
    int   (*logs)(struct driver *d, const char *tenant, const char *service,
                  int lines, json_t *out);
    /* {tenant: {service: running}} of everything the driver runs */
    json_t *(*list)(struct driver *d);
    /* housekeeping between jobs: reap children, cap logs */
    void  (*tick)(struct driver *d);
    /* where a service's endpoint is (process and host networking:
     * 127.0.0.1:port) */
    int   (*address)(struct driver *d, const struct service_spec *s,
                     char *out, size_t len);
    /* releases d->data */
    void  (*cleanup)(struct driver *d);
};

struct driver {
    const struct driver_ops  *ops;
    const char               *name;      /* ops->name */
    const struct conf        *conf;
    void                     *data;      /* the driver's own */
};

extern const struct driver_ops  driver_process_ops;
extern const struct driver_ops  driver_docker_ops;
extern const struct driver_ops  driver_swarm_ops;

/* the driver conf->driver names, set up; NULL (logged) if it cannot be */
struct driver *driver_new(const struct conf *conf);
void driver_free(struct driver *d);

#endif
