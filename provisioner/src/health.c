#define _POSIX_C_SOURCE 200809L

#include "health.h"
#include "clock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* one attempt: the HTTP status, or -1 with the reason in err */
static int
probe(const char *addr, const char *path, const char *tenant, char *err,
      size_t len)
{
    struct sockaddr_in  sin;
    struct sockaddr_un  sun;
    struct sockaddr    *sa;
    socklen_t           salen;
    char                host[64], req[512], buf[64];
    const char         *colon;
    int                 fd, status = -1;
    ssize_t             n;
    size_t              got = 0;
    struct pollfd       pfd;

    if (strncmp(addr, "unix:", 5) == 0) {
        memset(&sun, 0, sizeof(sun));
        sun.sun_family = AF_UNIX;
        snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", addr + 5);
        sa = (struct sockaddr *) &sun;
        salen = sizeof(sun);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    } else {
        colon = strrchr(addr, ':');
        if (colon == NULL || (size_t) (colon - addr) >= sizeof(host)) {
            snprintf(err, len, "bad address %s", addr);
            return -1;
        }
        memcpy(host, addr, (size_t) (colon - addr));
        host[colon - addr] = '\0';
        memset(&sin, 0, sizeof(sin));
        sin.sin_family = AF_INET;
        sin.sin_port = htons((unsigned short) atoi(colon + 1));
        if (inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
            snprintf(err, len, "bad address %s", addr);
            return -1;
        }
        sa = (struct sockaddr *) &sin;
        salen = sizeof(sin);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    }

    if (fd < 0) {
        snprintf(err, len, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, sa, salen) != 0) {
        snprintf(err, len, "connect to %s: %s", addr, strerror(errno));
        close(fd);
        return -1;
    }

    /* a shared runtime tells tenants apart by X-Tenant-ID, as the edge sends */
    snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: localhost\r\n"
             "User-Agent: ngx_tenant-provisioner\r\n%s%s%s\r\n", path,
             tenant ? "X-Tenant-ID: " : "", tenant ? tenant : "",
             tenant ? "\r\n" : "");
    if (write(fd, req, strlen(req)) != (ssize_t) strlen(req)) {
        snprintf(err, len, "write to %s: %s", addr, strerror(errno));
        close(fd);
        return -1;
    }

    pfd.fd = fd;
    pfd.events = POLLIN;
    while (got < sizeof(buf) - 1 && poll(&pfd, 1, 2000) == 1) {
        n = read(fd, buf + got, sizeof(buf) - 1 - got);
        if (n <= 0) {
            break;
        }
        got += (size_t) n;
    }
    close(fd);
    buf[got] = '\0';

    if (got >= 12 && strncmp(buf, "HTTP/1.", 7) == 0) {
        status = atoi(buf + 9);
    }
    if (status < 100) {
        snprintf(err, len, "no HTTP answer from %s", addr);
        return -1;
    }
    return status;
}

int
health_wait(const char *addr, const char *path, int timeout_s,
            volatile sig_atomic_t *stop, char *err, size_t len)
{
    return health_wait_for(addr, path, NULL, 500, timeout_s, stop, err, len);
}

int
health_wait_for(const char *addr, const char *path, const char *tenant,
                int below, int timeout_s, volatile sig_atomic_t *stop, char *err,
                size_t len)
{
    double           deadline = clock_now() + timeout_s;
    int              status;
    long             wait_ms = 1, waited_ms = 0;

    for ( ;; ) {
        status = probe(addr, path, tenant, err, len);
        /* 401/403 count: an admin behind a login is alive */
        if (status >= 100 && status < below) {
            return 0;
        }
        if (status >= below) {
            snprintf(err, len, "%s%s answered %d", addr, path, status);
        }
        if (clock_now() >= deadline) {
            return -1;
        }
        if (stop && *stop) {
            snprintf(err, len, "shutting down");
            return -1;
        }
        /*
         * A fresh process binds within milliseconds, tens of them on a
         * busy machine: a doubling wait (1, 2, 4 ... 32 ms) overslept a
         * bind at 17 ms by 14. A refused connect costs microseconds, so
         * look every 2 ms for the first half second, then less often.
         */
        clock_pause_ms(wait_ms);
        waited_ms += wait_ms;
        wait_ms = waited_ms < 500 ? 2 : wait_ms * 2 > 100 ? 100 : wait_ms * 2;
    }
}
