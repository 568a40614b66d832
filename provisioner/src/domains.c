#define _GNU_SOURCE

/*
 * Custom-domain verification (migration 009): the provisioner looks up
 * each pending claim's TXT record with backoff (5 s, doubling, at most an
 * hour between looks), says what it found in the claim's last_check,
 * verifies the claim whose token it finds, and lets a claim expire after
 * domain_claim_ttl.
 */

#include "domains.h"
#include "db.h"
#include "dns.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DOMAINS_BATCH  "20"

static int
record(struct prov *p, const char *host, const char *tenant,
       const char *what)
{
    char        err[256];
    const char *params[3] = { host, tenant, what };

    return db_run(p->conn, "record a domain check",
                  "UPDATE domain_claims SET checks = checks + 1,"
                  "       last_check = $3, last_checked_at = now(),"
                  "       check_after = now() + make_interval(secs =>"
                  "           least(3600, 5 * power(2, least(checks, 10))))"
                  " WHERE host = $1 AND tenant_id = $2 AND status = 'pending'",
                  3, params, err, sizeof(err));
}

static int
check(struct prov *p, const char *host, const char *tenant,
      const char *token)
{
    char        name[300], err[256], values[DNS_TXT_MAX][256];
    char        what[600], how[320];
    const char *params[4];
    PGresult   *res;
    int         n, i, ok;
    size_t      used;

    snprintf(name, sizeof(name), "_ngx-tenant.%s", host);
    n = dns_txt(p->conf.dns_resolver, name, values, err, sizeof(err));

    if (n < 0) {
        log_warn("domain %s of %s: %s", host, tenant, err);
        return record(p, host, tenant, err);
    }

    for (i = 0; i < n; i++) {
        if (strcmp(values[i], token) == 0) {
            break;
        }
    }

    if (i == n) {
        if (n == 0) {
            snprintf(what, sizeof(what), "no TXT record at %s yet", name);
        } else {
            used = (size_t) snprintf(what, sizeof(what),
                                     "TXT %s holds other values:", name);
            for (i = 0; i < n && used < sizeof(what); i++) {
                used += (size_t) snprintf(what + used, sizeof(what) - used,
                                          " \"%.60s\"", values[i]);
            }
        }
        return record(p, host, tenant, what);
    }

    snprintf(how, sizeof(how), "TXT %s holds the token", name);
    params[0] = host;
    params[1] = tenant;
    params[2] = how;
    params[3] = "provisioner";
    res = db_query(p->conn, "verify a domain",
                   "SELECT domain_claim_verified($1, $2, $3, $4)", 4, params);
    if (res == NULL) {
        return -1;
    }
    ok = PQntuples(res) == 1 && !PQgetisnull(res, 0, 0);
    PQclear(res);

    if (ok) {
        log_info("domain %s verified for %s (%s)", host, tenant, how);
        return 1;
    }
    log_info("domain %s: %s proved it, but another tenant had already",
             host, tenant);
    return 0;
}

int
domains_verify(struct prov *p)
{
    char        ttl[32], err[256];
    const char *params[1] = { ttl };
    PGresult   *res;
    int         i, n, rc, verified = 0;

    snprintf(ttl, sizeof(ttl), "%d", p->conf.domain_claim_ttl);

    /* what waited too long: the owner never published the token */
    if (db_run(p->conn, "expire domain claims",
               "UPDATE domain_claims SET status = 'expired',"
               "       last_check = 'expired: the TXT record never held the"
               " token', last_checked_at = now()"
               " WHERE status = 'pending'"
               "   AND created_at < now() - make_interval(secs => $1::int)",
               1, params, err, sizeof(err)) != 0)
    {
        return -1;
    }

    res = db_query(p->conn, "read due domain claims",
                   "SELECT host, tenant_id, token FROM domain_claims"
                   " WHERE status = 'pending' AND check_after <= now()"
                   " ORDER BY check_after LIMIT " DOMAINS_BATCH, 0, NULL);
    if (res == NULL) {
        return -1;
    }

    n = PQntuples(res);
    for (i = 0; i < n; i++) {
        rc = check(p, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
                   PQgetvalue(res, i, 2));
        if (rc < 0) {
            PQclear(res);
            return -1;
        }
        verified += rc;
    }
    PQclear(res);
    return verified;
}
