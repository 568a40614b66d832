#ifndef PROV_TOOLRUN_H
#define PROV_TOOLRUN_H

#include <signal.h>

/* a tool the provisioner runs itself (pg_dump, pg_restore, tar) */
struct toolrun {
    char *const            *argv;     /* argv[0] a path */
    char *const            *envp;     /* the whole environment */
    unsigned int            uid;      /* 0: the provisioner's own rights */
    int                     in;       /* its stdin; -1: /dev/null */
    int                     out;      /* its stdout; -1: /dev/null */
    int                     timeout;  /* seconds, then killed */
    volatile sig_atomic_t  *stop;     /* set: killed at once; may be NULL */
};

/*
 * Runs s and waits for it: 0 when it exited 0, else -1 with the tool, how
 * it ended and the end of what it wrote to stderr in err.
 */
int toolrun(const struct toolrun *s, char *err, size_t len);

#endif
