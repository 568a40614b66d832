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

/* {name: directory} where this checkout's lock files say each runtime is
 * installed, whether it is yet or not: each lock file read and hashed, so
 * once per blueprint (re)load, not per tenant; NULL on error */
json_t *runtime_dirs(const struct conf *c);

/* those of dirs (may be NULL) installed now: a stat each; NULL on error */
json_t *runtime_installed(json_t *dirs);

#endif
