#define _GNU_SOURCE

#include "acme_dns.h"
#include "clock.h"
#include "dns.h"
#include "log.h"

#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static int
run_hook(struct prov *p, const char *verb, const char *name,
         const char *value, char *err, size_t len)
{
    char   *argv[5];
    pid_t   pid;
    int     status, rc;
    double  deadline = clock_now() + p->conf.acme_timeout;

    argv[0] = p->conf.acme_dns_hook;
    argv[1] = (char *) verb;
    argv[2] = (char *) name;
    argv[3] = (char *) value;
    argv[4] = NULL;

    rc = posix_spawn(&pid, argv[0], NULL, NULL, argv, environ);
    if (rc != 0) {
        snprintf(err, len, "acme_dns_hook %s: cannot run: %s", argv[0],
                 strerror(rc));
        return -1;
    }

    for ( ;; ) {
        rc = waitpid(pid, &status, WNOHANG);
        if (rc == pid) {
            break;
        }
        if (rc < 0 && errno != EINTR) {
            snprintf(err, len, "acme_dns_hook: waitpid: %s", strerror(errno));
            return -1;
        }
        if (clock_now() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            snprintf(err, len, "acme_dns_hook %s %s %s: no answer in %d s "
                     "(killed)", argv[0], verb, name, p->conf.acme_timeout);
            return -1;
        }
        clock_pause_ms(20);
    }

    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        snprintf(err, len, "acme_dns_hook %s %s %s: %s %d", argv[0], verb,
                 name, WIFEXITED(status) ? "exit status" : "killed by signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        return -1;
    }
    return 0;
}

int
acme_dns_set(struct prov *p, const char *name, const char *value, char *err,
             size_t len)
{
    char    values[DNS_TXT_MAX][256], why[256] = "";
    double  deadline;
    int     n, i;

    if (run_hook(p, "set", name, value, err, len) != 0) {
        return -1;
    }
    if (p->conf.dns_resolver[0] == '\0') {
        return 0;
    }

    /* the CA would look before the record shows: wait for it here */
    deadline = clock_now() + p->conf.acme_dns_wait;
    for ( ;; ) {
        n = dns_txt(p->conf.dns_resolver, name, values, why, sizeof(why));
        for (i = 0; i < n; i++) {
            if (strcmp(values[i], value) == 0) {
                return 0;
            }
        }
        if (clock_now() > deadline || *p->stop) {
            snprintf(err, len, "TXT %s did not show %s at %s within %d s%s%s",
                     name, value, p->conf.dns_resolver, p->conf.acme_dns_wait,
                     why[0] ? ": " : "", why);
            return -1;
        }
        clock_pause_ms(500);
    }
}

int
acme_dns_clear(struct prov *p, const char *name, const char *value,
               char *err, size_t len)
{
    return run_hook(p, "clear", name, value, err, len);
}
