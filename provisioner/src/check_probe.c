#define _POSIX_C_SOURCE 200809L

/*
 * TCP (or Unix socket) reachability of tenant services, all at once so a
 * few hundred dead endpoints cost one timeout, not one each.
 */

#include "check_probe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* a socket connecting to addr, or -1 (an address it cannot read: down) */
static int
probe_start(const char *addr, int *done)
{
    struct sockaddr_storage  ss;
    struct sockaddr_in      *sin = (struct sockaddr_in *) &ss;
    struct sockaddr_in6     *sin6 = (struct sockaddr_in6 *) &ss;
    struct sockaddr_un      *sun = (struct sockaddr_un *) &ss;
    socklen_t                len;
    char                     host[64];
    const char              *colon;
    long                     port;
    char                    *end;
    int                      fd;

    *done = 0;
    memset(&ss, 0, sizeof(ss));

    if (strncmp(addr, "unix:", 5) == 0) {
        if (strlen(addr + 5) >= sizeof(sun->sun_path)) {
            return -1;
        }
        sun->sun_family = AF_UNIX;
        strcpy(sun->sun_path, addr + 5);
        len = sizeof(*sun);
    } else {
        colon = strrchr(addr, ':');
        if (colon == NULL || (size_t) (colon - addr) >= sizeof(host)) {
            return -1;
        }
        port = strtol(colon + 1, &end, 10);
        if (*end || port < 1 || port > 65535) {
            return -1;
        }
        if (addr[0] == '[' && colon > addr + 1 && colon[-1] == ']') {
            memcpy(host, addr + 1, colon - addr - 2);
            host[colon - addr - 2] = '\0';
            sin6->sin6_family = AF_INET6;
            sin6->sin6_port = htons((unsigned short) port);
            if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) {
                return -1;
            }
            len = sizeof(*sin6);
        } else {
            memcpy(host, addr, colon - addr);
            host[colon - addr] = '\0';
            sin->sin_family = AF_INET;
            sin->sin_port = htons((unsigned short) port);
            if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
                return -1;
            }
            len = sizeof(*sin);
        }
    }

    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        return -1;
    }
    if (connect(fd, (struct sockaddr *) &ss, len) == 0) {
        *done = 1;
    } else if (errno != EINPROGRESS && errno != EAGAIN) {
        close(fd);
        return -1;
    }
    return fd;
}

int
check_probe(const char *const *addrs, int n, int timeout_ms, int *up)
{
    struct pollfd   *pfd;
    struct timespec  t0, t1;
    socklen_t        len;
    int              i, done, err, pending, left, down;

    pfd = calloc(n > 0 ? n : 1, sizeof(*pfd));
    if (pfd == NULL) {
        return n;
    }

    pending = 0;
    for (i = 0; i < n; i++) {
        up[i] = 0;
        pfd[i].fd = probe_start(addrs[i], &done);
        pfd[i].events = POLLOUT;
        if (pfd[i].fd != -1 && done) {
            up[i] = 1;
            close(pfd[i].fd);
            pfd[i].fd = -1;
        }
        pending += pfd[i].fd != -1;
    }

    clock_gettime(CLOCK_MONOTONIC, &t0);
    left = timeout_ms;
    while (pending > 0 && left > 0) {
        if (poll(pfd, n, left) == -1 && errno != EINTR) {
            break;
        }
        for (i = 0; i < n; i++) {
            if (pfd[i].fd == -1 || pfd[i].revents == 0) {
                continue;
            }
            err = 0;
            len = sizeof(err);
            if (getsockopt(pfd[i].fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0
                && err == 0 && (pfd[i].revents & POLLOUT))
            {
                up[i] = 1;
            }
            close(pfd[i].fd);
            pfd[i].fd = -1;
            pending--;
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        left = timeout_ms - (int) ((t1.tv_sec - t0.tv_sec) * 1000
                                   + (t1.tv_nsec - t0.tv_nsec) / 1000000);
    }

    down = 0;
    for (i = 0; i < n; i++) {
        if (pfd[i].fd != -1) {
            close(pfd[i].fd);
        }
        down += !up[i];
    }
    free(pfd);
    return down;
}
