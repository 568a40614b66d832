#define _GNU_SOURCE

/*
 * Tenants are hostile to each other and to the platform: each tenant's
 * services run as a user of its own (uid = gid, from uid_min..uid_max,
 * recorded in tenant_uids), in a home only that user can enter:
 *
 *   <state_dir>/<tenant>/        root, 0755: the provisioner's slot
 *   <state_dir>/<tenant>/run/    root, 0700: pid files
 *   <state_dir>/<tenant>/logs/   root, 0700: service output
 *   <state_dir>/<tenant>/home/   the tenant's user, 0700: {{dir}}, the cwd
 *
 * What the provisioner keeps about a service stays out of the tenant's
 * reach (a forged pid file would have it signal someone else), and what it
 * writes into the home it writes with the tenant's rights.
 */

#include "tenant.h"
#include "db.h"
#include "fsutil.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_GROUPS  64

static int
load_uid(struct prov *p, struct tenant *t, char *err, size_t len)
{
    const char *params[1] = { t->id };
    PGresult   *res;

    res = db_query(p->conn, "read the tenant's user",
                   "SELECT uid FROM tenant_uids WHERE tenant_id = $1", 1,
                   params);
    if (res == NULL) {
        snprintf(err, len, "registry: cannot read the user of %s", t->id);
        return -1;
    }
    t->uid = PQntuples(res) == 1 ? (unsigned int) atol(PQgetvalue(res, 0, 0))
                                 : 0;
    PQclear(res);
    return 0;
}

static int
allocate_uid(struct prov *p, struct tenant *t, char *err, size_t len)
{
    char        lo[16], hi[16];
    const char *params[3] = { t->id, lo, hi };
    PGresult   *res;

    snprintf(lo, sizeof(lo), "%d", p->conf.uid_min);
    snprintf(hi, sizeof(hi), "%d", p->conf.uid_max);

    /*
     * The next uid above the highest, found by the index (a scan of the
     * range cost 8 ms a create at 100,000 ids); freed ids are reused once
     * the top is reached. One allocation at a time across provisioners (a transaction-level
     * advisory lock taken before the statement that looks, so it sees
     * what the last holder committed); the primary key stays the guard.
     */
    if (db_begin(p->conn) != 0) {
        snprintf(err, len, "registry: cannot begin");
        return -1;
    }
    res = db_query(p->conn, "lock user allocation",
                   "SELECT pg_advisory_xact_lock(7340017)", 0, NULL);
    if (res == NULL) {
        db_rollback(p->conn);
        snprintf(err, len, "registry: cannot lock user allocation");
        return -1;
    }
    PQclear(res);
    res = db_query(p->conn, "allocate the tenant's user",
                   "INSERT INTO tenant_uids (uid, tenant_id)"
                   " SELECT coalesce("
                   /* the next above the highest: one index probe */
                   "   (SELECT max(uid) + 1 FROM tenant_uids"
                   "     WHERE uid BETWEEN $2::int AND $3::int"
                   "    HAVING max(uid) < $3::int),"
                   "   CASE WHEN NOT EXISTS (SELECT 1 FROM tenant_uids"
                   "                          WHERE uid BETWEEN $2::int"
                   "                                        AND $3::int)"
                   "        THEN $2::int END,"
                   /* the top was reached: the lowest freed one */
                   "   (SELECT min(u.uid) + 1 FROM tenant_uids u"
                   "     WHERE u.uid >= $2::int AND u.uid < $3::int"
                   "       AND NOT EXISTS (SELECT 1 FROM tenant_uids v"
                   "                        WHERE v.uid = u.uid + 1))),"
                   "        $1"
                   " ON CONFLICT DO NOTHING RETURNING uid", 3, params);
    if (res == NULL) {
        db_rollback(p->conn);
        snprintf(err, len, "registry: cannot allocate a user for %s", t->id);
        return -1;
    }
    if (PQntuples(res) == 1) {
        t->uid = (unsigned int) atol(PQgetvalue(res, 0, 0));
    }
    PQclear(res);
    if (db_commit(p->conn) != 0) {
        t->uid = 0;
        snprintf(err, len, "registry: cannot commit the user of %s", t->id);
        return -1;
    }

    if (t->uid == 0) {
        snprintf(err, len, "no free user id left in %s-%s for %s", lo, hi,
                 t->id);
        return -1;
    }
    return 0;
}

/* a directory of root's, mode as given, never a link someone planted */
static int
root_dir(const char *dir, mode_t mode, char *err, size_t len)
{
    struct stat st;

    if (mkdir(dir, mode) != 0 && errno != EEXIST) {
        snprintf(err, len, "cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != 0) {
        snprintf(err, len, "%s is not a directory of root's", dir);
        return -1;
    }
    if (chmod(dir, mode) != 0) {
        snprintf(err, len, "cannot chmod %s: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

int
tenant_ensure_user(struct prov *p, struct tenant *t, char *err, size_t len)
{
    struct stat st;

    if (load_uid(p, t, err, len) != 0
        || (t->uid == 0 && allocate_uid(p, t, err, len) != 0))
    {
        return -1;
    }

    if (geteuid() != 0) {
        /* not root (a developer's run): services run as we do */
        if (mkdirs(t->dir, NULL, 0700) != 0) {
            snprintf(err, len, "cannot create %s: %s", t->dir,
                     strerror(errno));
            return -1;
        }
        return 0;
    }

    if (root_dir(t->slot, 0755, err, len) != 0) {
        return -1;
    }

    if (mkdir(t->dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, len, "cannot create %s: %s", t->dir, strerror(errno));
        return -1;
    }
    if (lstat(t->dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, len, "%s is not a directory", t->dir);
        return -1;
    }
    if (lchown(t->dir, t->uid, t->uid) != 0 || chmod(t->dir, 0700) != 0) {
        snprintf(err, len, "cannot give %s to uid %u: %s", t->dir, t->uid,
                 strerror(errno));
        return -1;
    }
    return 0;
}

/* root's own supplementary groups, given back by tenant_unbecome() */
static gid_t  saved_groups[MAX_GROUPS];
static int    nsaved = -1;

int
tenant_become(const struct tenant *t)
{
    if (t->uid == 0 || geteuid() != 0) {
        return 0;
    }

    nsaved = getgroups(MAX_GROUPS, saved_groups);
    if (nsaved < 0 || setgroups(0, NULL) != 0
        || setegid((gid_t) t->uid) != 0 || seteuid((uid_t) t->uid) != 0)
    {
        log_err("%s: cannot take the rights of uid %u: %s", t->id, t->uid,
                strerror(errno));
        tenant_unbecome(t);
        return -1;
    }
    return 0;
}

void
tenant_unbecome(const struct tenant *t)
{
    if (t->uid == 0 || nsaved < 0) {
        return;
    }
    if (seteuid(0) != 0 || setegid(0) != 0
        || setgroups((size_t) nsaved, saved_groups) != 0)
    {
        /* a daemon that cannot get its rights back must not go on */
        log_err("%s: cannot return to root: %s", t->id, strerror(errno));
        abort();
    }
    nsaved = -1;
}
