#define _POSIX_C_SOURCE 200809L

/*
 * The operator's health checks: the disk under the tenants' state, the
 * largest tenant database, failed and stuck jobs, the soonest certificate
 * expiry, and active tenants' endpoints that do not accept a connection.
 * Each is held to a warning and a critical threshold from the config.
 * `provisioner check` prints them; the daemon runs them every
 * check_interval and stores them in health_checks for GET /api/health?deep.
 */

#include "check.h"
#include "check_probe.h"
#include "db.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>



const char *
check_status_name(int status)
{
    return status == CHECK_CRITICAL ? "critical"
           : status == CHECK_WARNING ? "warning" : "ok";
}

/* higher is worse, or with lower_worse, lower is */
static void
judge(struct check *c, double value, double warning, double critical,
      int lower_worse)
{
    c->has_value = 1;
    c->value = value;
    c->warning = warning;
    c->critical = critical;
    if (lower_worse) {
        c->status = value <= critical ? CHECK_CRITICAL
                    : value <= warning ? CHECK_WARNING : CHECK_OK;
    } else {
        c->status = value >= critical ? CHECK_CRITICAL
                    : value >= warning ? CHECK_WARNING : CHECK_OK;
    }
}

/* a check that could not be made is critical: nobody knows it is fine */
static void
unknown(struct check *c, const char *why)
{
    c->status = CHECK_CRITICAL;
    c->has_value = 0;
    snprintf(c->detail, sizeof(c->detail), "cannot check: %s", why);
}

static void
check_disk(struct prov *p, struct check *c)
{
    struct statvfs  st;
    double          used, total, pct;

    c->name = "disk";
    if (statvfs(p->conf.state_dir, &st) != 0 || st.f_blocks == 0) {
        unknown(c, "statvfs on state_dir failed");
        return;
    }
    /* as df: what non-root users may still use counts as free */
    used = (double) (st.f_blocks - st.f_bfree) * st.f_frsize;
    total = used + (double) st.f_bavail * st.f_frsize;
    pct = total > 0 ? 100.0 * used / total : 100.0;
    judge(c, pct, p->conf.check_disk_warning, p->conf.check_disk_critical, 0);
    snprintf(c->detail, sizeof(c->detail), "%.160s: %.0f%% used, %.1f MB free",
             p->conf.state_dir, pct,
             (double) st.f_bavail * st.f_frsize / 1048576.0);
}

static void
check_database(struct prov *p, struct check *c)
{
    PGresult *res;
    double    mb;

    c->name = "database_size";
    res = db_query(p->conn, "read tenant database sizes",
                   "SELECT datname, pg_database_size(datname)"
                   "  FROM pg_database WHERE datname LIKE 'tenant\\_%'"
                   " ORDER BY 2 DESC LIMIT 1", 0, NULL);
    if (res == NULL) {
        unknown(c, "the registry refused pg_database_size (the "
                   "provisioner's role needs pg_read_all_stats)");
        return;
    }
    if (PQntuples(res) == 0) {
        judge(c, 0, p->conf.check_db_mb_warning, p->conf.check_db_mb_critical,
              0);
        snprintf(c->detail, sizeof(c->detail), "no tenant databases");
    } else {
        mb = atof(PQgetvalue(res, 0, 1)) / 1048576.0;
        judge(c, mb, p->conf.check_db_mb_warning,
              p->conf.check_db_mb_critical, 0);
        snprintf(c->detail, sizeof(c->detail), "largest: %s, %.1f MB",
                 PQgetvalue(res, 0, 0), mb);
    }
    PQclear(res);
}

/*
 * A count of jobs over a window of n hours or minutes ($1), held to its
 * thresholds: the result (column 0 the count, 1 what to name) for the
 * detail, or NULL once the check is said unknown.
 */
static PGresult *
job_count(struct prov *p, struct check *c, const char *what,
          const char *sql, int n, double warning, double critical)
{
    PGresult   *res;
    char        num[16];
    const char *params[1] = { num };

    snprintf(num, sizeof(num), "%d", n);
    res = db_query(p->conn, what, sql, 1, params);
    if (res == NULL) {
        unknown(c, "the registry did not answer");
        return NULL;
    }
    judge(c, atof(PQgetvalue(res, 0, 0)), warning, critical, 0);
    return res;
}

static void
check_failed(struct prov *p, struct check *c)
{
    PGresult *res;

    c->name = "failed_jobs";
    res = job_count(p, c, "count failed jobs",
                    "SELECT count(*), (array_agg(kind || ' ' ||"
                    "        coalesce(tenant_id, '-') || ': ' ||"
                    "        left(coalesce(error, ''), 120)"
                    "        ORDER BY finished_at DESC))[1]"
                    "  FROM jobs WHERE status = 'failed' AND kind <> 'logs'"
                    "   AND finished_at > now() - $1::int * interval '1 hour'",
                    p->conf.check_failed_hours,
                    p->conf.check_failed_jobs_warning,
                    p->conf.check_failed_jobs_critical);
    if (res == NULL) {
        return;
    }
    snprintf(c->detail, sizeof(c->detail), "%s failed in %d h%s%s",
             PQgetvalue(res, 0, 0), p->conf.check_failed_hours,
             PQgetisnull(res, 0, 1) ? "" : "; last: ",
             PQgetisnull(res, 0, 1) ? "" : PQgetvalue(res, 0, 1));
    PQclear(res);
}

static void
check_stuck(struct prov *p, struct check *c)
{
    PGresult *res;

    c->name = "stuck_jobs";
    /* running past its lease, or due and not claimed */
    res = job_count(p, c, "count stuck jobs",
                    "SELECT count(*), min(id) FROM jobs"
                    " WHERE (status = 'running' AND coalesce(lease_until,"
                    "        updated_at) < now() - $1::int * interval '1 minute')"
                    "    OR (status = 'queued'"
                    "        AND run_after < now() - $1::int * interval '1 minute')",
                    p->conf.check_stuck_minutes, p->conf.check_stuck_warning,
                    p->conf.check_stuck_critical);
    if (res == NULL) {
        return;
    }
    snprintf(c->detail, sizeof(c->detail),
             "%s jobs not moving for %d minutes%s%s",
             PQgetvalue(res, 0, 0), p->conf.check_stuck_minutes,
             PQgetisnull(res, 0, 1) ? "" : "; oldest: job ",
             PQgetisnull(res, 0, 1) ? "" : PQgetvalue(res, 0, 1));
    PQclear(res);
}

static void
check_certs(struct prov *p, struct check *c)
{
    PGresult *res;

    c->name = "certificates";
    res = db_query(p->conn, "read certificate expiry",
                   "SELECT extract(epoch FROM not_after - now()) / 86400, host"
                   "  FROM certificates ORDER BY not_after LIMIT 1", 0, NULL);
    if (res == NULL) {
        unknown(c, "the registry did not answer");
        return;
    }
    if (PQntuples(res) == 0) {
        c->status = CHECK_OK;
        c->warning = p->conf.check_cert_days_warning;
        c->critical = p->conf.check_cert_days_critical;
        snprintf(c->detail, sizeof(c->detail), "no certificates");
    } else {
        judge(c, atof(PQgetvalue(res, 0, 0)), p->conf.check_cert_days_warning,
              p->conf.check_cert_days_critical, 1);
        snprintf(c->detail, sizeof(c->detail), "soonest: %s in %.1f days",
                 PQgetvalue(res, 0, 1), c->value);
    }
    PQclear(res);
}

static void
check_services(struct prov *p, struct check *c)
{
    PGresult    *res;
    const char **addrs;
    int         *up, n, i, down;
    size_t       len;

    c->name = "tenant_services";
    res = db_query(p->conn, "read active tenants' endpoints",
                   "SELECT e.tenant_id || '/' || e.role, e.address"
                   "  FROM tenant_endpoints e JOIN tenants t"
                   "    ON t.id = e.tenant_id"
                   " WHERE t.status = 'active'"
                   " ORDER BY e.tenant_id, e.role LIMIT 1000", 0, NULL);  /* bounded: one pass, one timeout */
    if (res == NULL) {
        unknown(c, "the registry did not answer");
        return;
    }
    n = PQntuples(res);
    addrs = calloc(n > 0 ? n : 1, sizeof(*addrs));
    up = calloc(n > 0 ? n : 1, sizeof(*up));
    if (addrs == NULL || up == NULL) {
        free(addrs);
        free(up);
        PQclear(res);
        unknown(c, "out of memory");
        return;
    }
    for (i = 0; i < n; i++) {
        addrs[i] = PQgetvalue(res, i, 1);
    }
    down = check_probe(addrs, n, 1000, up);
    judge(c, down, p->conf.check_unreachable_warning,
          p->conf.check_unreachable_critical, 0);
    snprintf(c->detail, sizeof(c->detail), "%d of %d endpoints refuse "
             "connections%s", down, n, down ? ":" : "");
    for (i = 0; i < n && down; i++) {
        len = strlen(c->detail);
        if (!up[i] && len + strlen(PQgetvalue(res, i, 0)) + 6
                      < sizeof(c->detail))
        {
            snprintf(c->detail + len, sizeof(c->detail) - len, " %s",
                     PQgetvalue(res, i, 0));
        }
    }
    free(addrs);
    free(up);
    PQclear(res);
}

/* active tenants without a verified backup check_backup_hours recent */
static void
check_backups(struct prov *p, struct check *c)
{
    PGresult *res;

    c->name = "backups";
    res = job_count(p, c, "count tenants without a backup",
                    "SELECT count(*), min(t.id) FROM tenants t"
                    " WHERE t.managed AND t.status = 'active'"
                    "   AND t.id NOT LIKE 'rt-%'"
                    "   AND NOT EXISTS (SELECT 1 FROM tenant_backups b"
                    "        WHERE b.tenant_id = t.id"
                    "          AND b.tenant_gone_at IS NULL"
                    "          AND b.verify_status = 'ok'"
                    "          AND b.created_at > now()"
                    "              - $1::int * interval '1 hour')",
                    p->conf.check_backup_hours, p->conf.check_backup_warning,
                    p->conf.check_backup_critical);
    if (res == NULL) {
        return;
    }
    snprintf(c->detail, sizeof(c->detail),
             "%s active tenants without a verified backup in %d h%s%s",
             PQgetvalue(res, 0, 0), p->conf.check_backup_hours,
             PQgetisnull(res, 0, 1) ? "" : "; first: ",
             PQgetisnull(res, 0, 1) ? "" : PQgetvalue(res, 0, 1));
    PQclear(res);
}

int
checks_run(struct prov *p, struct check *out, int *n)
{
    int i, rc = 0;

    memset(out, 0, CHECKS_MAX * sizeof(*out));
    check_disk(p, &out[0]);
    check_database(p, &out[1]);
    check_failed(p, &out[2]);
    check_stuck(p, &out[3]);
    check_certs(p, &out[4]);
    check_services(p, &out[5]);
    *n = 6;
    if (p->conf.check_backup_hours > 0) {
        check_backups(p, &out[(*n)++]);
    }
    for (i = 1; i < *n; i++) {
        if (!out[i].has_value && strncmp(out[i].detail, "cannot", 6) == 0) {
            rc = -1;
        }
    }
    return rc;
}

int
checks_store(struct prov *p, const struct check *c, int n)
{
    char         value[32], warning[32], critical[32], err[256];
    const char  *params[7];
    int          i;

    if (db_begin(p->conn) != 0) {
        return -1;
    }
    params[0] = p->conf.id;
    if (db_run(p->conn, "clear this provisioner's checks",
               "DELETE FROM health_checks WHERE provisioner = $1", 1, params,
               err, sizeof(err)) != 0)
    {
        log_err("%s", err);
        db_rollback(p->conn);
        return -1;
    }
    for (i = 0; i < n; i++) {
        snprintf(value, sizeof(value), "%.6g", c[i].value);
        snprintf(warning, sizeof(warning), "%.6g", c[i].warning);
        snprintf(critical, sizeof(critical), "%.6g", c[i].critical);
        params[1] = c[i].name;
        params[2] = check_status_name(c[i].status);
        params[3] = c[i].has_value ? value : NULL;
        params[4] = warning;
        params[5] = critical;
        params[6] = c[i].detail;
        if (db_run(p->conn, "store a health check",
                   "INSERT INTO health_checks (provisioner, name, status,"
                   " value, warning, critical, detail)"
                   " VALUES ($1, $2, $3, $4, $5, $6, $7)", 7, params, err,
                   sizeof(err)) != 0)
        {
            log_err("%s", err);
            db_rollback(p->conn);
            return -1;
        }
    }
    return db_commit(p->conn);
}
