#define _POSIX_C_SOURCE 200809L

/*
 * The driver factory: the platform runs one driver, named in the
 * configuration; each is a constant table of operations.
 */

#include "driver.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

static const struct driver_ops *const drivers[] = {
    &driver_process_ops,
    &driver_docker_ops,
    &driver_swarm_ops,
    NULL
};

struct driver *
driver_new(const struct conf *conf)
{
    const struct driver_ops *const  *ops;
    struct driver                   *d;

    for (ops = drivers; *ops != NULL; ops++) {
        if (strcmp((*ops)->name, conf->driver) == 0) {
            break;
        }
    }
    if (*ops == NULL) {
        log_err("unknown driver \"%s\" (process, docker, swarm)", conf->driver);
        return NULL;
    }

    d = calloc(1, sizeof(*d));
    if (d == NULL) {
        log_err("%s driver: out of memory", (*ops)->name);
        return NULL;
    }
    d->ops = *ops;
    d->name = (*ops)->name;
    d->conf = conf;

    if (d->ops->init(d) != 0) {
        free(d);
        return NULL;
    }
    return d;
}

void
driver_free(struct driver *d)
{
    if (d != NULL) {
        d->ops->cleanup(d);
        free(d);
    }
}
