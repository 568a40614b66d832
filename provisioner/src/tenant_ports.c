#define _GNU_SOURCE

/*
 * A tenant's ports: one per service, claimed in the registry (so two
 * provisioners never hand out the same one) and free on this host.
 */

#include "tenant.h"
#include "db.h"
#include "log.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int
port_free_here(int port)
{
    struct sockaddr_in sin;
    int                fd, ok, one = 1;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return 0;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((unsigned short) port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok = bind(fd, (struct sockaddr *) &sin, sizeof(sin)) == 0;
    close(fd);
    return ok;
}

int
tenant_load_ports(struct prov *p, struct tenant *t, char *err, size_t len)
{
    const char *params[1] = { t->id };
    PGresult   *res;
    int         i;

    res = db_query(p->conn, "read tenant ports",
                   "SELECT service, port FROM tenant_ports"
                   " WHERE tenant_id = $1", 1, params);
    if (res == NULL) {
        snprintf(err, len, "registry: cannot read ports of %s", t->id);
        return -1;
    }
    json_object_clear(t->ports);
    for (i = 0; i < PQntuples(res); i++) {
        json_object_set_new(t->ports, PQgetvalue(res, i, 0),
                            json_integer(atoi(PQgetvalue(res, i, 1))));
    }
    PQclear(res);
    return 0;
}

/*
 * A port this tenant holds for a service that is down, but that something
 * else on the host now uses (an outgoing connection took it between two
 * attempts, say): give it back so the retry gets another, instead of
 * failing on the same port until the job runs out of attempts.
 */
static int
release_taken_ports(struct prov *p, struct tenant *t, char *err, size_t len)
{
    const char *name, *params[2];
    char        port[16];
    json_t     *v;
    void       *tmp;
    PGresult   *res;

    json_object_foreach_safe(t->ports, tmp, name, v) {
        if (port_free_here((int) json_integer_value(v))
            || p->driver->ops->status(p->driver, t->id, name) != 0)
        {
            continue;
        }
        snprintf(port, sizeof(port), "%lld", (long long) json_integer_value(v));
        log_warn("%s/%s: port %s is in use by something else on this host:"
                 " taking another", t->id, name, port);
        params[0] = port;
        params[1] = t->id;
        res = db_query(p->conn, "release a taken port",
                       "DELETE FROM tenant_ports"
                       " WHERE port = $1::int AND tenant_id = $2", 2, params);
        if (res == NULL) {
            snprintf(err, len, "registry: cannot release port %s of %s", port,
                     t->id);
            return -1;
        }
        PQclear(res);
        json_object_del(t->ports, name);
    }
    return 0;
}

/*
 * One port per service, from port_min..port_max. The registry's primary
 * key settles races between provisioners; a port something else on this
 * host already listens on is skipped. One page of candidates serves every
 * service of the tenant, and the ports are read again only after a claim
 * that lost a race: a create spends two round trips here, not seven.
 */
int
tenant_ensure_ports(struct prov *p, struct tenant *t, char *err, size_t len)
{
    json_t     *svcs, *v;
    const char *name, *params[3];
    char        lo[16], hi[16], from[16], cand[16];
    PGresult   *res = NULL, *ins;
    int         i = 0, got, after;

    if (tenant_load_ports(p, t, err, len) != 0
        || release_taken_ports(p, t, err, len) != 0)
    {
        return -1;
    }

    snprintf(lo, sizeof(lo), "%d", p->conf.port_min);
    snprintf(hi, sizeof(hi), "%d", p->conf.port_max);
    after = p->conf.port_min - 1;

    svcs = blueprint_services(t->bp);
    json_object_foreach(svcs, name, v) {
        for (got = json_object_get(t->ports, name) != NULL; !got; ) {

            /*
             * Walk the range upwards from the last candidate: ports in use
             * on the host or claimed by a racing provisioner are passed
             * over, and the walk ends at the top of the range.
             */
            if (res == NULL || i == PQntuples(res)) {
                PQclear(res);
                snprintf(from, sizeof(from), "%d", after);
                params[0] = from;
                params[1] = hi;
                res = db_query(p->conn, "find free ports",
                               "SELECT g FROM generate_series($1::int + 1,"
                               "                              $2::int) g"
                               " WHERE NOT EXISTS (SELECT 1 FROM tenant_ports"
                               "                    WHERE port = g)"
                               " ORDER BY g LIMIT 64", 2, params);
                i = 0;
                if (res == NULL) {
                    snprintf(err, len, "registry: cannot allocate ports");
                    return -1;
                }
                if (PQntuples(res) == 0) {
                    PQclear(res);
                    snprintf(err, len, "no free port left in %s-%s for %s/%s",
                             lo, hi, t->id, name);
                    return -1;
                }
            }

            after = atoi(PQgetvalue(res, i++, 0));
            if (!port_free_here(after)) {
                continue;
            }
            snprintf(cand, sizeof(cand), "%d", after);
            params[0] = cand;
            params[1] = t->id;
            params[2] = name;
            ins = db_query(p->conn, "claim port",
                           "INSERT INTO tenant_ports (port, tenant_id,"
                           " service) VALUES ($1::int, $2, $3)"
                           " ON CONFLICT DO NOTHING RETURNING port", 3,
                           params);
            if (ins == NULL) {
                PQclear(res);
                snprintf(err, len, "registry: cannot claim port %s", cand);
                return -1;
            }
            got = PQntuples(ins) == 1;
            PQclear(ins);

            if (got) {
                json_object_set_new(t->ports, name, json_integer(after));
                continue;
            }

            /* lost a race, or our own earlier claim for this service
             * exists: look again */
            if (tenant_load_ports(p, t, err, len) != 0) {
                PQclear(res);
                return -1;
            }
            got = json_object_get(t->ports, name) != NULL;
        }
    }
    PQclear(res);
    return 0;
}
