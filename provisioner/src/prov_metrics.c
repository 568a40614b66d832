#define _XOPEN_SOURCE 700

/*
 * The provisioner's metrics, as a file the edge serves (conf/nginx.conf:
 * /metrics/provisioner) rather than a listener of its own: nothing more
 * to secure, and the file outlives a provisioner restart. All from the
 * registry and this machine at the time of writing, so every value is a
 * gauge except the reconciler's counts (since the daemon started) and the
 * job durations (a histogram over the jobs the registry keeps; logs jobs,
 * dropped after ten minutes, are left out so it only grows).
 *
 * Per-tenant series are bounded: the 100 largest databases, the 100
 * soonest certificates, and disk use for the first 200 tenant directories.
 */

#include "prov_metrics.h"
#include "db.h"
#include "log.h"
#include "reconcile.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define METRICS_DISK_TENANTS  200

/* nftw() takes no context: the sum of the walk in progress */
static unsigned long long  walk_bytes;

static int
walk_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) path;
    (void) ftw;
    if (flag == FTW_F) {
        walk_bytes += (unsigned long long) st->st_blocks * 512;
    }
    return 0;
}

/* a label value: tenant ids and hosts are plain, but escape anyway */
static void
label(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"') {
            fputc('\\', f);
            fputc(*s, f);
        } else if (*s == '\n') {
            fputs("\\n", f);
        } else {
            fputc(*s, f);
        }
    }
}

static void
family(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* rows of (label value, number) as name{key="..."} number */
static int
rows(FILE *f, struct prov *p, const char *name, const char *key,
     const char *sql)
{
    PGresult *res;
    int       i;

    res = db_query(p->conn, name, sql, 0, NULL);
    if (res == NULL) {
        return -1;
    }
    for (i = 0; i < PQntuples(res); i++) {
        fprintf(f, "%s{%s=\"", name, key);
        label(f, PQgetvalue(res, i, 0));
        fprintf(f, "\"} %s\n", PQgetvalue(res, i, 1));
    }
    PQclear(res);
    return 0;
}

static int
write_jobs(FILE *f, struct prov *p)
{
    PGresult *res;
    int       i;

    family(f, "ngx_tenant_provisioner_jobs", "gauge",
           "Jobs in the registry, by kind and status.");
    res = db_query(p->conn, "count jobs",
                   "SELECT kind, status, count(*) FROM jobs"
                   " GROUP BY 1, 2 ORDER BY 1, 2", 0, NULL);
    if (res == NULL) {
        return -1;
    }
    for (i = 0; i < PQntuples(res); i++) {
        fprintf(f, "ngx_tenant_provisioner_jobs{kind=\"%s\",status=\"%s\"} "
                "%s\n", PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
                PQgetvalue(res, i, 2));
    }
    PQclear(res);

    family(f, "ngx_tenant_provisioner_job_duration_seconds", "histogram",
           "Time from a job's creation to its end, jobs done or failed.");
    res = db_query(p->conn, "job durations",
        "WITH d AS (SELECT kind, extract(epoch FROM finished_at - created_at)"
        "             AS s FROM jobs WHERE finished_at IS NOT NULL"
        "              AND kind <> 'logs')"
        " SELECT kind, count(*) FILTER (WHERE s <= 1),"
        "        count(*) FILTER (WHERE s <= 5), count(*) FILTER (WHERE s <= 15),"
        "        count(*) FILTER (WHERE s <= 60), count(*) FILTER (WHERE s <= 300),"
        "        count(*), coalesce(sum(s), 0)"
        "   FROM d GROUP BY kind ORDER BY kind", 0, NULL);
    if (res == NULL) {
        return -1;
    }
    for (i = 0; i < PQntuples(res); i++) {
        static const char *le[] = { "1", "5", "15", "60", "300", "+Inf" };
        int                b;

        for (b = 0; b < 6; b++) {
            fprintf(f, "ngx_tenant_provisioner_job_duration_seconds_bucket"
                    "{kind=\"%s\",le=\"%s\"} %s\n", PQgetvalue(res, i, 0),
                    le[b], PQgetvalue(res, i, 1 + b));
        }
        fprintf(f, "ngx_tenant_provisioner_job_duration_seconds_sum"
                "{kind=\"%s\"} %s\n"
                "ngx_tenant_provisioner_job_duration_seconds_count"
                "{kind=\"%s\"} %s\n", PQgetvalue(res, i, 0),
                PQgetvalue(res, i, 7), PQgetvalue(res, i, 0),
                PQgetvalue(res, i, 6));
    }
    PQclear(res);
    return 0;
}

static void
write_disk(FILE *f, struct prov *p)
{
    DIR            *d;
    struct dirent  *e;
    char            path[1024];
    int             n = 0;

    family(f, "ngx_tenant_disk_bytes", "gauge",
           "Disk used by a tenant's directory (home, logs) on this machine.");
    d = opendir(p->conf.state_dir);
    if (d == NULL) {
        log_warn("metrics: cannot list %s: %s", p->conf.state_dir,
                 strerror(errno));
        return;
    }
    while ((e = readdir(d)) != NULL && n < METRICS_DISK_TENANTS) {
        if (e->d_name[0] == '.'
            || (size_t) snprintf(path, sizeof(path), "%s/%s",
                                 p->conf.state_dir, e->d_name)
               >= sizeof(path))
        {
            continue;
        }
        walk_bytes = 0;
        if (nftw(path, walk_one, 16, FTW_PHYS) != 0) {
            continue;
        }
        fputs("ngx_tenant_disk_bytes{tenant=\"", f);
        label(f, e->d_name);
        fprintf(f, "\"} %llu\n", walk_bytes);
        n++;
    }
    closedir(d);
}

int
prov_metrics_write(struct prov *p, const struct check *c, int n)
{
    struct reconcile_counts  rc;
    char                     tmp[1100];
    FILE                    *f;
    int                      i, bad = 0;

    if (p->conf.metrics_file[0] == '\0') {
        return 0;
    }
    if ((size_t) snprintf(tmp, sizeof(tmp), "%s.tmp", p->conf.metrics_file)
        >= sizeof(tmp))
    {
        log_err("metrics_file: the path is too long");
        return -1;
    }
    f = fopen(tmp, "w");
    if (f == NULL) {
        log_err("metrics: cannot write %s: %s", tmp, strerror(errno));
        return -1;
    }

    family(f, "ngx_tenant_check_status", "gauge",
           "A health check's verdict: 0 ok, 1 warning, 2 critical.");
    for (i = 0; i < n; i++) {
        fprintf(f, "ngx_tenant_check_status{check=\"%s\"} %d\n", c[i].name,
                c[i].status);
    }
    family(f, "ngx_tenant_check_value", "gauge",
           "What a health check measured (its unit: README, Health checks).");
    for (i = 0; i < n; i++) {
        if (c[i].has_value) {
            fprintf(f, "ngx_tenant_check_value{check=\"%s\"} %.6g\n",
                    c[i].name, c[i].value);
        }
    }
    family(f, "ngx_tenant_provisioner_last_check_timestamp_seconds", "gauge",
           "When this file was written.");
    fprintf(f, "ngx_tenant_provisioner_last_check_timestamp_seconds %lld\n",
            (long long) time(NULL));

    reconcile_counts(&rc);
    family(f, "ngx_tenant_provisioner_reconcile_passes_total", "counter",
           "Reconciler passes since the daemon started.");
    fprintf(f, "ngx_tenant_provisioner_reconcile_passes_total %lu\n",
            rc.passes);
    family(f, "ngx_tenant_provisioner_reconcile_actions_total", "counter",
           "What the reconciler did since the daemon started.");
    fprintf(f, "ngx_tenant_provisioner_reconcile_actions_total"
            "{action=\"start\"} %lu\n"
            "ngx_tenant_provisioner_reconcile_actions_total"
            "{action=\"stop\"} %lu\n"
            "ngx_tenant_provisioner_reconcile_actions_total"
            "{action=\"remove\"} %lu\n"
            "ngx_tenant_provisioner_reconcile_actions_total"
            "{action=\"reroute\"} %lu\n", rc.started, rc.stopped, rc.removed,
            rc.moved);

    bad |= write_jobs(f, p);

    family(f, "ngx_tenant_tenants", "gauge", "Tenants by status.");
    bad |= rows(f, p, "ngx_tenant_tenants", "status",
                "SELECT status, count(*) FROM tenants GROUP BY 1 ORDER BY 1");

    family(f, "ngx_tenant_database_bytes", "gauge",
           "A tenant database's size (the 100 largest).");
    bad |= rows(f, p, "ngx_tenant_database_bytes", "database",
                "SELECT datname, pg_database_size(datname) FROM pg_database"
                " WHERE datname LIKE 'tenant\\_%' ORDER BY 2 DESC LIMIT 100");

    family(f, "ngx_tenant_certificate_expiry_timestamp_seconds", "gauge",
           "When a certificate expires (the 100 soonest).");
    bad |= rows(f, p, "ngx_tenant_certificate_expiry_timestamp_seconds",
                "host", "SELECT host, extract(epoch FROM not_after)::bigint"
                        " FROM certificates ORDER BY not_after LIMIT 100");

    write_disk(f, p);

    if (fclose(f) != 0) {
        log_err("metrics: writing %s: %s", tmp, strerror(errno));
        unlink(tmp);
        return -1;
    }
    if (chmod(tmp, 0644) != 0 || rename(tmp, p->conf.metrics_file) != 0) {
        log_err("metrics: cannot put %s in place: %s", p->conf.metrics_file,
                strerror(errno));
        unlink(tmp);
        return -1;
    }
    return bad ? -1 : 0;
}
