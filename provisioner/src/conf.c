#define _POSIX_C_SOURCE 200809L

#include "conf.h"
#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum key_type { KEY_STR, KEY_INT, KEY_LONG, KEY_BOOL };

struct key {
    const char     *name;
    enum key_type   type;
    size_t          offset;
    size_t          size;
    long            min;
    long            max;
};

#define STR(f)             { #f, KEY_STR, offsetof(struct conf, f), \
                             sizeof(((struct conf *) 0)->f), 0, 0 }
#define INT(f, lo, hi)     { #f, KEY_INT, offsetof(struct conf, f), 0, lo, hi }
#define LONG(f, lo, hi)    { #f, KEY_LONG, offsetof(struct conf, f), 0, lo, hi }
#define BOOL(f)            { #f, KEY_BOOL, offsetof(struct conf, f), 0, 0, 1 }

static const struct key keys[] = {
    STR(db), STR(driver), STR(blueprints), STR(runtimes), STR(runtime_dir),
    STR(state_dir), STR(secret_key),
    STR(certificate_key), STR(dns_resolver),
    INT(domain_claim_ttl, 60, 31536000), BOOL(domain_verification),
    STR(acme_directory), STR(acme_ca_file), STR(acme_email),
    STR(acme_dns_hook), STR(acme_edges), INT(acme_orders_per_hour, 1, 100000),
    INT(acme_timeout, 5, 3600), INT(acme_dns_wait, 0, 3600),
    STR(id), STR(base_domain), STR(admin_email_domain), STR(docker_socket),
    STR(docker_network),
    INT(base_port, 1, 65535), INT(port_min, 1024, 65535),
    INT(port_max, 1024, 65535), INT(poll_interval, 1, 3600),
    INT(lease, 2, 3600), INT(reconcile_interval, 1, 3600),
    INT(health_timeout, 1, 3600), INT(workers, 1, 64),
    INT(uid_min, 1000, 2000000000), INT(uid_max, 1000, 2000000000),
    LONG(log_cap, 4096, 1L << 40), STR(cgroup_root), STR(cgroup_parent),
    BOOL(resource_limits),
    INT(check_interval, 5, 86400),
    INT(check_disk_warning, 1, 100), INT(check_disk_critical, 1, 100),
    INT(check_db_mb_warning, 1, 100000000),
    INT(check_db_mb_critical, 1, 100000000),
    INT(check_failed_jobs_warning, 1, 1000000),
    INT(check_failed_jobs_critical, 1, 1000000),
    INT(check_failed_hours, 1, 8760), INT(check_stuck_minutes, 1, 10080),
    INT(check_stuck_warning, 1, 1000000), INT(check_stuck_critical, 1, 1000000),
    INT(check_cert_days_warning, 0, 3650), INT(check_cert_days_critical, 0, 3650),
    INT(check_unreachable_warning, 1, 1000000),
    INT(check_unreachable_critical, 1, 1000000),
    STR(metrics_file),
    STR(backup_dir), INT(backup_interval, 0, 31536000),
    INT(backup_jitter, 0, 31536000), INT(backup_batch, 1, 100000),
    INT(backup_keep_daily, 0, 3650), INT(backup_keep_weekly, 0, 520),
    INT(backup_keep_deleted, 0, 31536000), INT(backup_pass_interval, 1, 86400), INT(jwks_pass_interval, 1, 3600), INT(check_backup_hours, 0, 87600),
    INT(check_backup_warning, 1, 1000000),
    INT(check_backup_critical, 1, 1000000),
    { NULL, KEY_STR, 0, 0, 0, 0 }
};

void
conf_defaults(struct conf *c)
{
    char host[64];

    memset(c, 0, sizeof(*c));
    c->domain_claim_ttl = 7 * 86400;
    c->domain_verification = 1;
    /* Let's Encrypt allows 300 new orders per account in 3 hours */
    c->acme_orders_per_hour = 50;
    c->acme_timeout = 90;
    c->acme_dns_wait = 120;
    snprintf(c->db, sizeof(c->db), "dbname=tenant");
    snprintf(c->driver, sizeof(c->driver), "process");
    snprintf(c->blueprints, sizeof(c->blueprints), "blueprints");
    snprintf(c->runtimes, sizeof(c->runtimes), "runtimes");
    snprintf(c->runtime_dir, sizeof(c->runtime_dir),
             "/var/cache/ngx-tenant/runtimes");
    snprintf(c->state_dir, sizeof(c->state_dir), "var/tenants");
    snprintf(c->base_domain, sizeof(c->base_domain), "localhost");
    snprintf(c->docker_socket, sizeof(c->docker_socket),
             "/var/run/docker.sock");
    snprintf(c->docker_network, sizeof(c->docker_network), "host");

    if (gethostname(host, sizeof(host)) != 0) {
        snprintf(host, sizeof(host), "localhost");
    }
    host[sizeof(host) - 1] = '\0';
    snprintf(c->id, sizeof(c->id), "%s-%ld", host, (long) getpid());

    c->base_port = 8080;
    c->port_min = 20000;
    c->port_max = 29999;
    c->poll_interval = 1;
    c->lease = 60;
    c->reconcile_interval = 5;
    c->health_timeout = 30;
    c->workers = 1;
    c->uid_min = 100000;
    c->uid_max = 199999;
    c->log_cap = 1024 * 1024;
    snprintf(c->cgroup_root, sizeof(c->cgroup_root), "/sys/fs/cgroup");
    snprintf(c->cgroup_parent, sizeof(c->cgroup_parent), "ngx-tenant");
    c->resource_limits = 1;
    c->check_interval = 60;
    c->check_disk_warning = 80;
    c->check_disk_critical = 90;
    c->check_db_mb_warning = 5 * 1024;
    c->check_db_mb_critical = 10 * 1024;
    /* a failed create is a customer without a store: worth a look at once */
    c->check_failed_jobs_warning = 1;
    c->check_failed_jobs_critical = 3;
    c->check_failed_hours = 24;
    c->check_stuck_minutes = 15;
    c->check_stuck_warning = 1;
    c->check_stuck_critical = 3;
    c->check_cert_days_warning = 14;
    c->check_cert_days_critical = 3;
    c->check_unreachable_warning = 1;
    c->check_unreachable_critical = 3;
    snprintf(c->backup_dir, sizeof(c->backup_dir), "var/backups");
    c->backup_interval = 0;
    c->backup_jitter = 3600;
    c->backup_batch = 50;
    c->backup_keep_daily = 7;
    c->backup_keep_weekly = 4;
    c->backup_keep_deleted = 30 * 86400;
    c->backup_pass_interval = 60;
    c->jwks_pass_interval = 10;
    c->check_backup_hours = 0;
    c->check_backup_warning = 1;
    c->check_backup_critical = 10;
}

static char *
trim(char *s)
{
    char *end;

    while (isspace((unsigned char) *s)) {
        s++;
    }
    end = s + strlen(s);
    while (end > s && isspace((unsigned char) end[-1])) {
        *--end = '\0';
    }
    return s;
}

static int
set_key(struct conf *c, const struct key *k, const char *val,
        const char *path, int line)
{
    char  *end;
    long   n;

    if (k->type == KEY_STR) {
        if (strlen(val) >= k->size) {
            log_err("%s:%d: value of \"%s\" is too long (max %zu)", path,
                    line, k->name, k->size - 1);
            return -1;
        }
        memcpy((char *) c + k->offset, val, strlen(val) + 1);
        return 0;
    }

    if (k->type == KEY_BOOL) {
        if (strcmp(val, "on") != 0 && strcmp(val, "off") != 0) {
            log_err("%s:%d: \"%s\" must be on or off", path, line, k->name);
            return -1;
        }
        *(int *) ((char *) c + k->offset) = strcmp(val, "on") == 0;
        return 0;
    }

    errno = 0;
    n = strtol(val, &end, 10);
    if (errno || end == val || *end != '\0' || n < k->min || n > k->max) {
        log_err("%s:%d: \"%s\" must be a number from %ld to %ld", path, line,
                k->name, k->min, k->max);
        return -1;
    }

    if (k->type == KEY_INT) {
        *(int *) ((char *) c + k->offset) = (int) n;
    } else {
        *(long *) ((char *) c + k->offset) = n;
    }
    return 0;
}

/* "key = value" lines; '#' starts a comment. Unknown keys are errors, so a
 * typo is reported instead of silently running with a default. */
int
conf_load(struct conf *c, const char *path)
{
    FILE              *f;
    char               buf[1024], *p, *eq, *key, *val;
    int                line = 0, rc = 0;
    const struct key  *k;

    f = fopen(path, "r");
    if (f == NULL) {
        log_err("cannot open config %s: %s", path, strerror(errno));
        return -1;
    }

    while (rc == 0 && fgets(buf, sizeof(buf), f) != NULL) {
        line++;
        p = strchr(buf, '#');
        if (p) {
            *p = '\0';
        }
        p = trim(buf);
        if (*p == '\0') {
            continue;
        }
        eq = strchr(p, '=');
        if (eq == NULL) {
            log_err("%s:%d: expected \"key = value\"", path, line);
            rc = -1;
            break;
        }
        *eq = '\0';
        key = trim(p);
        val = trim(eq + 1);

        for (k = keys; k->name; k++) {
            if (strcmp(k->name, key) == 0) {
                break;
            }
        }

        if (k->name == NULL) {
            log_err("%s:%d: unknown key \"%s\"", path, line, key);
            rc = -1;
            break;
        }

        rc = set_key(c, k, val, path, line);
    }

    fclose(f);

    if (rc == 0 && c->port_min > c->port_max) {
        log_err("%s: port_min is above port_max", path);
        rc = -1;
    }

    if (rc == 0 && c->acme_directory[0] != '\0'
        && strncmp(c->acme_directory, "https://", 8) != 0)
    {
        log_err("%s: acme_directory must be an https:// URL", path);
        rc = -1;
    }

    if (rc == 0
        && (c->cgroup_parent[0] == '\0' || c->cgroup_parent[0] == '.'
            || strspn(c->cgroup_parent, "abcdefghijklmnopqrstuvwxyz"
                      "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
               != strlen(c->cgroup_parent)))
    {
        log_err("%s: cgroup_parent must be one name of letters, digits, "
                "'.', '_' and '-'", path);
        rc = -1;
    }

    /* it ends up in admins' addresses, and from there in config lines */
    if (rc == 0
        && (c->admin_email_domain[0] == '.'
            || strspn(c->admin_email_domain, "abcdefghijklmnopqrstuvwxyz"
                      "0123456789.-") != strlen(c->admin_email_domain)))
    {
        log_err("%s: admin_email_domain must be a domain name of lower-case "
                "letters, digits, '.' and '-' (e.g. example.com)", path);
        rc = -1;
    }

    /* a CA issues no wildcard of a single-label name such as *.localhost */
    if (rc == 0 && c->acme_dns_hook[0] != '\0'
        && strchr(c->base_domain, '.') == NULL)
    {
        log_err("%s: acme_dns_hook orders *.%s, which no CA issues: set a "
                "base_domain of two labels or more, or unset acme_dns_hook",
                path, c->base_domain);
        rc = -1;
    }

    return rc;
}

/*
 * Tenant ports inside the kernel's ephemeral range can be held at any
 * moment by an outgoing connection (nginx to a backend, the registry
 * client), and a service that cannot bind fails its create: say so once.
 */
void
conf_check_ports(const struct conf *c)
{
    const char *path = "/proc/sys/net/ipv4/ip_local_port_range";
    FILE       *f;
    int         lo, hi, n;

    f = fopen(path, "r");
    if (f == NULL) {
        return;    /* not Linux, or no procfs: nothing to compare with */
    }
    n = fscanf(f, "%d %d", &lo, &hi);
    fclose(f);
    if (n != 2) {
        log_warn("%s: cannot read the ephemeral port range", path);
        return;
    }

    if (c->port_min <= hi && c->port_max >= lo) {
        log_warn("port_min..port_max (%d-%d) overlaps the kernel's ephemeral"
                 " ports (%d-%d, %s): tenant services may fail to bind;"
                 " choose a range below %d", c->port_min, c->port_max, lo,
                 hi, path, lo);
    }
}
