#ifndef PROV_PROV_H
#define PROV_PROV_H

#include "blueprint.h"
#include "conf.h"
#include "driver.h"
#include "secret.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <signal.h>

/*
 * One convention for functions that may find nothing: 0 found (or done),
 * PROV_NONE nothing there (no such row, no job, a claim lost), -1 an error
 * (logged, or said in err).
 */
#define PROV_NONE  1

/* what the daemon and the CLI share */
struct prov {
    struct conf           conf;
    const char           *conf_path;
    PGconn               *conn;
    struct driver        *driver;
    struct blueprint_set  blueprints;
    json_t               *runtime_dirs;   /* runtime_dirs() at the last load */
    unsigned char         key[SECRET_KEY_BYTES];
    int                   have_key;
    int                   worker;     /* 0: the daemon itself; n: worker n */
    /* set by the daemon's signal handler: long waits and jobs stop between
     * steps (a job is then released); never NULL */
    volatile sig_atomic_t *stop;
};

#endif
