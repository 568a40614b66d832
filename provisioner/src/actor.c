#define _POSIX_C_SOURCE 200809L

/*
 * Who the audit log says made a change from the command line: the login
 * name when there is a sensible one, else the uid.
 */

#include "actor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *
cli_actor(void)
{
    static char buf[96];
    const char *u = getenv("USER");

    if (u && strlen(u) < 64) {
        snprintf(buf, sizeof(buf), "cli:%s", u);
    } else {
        snprintf(buf, sizeof(buf), "cli:uid%ld", (long) getuid());
    }
    return buf;
}
