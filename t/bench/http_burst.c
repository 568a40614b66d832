
/*
 * auto/bench's burst of creates, as lean clients: N processes wait on one
 * pipe, then each POSTs /api/tenants?wait=60 for tenant PREFIX<i> and asks
 * PREFIX<i>.localhost until it answers 200.  Prints "<i> <ms>" per tenant
 * (ms from the gate opening; -1 if it never answered).  A Perl client per
 * tenant cost the two shared cores as much as PostgreSQL did.
 *
 *   http_burst PORT APIKEY N PREFIX BLUEPRINT
 */


#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>


static double
now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}


/* one request on a fresh connection; the status, or -1 */
static int
request(int port, const char *req)
{
    int                 fd, status = -1;
    char                head[64], rest[4096];
    ssize_t             n, got = 0;
    struct sockaddr_in  sin;

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *) &sin, sizeof(sin)) != 0) {
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    if (write(fd, req, strlen(req)) != (ssize_t) strlen(req)) {
        close(fd);
        return -1;
    }
    /* the status line, then the rest to the end (Connection: close) */
    while (got < (ssize_t) sizeof(head)
           && (n = read(fd, head + got, sizeof(head) - got)) > 0)
    {
        got += n;
    }
    while (read(fd, rest, sizeof(rest)) > 0) { /* void */ }
    close(fd);
    if (got >= 12 && strncmp(head, "HTTP/1.", 7) == 0) {
        status = atoi(head + 9);
    }
    return status;
}


int
main(int argc, char **argv)
{
    int      port, n, i, gate[2], rc;
    char     body[256], req[1024], get[256], c;
    double   t0;
    const char  *key, *prefix, *bp;
    struct timespec  ts = { 0, 5000000 };

    if (argc != 6) {
        fprintf(stderr, "usage: http_burst PORT APIKEY N PREFIX BLUEPRINT\n");
        return 2;
    }
    port = atoi(argv[1]);
    key = argv[2];
    n = atoi(argv[3]);
    prefix = argv[4];
    bp = argv[5];

    if (pipe(gate) != 0) {
        return 1;
    }

    for (i = 1; i <= n; i++) {
        if (fork() != 0) {
            continue;
        }
        close(gate[1]);
        snprintf(body, sizeof(body), "{\"name\":\"%s%d\",\"blueprint\":\"%s\"}",
                 prefix, i, bp);
        snprintf(req, sizeof(req),
                 "POST /api/tenants?wait=60 HTTP/1.1\r\nHost: localhost\r\n"
                 "Authorization: Bearer %s\r\n"
                 "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                 "Connection: close\r\n\r\n%s", key, strlen(body), body);
        snprintf(get, sizeof(get), "GET / HTTP/1.1\r\nHost: %s%d.localhost\r\n"
                 "Connection: close\r\n\r\n", prefix, i);

        if (read(gate[0], &c, 1) < 0) {
            _exit(1);
        }
        t0 = now_ms();

        rc = request(port, req);
        if (rc != 200 && rc != 202) {
            printf("%d -1\n", i);
            _exit(0);
        }
        while (request(port, get) != 200) {
            if (now_ms() - t0 > 60000) {
                printf("%d -1\n", i);
                _exit(0);
            }
            nanosleep(&ts, NULL);
        }
        printf("%d %.1f\n", i, now_ms() - t0);
        fflush(stdout);
        _exit(0);
    }

    close(gate[0]);
    usleep(300000);
    close(gate[1]);

    for (i = 0; i < n; i++) {
        wait(NULL);
    }
    return 0;
}
