#ifndef PROV_PROV_H
#define PROV_PROV_H

#include "blueprint.h"
#include "conf.h"
#include "driver.h"
#include "secret.h"

#include <libpq-fe.h>

/* what the daemon and the CLI share */
struct prov {
    struct conf           conf;
    const char           *conf_path;
    PGconn               *conn;
    struct driver        *driver;
    struct blueprint_set  blueprints;
    unsigned char         key[SECRET_KEY_BYTES];
    int                   have_key;
    int                   worker;     /* 0: the daemon itself; n: worker n */
};

#endif
