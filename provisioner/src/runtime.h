#ifndef PROV_RUNTIME_H
#define PROV_RUNTIME_H

#include "conf.h"

#include <jansson.h>

/*
 * The npm runtimes auto/runtimes installs: runtimes/NAME/package-lock.json
 * (conf->runtimes) names NAME's install in conf->runtime_dir,
 * NAME-<first 16 hex digits of the lock file's SHA-256>, complete once it
 * holds ".installed". A create never installs one: it is there, or the
 * job says how to install it.
 */

/* {name: directory} of the runtimes installed for this checkout's lock
 * files (none installed: an empty object); NULL on error */
json_t *runtime_installed(const struct conf *c);

#endif
