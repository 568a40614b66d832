#define _GNU_SOURCE

/*
 * The tools the provisioner runs itself. Their stderr is kept (its last
 * part) for the job's error, so a failed pg_restore says why; a tool run
 * for a tenant runs with the tenant's rights only.
 */

#include "toolrun.h"
#include "clock.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define TAIL  400

static void
child(const struct toolrun *s, int errfd)
{
    int nul, fd;

    nul = open("/dev/null", O_RDWR);
    if (nul < 0
        || dup2(s->in >= 0 ? s->in : nul, 0) < 0
        || dup2(s->out >= 0 ? s->out : nul, 1) < 0
        || dup2(errfd, 2) < 0)
    {
        _exit(126);
    }
    for (fd = 3; fd < 1024; fd++) {
        close(fd);
    }
    if (s->uid != 0
        && (setgroups(0, NULL) != 0 || setgid((gid_t) s->uid) != 0
            || setuid((uid_t) s->uid) != 0))
    {
        dprintf(2, "cannot take uid %u: %s\n", s->uid, strerror(errno));
        _exit(126);
    }
    signal(SIGPIPE, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    execve(s->argv[0], s->argv, s->envp);
    dprintf(2, "cannot run: %s\n", strerror(errno));
    _exit(127);
}

/* keeps the last TAIL bytes of what arrives */
static void
keep(char *tail, size_t *n, const char *buf, size_t got)
{
    if (got >= TAIL) {
        memcpy(tail, buf + got - TAIL, TAIL);
        *n = TAIL;
        return;
    }
    if (*n + got > TAIL) {
        memmove(tail, tail + (*n + got - TAIL), TAIL - got);
        *n = TAIL - got;
    }
    memcpy(tail + *n, buf, got);
    *n += got;
}

int
toolrun(const struct toolrun *s, char *err, size_t len)
{
    char           tail[TAIL + 1], buf[4096], *p;
    size_t         n = 0;
    ssize_t        got;
    int            pipefd[2], status, open_err = 1, killed = 0, rc;
    pid_t          pid;
    double         deadline;
    struct pollfd  pfd;

    if (pipe2(pipefd, O_CLOEXEC) != 0) {
        snprintf(err, len, "%s: pipe: %s", s->argv[0], strerror(errno));
        return -1;
    }

    pid = fork();
    if (pid < 0) {
        snprintf(err, len, "%s: fork: %s", s->argv[0], strerror(errno));
        close(pipefd[0]);
        close(pipefd[1]);
        return -1;
    }
    if (pid == 0) {
        child(s, pipefd[1]);
    }
    close(pipefd[1]);

    deadline = clock_now() + s->timeout;
    pfd.fd = pipefd[0];
    pfd.events = POLLIN;

    for ( ;; ) {
        if (!killed && ((s->stop && *s->stop) || clock_now() > deadline)) {
            kill(pid, SIGKILL);
            killed = (s->stop && *s->stop) ? 2 : 1;
        }
        if (open_err && poll(&pfd, 1, 200) > 0) {
            got = read(pipefd[0], buf, sizeof(buf));
            if (got > 0) {
                keep(tail, &n, buf, (size_t) got);
            } else if (got == 0 || errno != EINTR) {
                open_err = 0;
            }
        } else if (!open_err) {
            clock_pause_ms(50);
        }
        rc = waitpid(pid, &status, WNOHANG);
        if (rc == pid) {
            break;
        }
        if (rc < 0 && errno != EINTR) {
            snprintf(err, len, "%s: waitpid: %s", s->argv[0],
                     strerror(errno));
            close(pipefd[0]);
            return -1;
        }
    }
    /* what it wrote just before it ended */
    while (open_err && poll(&pfd, 1, 0) > 0
           && (got = read(pipefd[0], buf, sizeof(buf))) > 0)
    {
        keep(tail, &n, buf, (size_t) got);
    }
    close(pipefd[0]);

    if (!killed && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        return 0;
    }

    tail[n] = '\0';
    for (p = tail; *p; p++) {
        if (*p == '\n' || *p == '\r' || *p == '\t') {
            *p = ' ';
        }
    }
    while (n > 0 && tail[n - 1] == ' ') {
        tail[--n] = '\0';
    }

    if (killed) {
        snprintf(err, len, "%s: %s (killed)%s%.400s", s->argv[0],
                 killed == 2 ? "stopped with the provisioner"
                             : "did not finish in time",
                 n ? ": " : "", tail);
    } else {
        snprintf(err, len, "%s: %s %d%s%.400s", s->argv[0],
                 WIFEXITED(status) ? "exited with" : "killed by signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
                 n ? ": " : "", tail);
    }
    return -1;
}
