#define _GNU_SOURCE

/*
 * Backups of a tenant (its database as a pg_dump custom-format file and
 * its home as a tar file), their verification in a scratch database, and
 * restores. A backup's files are staged and handed to the store whole;
 * its row is written by the final transaction of the job that made it, so
 * a backup killed half-way never exists. Every tool that reads what a
 * tenant wrote runs with the tenant's rights (its role, its uid), never
 * the provisioner's.
 */

#include "task.h"
#include "backup_digest.h"
#include "backup_store.h"
#include "db.h"
#include "fsutil.h"
#include "log.h"
#include "pgtool.h"
#include "tenant.h"
#include "toolrun.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TAR           "/bin/tar"
#define TAR_TIMEOUT   3600
#define NOBODY        65534
/* seconds a job's lease is extended to before a dump or a restore */
#define BACKUP_LEASE  3600

struct backup_row {
    long long   id;
    char        tenant[64];
    char        blueprint[65];
    char        location[1001];
    char        db_sha[65];
    char        files_sha[65];
    long long   db_bytes;
    long long   files_bytes;
    json_t     *tables;
};

static char *tar_env[] = { "PATH=/usr/bin:/bin", "LC_ALL=C", NULL };

/* --- the tenant's data lock ---------------------------------------------- */

/*
 * One data job (backup, restore, migrate) per tenant at a time: a
 * session lock, so a provisioner that dies lets go of it. 0 held,
 * PROV_NONE another job holds it, -1 error.
 */
static int
data_lock(struct prov *p, const char *tenant, int take)
{
    const char  *params[1] = { tenant };
    PGresult    *res;
    int          rc;

    res = db_query(p->conn, take ? "lock the tenant's data"
                                 : "unlock the tenant's data",
                   take ? "SELECT pg_try_advisory_lock(7340021, hashtext($1))"
                        : "SELECT pg_advisory_unlock(7340021, hashtext($1))",
                   1, params);
    if (res == NULL) {
        return -1;
    }
    rc = (PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't')
         ? 0 : PROV_NONE;
    PQclear(res);
    return rc;
}

/* --- tar, as the tenant ---------------------------------------------------- */

static int
tar_run(char **argv, unsigned int uid, int in, int out, struct prov *p,
        char *err, size_t len)
{
    struct toolrun r;

    memset(&r, 0, sizeof(r));
    r.argv = argv;
    r.envp = tar_env;
    r.uid = uid;
    r.in = in;
    r.out = out;
    r.timeout = TAR_TIMEOUT;
    r.stop = p->stop;
    return toolrun(&r, err, len);
}

/* the tenant's home as a tar file, read with its rights */
static int
files_dump(struct prov *p, struct tenant *t, const char *file, char *err,
           size_t len)
{
    char  *argv[] = { TAR, "--create", "--file=-", "--numeric-owner",
                      "--directory", t->dir, ".", NULL };
    int    fd, rc;

    fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, len, "cannot create %.300s: %s", file, strerror(errno));
        return -1;
    }
    rc = tar_run(argv, t->uid, -1, fd, p, err, len);
    if (close(fd) != 0 && rc == 0) {
        snprintf(err, len, "cannot write %.300s: %s", file, strerror(errno));
        rc = -1;
    }
    return rc;
}

/* a tar file unpacked into dir (made here, the tenant's) as the tenant */
static int
files_load(struct prov *p, struct tenant *t, const char *file,
           const char *dir, char *err, size_t len)
{
    char  *argv[] = { TAR, "--extract", "--file=-", "--no-same-owner",
                      "--directory", (char *) dir, NULL };
    int    fd, rc;

    if (rmtree(dir) != 0 || mkdir(dir, 0700) != 0
        || (t->uid != 0 && chown(dir, t->uid, t->uid) != 0))
    {
        snprintf(err, len, "cannot make %s: %s", dir, strerror(errno));
        return -1;
    }
    fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, len, "cannot read %s: %s", file, strerror(errno));
        return -1;
    }
    rc = tar_run(argv, t->uid, fd, -1, p, err, len);
    close(fd);
    return rc;
}

/* --- making a backup -------------------------------------------------------- */

/*
 * The database in one snapshot: exported by a transaction that stays open
 * while pg_dump reads it and the tables are counted, so the counts are of
 * exactly the rows dumped.
 */
static int
db_dump(struct prov *p, struct tenant *t, const char *file, json_t **tables,
        char *err, size_t len)
{
    PGconn    *conn;
    PGresult  *res;
    char       snap[128];
    int        rc = -1;

    *tables = NULL;
    conn = db_connect_db(p->conf.db, t->db_name);
    if (conn == NULL) {
        snprintf(err, len, "database %s: cannot connect (see the "
                 "provisioner log)", t->db_name);
        return -1;
    }
    if (db_exec(conn, "open the snapshot",
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") != 0
        || backup_session(conn, t->db_name, err, len) != 0)
    {
        goto done;
    }
    res = db_query(conn, "export the snapshot",
                   "SELECT pg_export_snapshot()", 0, NULL);
    if (res == NULL || PQntuples(res) != 1) {
        PQclear(res);
        snprintf(err, len, "database %s: cannot export a snapshot",
                 t->db_name);
        goto done;
    }
    snprintf(snap, sizeof(snap), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);

    if (pgtool_dump(p, t->db_name, t->db_name, snap, file, err, len) == 0
        && backup_tables(conn, tables, err, len) == 0)
    {
        rc = 0;
    }

done:
    PQfinish(conn);
    return rc;
}

/*
 * The backup's files staged and stored under key, its manifest in *out;
 * the row is the caller's to write.
 */
static int
backup_make(struct prov *p, struct job *j, struct tenant *t, json_t **out,
            char *err, size_t len)
{
    struct backup_store  store;
    char                 key[128], stage[1200], file[1300], db_sha[65],
                         files_sha[65];
    long long            db_bytes = 0, files_bytes = 0;
    json_t              *tables = NULL;
    struct stat          st;

    *out = NULL;
    backup_store_init(&store, &p->conf);
    snprintf(key, sizeof(key), "%s/%lld", t->id, j->id);
    db_sha[0] = files_sha[0] = '\0';

    if (store.ops->stage(&store, key, stage, sizeof(stage), err, len) != 0) {
        return -1;
    }

    if (blueprint_database(t->bp)) {
        snprintf(file, sizeof(file), "%s/db.dump", stage);
        if (db_dump(p, t, file, &tables, err, len) != 0
            || backup_file_sha256(file, db_sha, &db_bytes, err, len) != 0)
        {
            json_decref(tables);
            return -1;
        }
    }

    if (lstat(t->dir, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(file, sizeof(file), "%s/files.tar", stage);
        if (files_dump(p, t, file, err, len) != 0
            || backup_file_sha256(file, files_sha, &files_bytes, err, len)
               != 0)
        {
            json_decref(tables);
            return -1;
        }
    }

    failpoint(j->kind, "staged");

    if (store.ops->commit(&store, key, stage, err, len) != 0) {
        json_decref(tables);
        return -1;
    }

    *out = json_pack("{s:s, s:s?, s:I, s:s?, s:I, s:o}", "location", key,
                     "db_sha256", db_sha[0] ? db_sha : NULL,
                     "db_bytes", (json_int_t) db_bytes,
                     "files_sha256", files_sha[0] ? files_sha : NULL,
                     "files_bytes", (json_int_t) files_bytes,
                     "tables", tables ? tables : json_object());
    if (*out == NULL) {
        snprintf(err, len, "out of memory");
        return -1;
    }
    return 0;
}

/* the backup's row, id the job's, in whatever transaction is open */
static int
backup_record(struct prov *p, struct job *j, struct tenant *t,
              const char *reason, json_t *m, char *err)
{
    const char  *params[12];
    char         dbb[24], fb[24], *tables;
    int          rc;

    tables = json_dumps(json_object_get(m, "tables"), JSON_COMPACT);
    if (tables == NULL) {
        snprintf(err, ERRLEN, "out of memory");
        return -1;
    }
    snprintf(dbb, sizeof(dbb), "%lld",
             (long long) json_integer_value(json_object_get(m, "db_bytes")));
    snprintf(fb, sizeof(fb), "%lld",
             (long long) json_integer_value(json_object_get(m,
                                                            "files_bytes")));
    params[0] = j->idstr;
    params[1] = t->id;
    params[2] = reason;
    params[3] = json_string_value(json_object_get(m, "location"));
    params[4] = dbb;
    params[5] = json_string_value(json_object_get(m, "db_sha256"));
    params[6] = fb;
    params[7] = json_string_value(json_object_get(m, "files_sha256"));
    params[8] = tables;

    rc = db_run(p->conn, "record the backup",
                "INSERT INTO tenant_backups (id, tenant_id, blueprint,"
                " blueprint_version, theme, mode, display_name, reason,"
                " location, db_bytes, db_sha256, files_bytes, files_sha256,"
                " tables, started_at)"
                " SELECT $1::bigint, t.id, t.blueprint,"
                "        coalesce(md5(b.definition::text), ''), t.theme,"
                "        t.mode, t.display_name, $3, $4, $5::bigint, $6,"
                "        $7::bigint, $8, $9::jsonb,"
                "        (SELECT coalesce(j.updated_at, now()) FROM jobs j"
                "          WHERE j.id = $1::bigint)"
                "   FROM tenants t LEFT JOIN blueprints b"
                "     ON b.name = t.blueprint WHERE t.id = $2",
                9, params, err, ERRLEN);
    free(tables);
    return rc;
}

static enum outcome
backup_locked(struct prov *p, struct job *j, struct tenant *t, char *err)
{
    json_t      *m = NULL, *result;
    const char  *reason, *params[1];
    int          verify;

    reason = json_string_value(json_object_get(j->payload, "reason"));
    if (reason == NULL || strcmp(reason, "migration") == 0) {
        reason = "manual";
    }
    verify = !json_is_false(json_object_get(j->payload, "verify"));

    STEP("user", tenant_ensure_user(p, t, err, ERRLEN));
    /* a step renews the lease to the default: the long ones extend it
     * first (a crashed claimer's job is retaken at once all the same) */
    if (task_extend(p, j, BACKUP_LEASE, err) != 0) {
        return LOST;
    }
    STEP("dump", backup_make(p, j, t, &m, err, ERRLEN));

    failpoint(j->kind, "finish");

    params[0] = j->idstr;
    if (job_begin(p) != 0
        || backup_record(p, j, t, reason, m, err) != 0
        || (verify
            && db_run(p->conn, "queue its verification",
                      "INSERT INTO jobs (tenant_id, kind, payload)"
                      " SELECT tenant_id, 'verify',"
                      "        jsonb_build_object('backup', id)"
                      "   FROM tenant_backups WHERE id = $1::bigint", 1,
                      params, err, ERRLEN) != 0))
    {
        json_decref(m);
        db_rollback(p->conn);
        return FAILED;
    }
    result = json_pack("{s:I, s:O, s:O, s:O, s:b}", "backup",
                       (json_int_t) j->id,
                       "location", json_object_get(m, "location"),
                       "db_bytes", json_object_get(m, "db_bytes"),
                       "files_bytes", json_object_get(m, "files_bytes"),
                       "verify", verify);
    json_decref(m);
    return task_finish(p, j, result, err);
}

enum outcome
backup_locked_run(struct prov *p, struct job *j, struct tenant *t, char *err,
                  enum outcome (*run)(struct prov *, struct job *,
                                      struct tenant *, char *))
{
    enum outcome  o;

    switch (data_lock(p, t->id, 1)) {
    case 0:
        break;
    case PROV_NONE:
        log_info("job %lld: another data job of %s is running", j->id,
                 t->id);
        job_defer(p, j, 2);
        return DEFERRED;
    default:
        snprintf(err, ERRLEN, "registry: cannot lock %s's data", t->id);
        return FAILED;
    }
    o = run(p, j, t, err);
    if (PQtransactionStatus(p->conn) != PQTRANS_IDLE) {
        db_rollback(p->conn);
    }
    if (data_lock(p, t->id, 0) < 0) {
        log_warn("%s: cannot unlock its data", t->id);
    }
    return o;
}

enum outcome
backup_do_backup(struct prov *p, struct job *j, struct tenant *t, char *err)
{
    if (strcmp(t->status, "active") != 0
        && strcmp(t->status, "suspended") != 0)
    {
        if (job_begin(p) != 0) {
            return FAILED;
        }
        return task_finish(p, j, task_skipped("the tenant is not active or "
                                              "suspended"), err);
    }
    return backup_locked_run(p, j, t, err, backup_locked);
}

/* --- reading a backup ---------------------------------------------------- */

static void
row_free(struct backup_row *b)
{
    json_decref(b->tables);
    b->tables = NULL;
}

/* 0, PROV_NONE no such backup, -1 error */
static int
row_load(struct prov *p, long long id, struct backup_row *b, char *err)
{
    const char  *params[1];
    char         num[24];
    PGresult    *res;

    memset(b, 0, sizeof(*b));
    snprintf(num, sizeof(num), "%lld", id);
    params[0] = num;
    res = db_query(p->conn, "read a backup",
                   "SELECT tenant_id, blueprint, location,"
                   "       coalesce(db_sha256, ''), coalesce(files_sha256, ''),"
                   "       db_bytes, files_bytes, tables"
                   "  FROM tenant_backups WHERE id = $1::bigint", 1, params);
    if (res == NULL) {
        snprintf(err, ERRLEN, "registry: cannot read backup %lld", id);
        return -1;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        snprintf(err, ERRLEN, "no backup %lld", id);
        return PROV_NONE;
    }
    b->id = id;
    snprintf(b->tenant, sizeof(b->tenant), "%s", PQgetvalue(res, 0, 0));
    snprintf(b->blueprint, sizeof(b->blueprint), "%s", PQgetvalue(res, 0, 1));
    snprintf(b->location, sizeof(b->location), "%s", PQgetvalue(res, 0, 2));
    snprintf(b->db_sha, sizeof(b->db_sha), "%s", PQgetvalue(res, 0, 3));
    snprintf(b->files_sha, sizeof(b->files_sha), "%s", PQgetvalue(res, 0, 4));
    b->db_bytes = strtoll(PQgetvalue(res, 0, 5), NULL, 10);
    b->files_bytes = strtoll(PQgetvalue(res, 0, 6), NULL, 10);
    b->tables = json_loads(PQgetvalue(res, 0, 7), 0, NULL);
    PQclear(res);
    return b->tables ? 0 : -1;
}

static long long
payload_backup(struct job *j)
{
    json_t *v = json_object_get(j->payload, "backup");

    return json_is_integer(v) ? (long long) json_integer_value(v) : -1;
}

/*
 * A file of the backup, checked against its manifest: 0 it matches,
 * PROV_NONE it does not (why in err), -1 it cannot be read.
 */
static int
fetch_checked(struct backup_store *store, struct backup_row *b,
              const char *name, const char *sha, long long bytes,
              char *path, size_t plen, char *err)
{
    char       got[65];
    long long  n;

    if (store->ops->fetch(store, b->location, name, path, plen, err, ERRLEN)
        != 0)
    {
        return PROV_NONE;
    }
    if (backup_file_sha256(path, got, &n, err, ERRLEN) != 0) {
        store->ops->release(store, path);
        return -1;
    }
    if (n != bytes || strcmp(got, sha) != 0) {
        snprintf(err, ERRLEN, "%s is %lld bytes with SHA-256 %.16s..., the "
                 "manifest says %lld bytes, %.16s...", name, n, got, bytes,
                 sha);
        store->ops->release(store, path);
        return PROV_NONE;
    }
    return 0;
}

/* --- scratch databases ------------------------------------------------------ */

static int
drop_db(struct prov *p, const char *db, char *err)
{
    return tenant_db_ddl(p->conn, "drop a database", "DROP DATABASE IF EXISTS",
                         db, " WITH (FORCE)", err, ERRLEN);
}

static int
db_rename(struct prov *p, const char *from, const char *to, char *err)
{
    char  *q, tail[200];

    q = PQescapeIdentifier(p->conn, to, strlen(to));
    if (q == NULL) {
        snprintf(err, ERRLEN, "cannot quote %s", to);
        return -1;
    }
    snprintf(tail, sizeof(tail), " RENAME TO %s", q);
    PQfreemem(q);
    return tenant_db_ddl(p->conn, "rename a database", "ALTER DATABASE", from,
                         tail, err, ERRLEN);
}

/* an empty database db owned by role, whatever an earlier attempt left */
static int
fresh_db(struct prov *p, const char *db, const char *role, char *err)
{
    return drop_db(p, db, err) != 0
           || tenant_db_create(p, db, role, NULL, err, ERRLEN) != 0 ? -1 : 0;
}

/* the tables of database db, read as role */
static int
db_tables(struct prov *p, const char *db, const char *role, json_t **out,
          char *err)
{
    PGconn  *conn;
    int      rc = -1;

    *out = NULL;
    conn = db_connect_db(p->conf.db, db);
    if (conn == NULL) {
        snprintf(err, ERRLEN, "database %s: cannot connect (see the "
                 "provisioner log)", db);
        return -1;
    }
    if (backup_session(conn, role, err, ERRLEN) == 0
        && db_exec(conn, "read the tables",
                   "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") == 0)
    {
        rc = backup_tables(conn, out, err, ERRLEN);
    }
    PQfinish(conn);
    return rc;
}

/* --- verify --------------------------------------------------------------- */

/*
 * The checks of a verification: 0 the backup is good, PROV_NONE it is
 * not (why in bad), -1 the check itself could not run.
 */
static int
verify_checks(struct prov *p, struct job *j, struct backup_row *b,
              char *bad, char *err)
{
    struct backup_store  store;
    char                 path[1300], db[64], diff[300];
    char                *argv[] = { TAR, "--list", "--file=-", NULL };
    json_t              *got;
    int                  rc, fd;

    backup_store_init(&store, &p->conf);

    if (b->files_sha[0]) {
        rc = fetch_checked(&store, b, "files.tar", b->files_sha,
                           b->files_bytes, path, sizeof(path), bad);
        if (rc != 0) {
            snprintf(err, ERRLEN, "%s", bad);
            return rc;
        }
        /* the archive read through by tar, with nobody's rights */
        fd = open(path, O_RDONLY | O_CLOEXEC);
        rc = fd < 0 ? -1 : tar_run(argv, NOBODY, fd, -1, p, bad, ERRLEN);
        if (fd >= 0) {
            close(fd);
        }
        store.ops->release(&store, path);
        if (rc != 0) {
            return PROV_NONE;
        }
    }

    if (!b->db_sha[0]) {
        return 0;
    }

    rc = fetch_checked(&store, b, "db.dump", b->db_sha, b->db_bytes, path,
                       sizeof(path), bad);
    if (rc != 0) {
        snprintf(err, ERRLEN, "%s", bad);
        return rc;
    }

    /* restored as a role of its own: whatever the dump holds runs with
     * no rights but that scratch role's */
    snprintf(db, sizeof(db), "scratch_%lld", j->id);
    if (drop_db(p, db, err) != 0
        || tenant_db_role(p, db, NULL, err, ERRLEN) != 0
        || fresh_db(p, db, db, err) != 0)
    {
        store.ops->release(&store, path);
        return -1;
    }
    rc = pgtool_restore(p, db, db, path, bad, ERRLEN);
    store.ops->release(&store, path);
    if (rc != 0) {
        return PROV_NONE;
    }
    if (db_tables(p, db, db, &got, err) != 0) {
        return -1;
    }
    backup_tables_diff(b->tables, got, diff, sizeof(diff));
    json_decref(got);
    if (diff[0]) {
        snprintf(bad, ERRLEN, "restored copy differs: %s", diff);
        return PROV_NONE;
    }
    return 0;
}

static int
scratch_drop(struct prov *p, struct job *j, char *err)
{
    char db[64];

    snprintf(db, sizeof(db), "scratch_%lld", j->id);
    if (drop_db(p, db, err) != 0
        || tenant_db_ddl(p->conn, "drop a role", "DROP ROLE IF EXISTS", db,
                         NULL, err, ERRLEN) != 0)
    {
        return -1;
    }
    return 0;
}

enum outcome
backup_do_verify(struct prov *p, struct job *j, char *err)
{
    struct backup_row   b;
    char                bad[ERRLEN] = "", drop[ERRLEN];
    const char         *params[3];
    int                 rc;

    rc = row_load(p, payload_backup(j), &b, err);
    if (rc == PROV_NONE) {
        if (job_begin(p) != 0) {
            return FAILED;
        }
        return task_finish(p, j, task_skipped("no such backup"), err);
    }
    if (rc == 0 && task_extend(p, j, BACKUP_LEASE, err) != 0) {
        row_free(&b);
        return LOST;
    }
    if (rc != 0) {
        return FAILED;
    }

    rc = verify_checks(p, j, &b, bad, err);
    row_free(&b);
    /* the scratch copy goes whatever the verdict; a verdict is kept only
     * once it is gone, so a retry does not find it */
    if (scratch_drop(p, j, drop) != 0) {
        if (rc != -1) {
            snprintf(err, ERRLEN, "%s", drop);
        }
        return FAILED;
    }
    if (rc == -1) {
        return *p->stop ? RELEASE : FAILED;
    }

    failpoint(j->kind, "finish");

    params[0] = j->idstr;
    params[1] = rc == 0 ? "ok" : "failed";
    params[2] = rc == 0 ? NULL : bad;
    if (job_begin(p) != 0
        || db_run(p->conn, "record the verification",
                  "UPDATE tenant_backups SET verify_status = $2,"
                  "       verified_at = now(), verify_error = $3"
                  " WHERE id = (SELECT (payload ->> 'backup')::bigint"
                  "               FROM jobs WHERE id = $1::bigint)", 3,
                  params, err, ERRLEN) != 0)
    {
        db_rollback(p->conn);
        return FAILED;
    }
    if (rc != 0) {
        log_warn("job %lld: backup %lld failed verification: %s", j->id,
                 b.id, bad);
    }
    return task_finish(p, j, json_pack("{s:I, s:b, s:s?}", "backup",
                                       (json_int_t) b.id, "ok", rc == 0,
                                       "error", rc == 0 ? NULL : bad), err);
}

/* --- restore ---------------------------------------------------------------- */

/*
 * A backup put back in place of the tenant's data, its services stopped
 * by the caller. The database is restored into a new one and the files
 * into a new directory; only when both are whole are they swapped in, the
 * old ones renamed aside (retired_<tag>, home.retired-<tag>) for the
 * caller to drop once its job has succeeded. Resumed after the swap, it
 * finds the swap done and does it not again.
 */
static int
restore_data(struct prov *p, struct tenant *t, struct backup_row *b,
             const char *tag, char *err)
{
    struct backup_store  store;
    char                 path[1300], fresh[64], old[64], fdir[1100],
                         odir[1100], bad[ERRLEN], diff[300];
    const char          *params[1];
    json_t              *got;
    int                  rc, have_fresh, have_old;

    backup_store_init(&store, &p->conf);
    snprintf(fresh, sizeof(fresh), "restore_%s", tag);
    snprintf(old, sizeof(old), "retired_%s", tag);
    snprintf(fdir, sizeof(fdir), "%.1000s/home.restore-%s", t->slot, tag);
    snprintf(odir, sizeof(odir), "%.1000s/home.retired-%s", t->slot, tag);

    if (b->db_sha[0]) {
        have_fresh = tenant_db_exists(p->conn, "SELECT 1 FROM pg_database"
                                      " WHERE datname = $1", fresh);
        have_old = tenant_db_exists(p->conn, "SELECT 1 FROM pg_database"
                                    " WHERE datname = $1", old);
        if (have_fresh < 0 || have_old < 0) {
            snprintf(err, ERRLEN, "registry: cannot look up databases");
            return -1;
        }
        if (!(have_old && !have_fresh)) {
            rc = fetch_checked(&store, b, "db.dump", b->db_sha, b->db_bytes,
                               path, sizeof(path), bad);
            if (rc != 0) {
                snprintf(err, ERRLEN, "backup %lld: %.400s", b->id, bad);
                return -1;
            }
            rc = fresh_db(p, fresh, t->db_name, err) != 0 ? -1
                 : pgtool_restore(p, fresh, t->db_name, path, err, ERRLEN);
            store.ops->release(&store, path);
            if (rc != 0 || db_tables(p, fresh, t->db_name, &got, err) != 0)
            {
                return -1;
            }
            backup_tables_diff(b->tables, got, diff, sizeof(diff));
            json_decref(got);
            if (diff[0]) {
                snprintf(err, ERRLEN, "restored database differs from the "
                         "backup: %s", diff);
                return -1;
            }

            /* nobody may be connected to a database renamed */
            params[0] = t->db_name;
            if (db_run(p->conn, "close the tenant's connections",
                       "SELECT pg_terminate_backend(pid)"
                       "  FROM pg_stat_activity WHERE datname = $1"
                       "   AND pid <> pg_backend_pid()", 1, params, err,
                       ERRLEN) != 0
                || drop_db(p, old, err) != 0)
            {
                return -1;
            }
            rc = tenant_db_exists(p->conn, "SELECT 1 FROM pg_database"
                                  " WHERE datname = $1", t->db_name);
            if (rc < 0) {
                snprintf(err, ERRLEN, "registry: cannot look up %s",
                         t->db_name);
                return -1;
            }
            if (rc > 0 && db_rename(p, t->db_name, old, err) != 0) {
                return -1;
            }
            if (db_rename(p, fresh, t->db_name, err) != 0) {
                return -1;
            }
        }
    }

    if (b->files_sha[0]) {
        have_fresh = access(fdir, F_OK) == 0;
        have_old = access(odir, F_OK) == 0;
        if (!(have_old && !have_fresh)) {
            rc = fetch_checked(&store, b, "files.tar", b->files_sha,
                               b->files_bytes, path, sizeof(path), bad);
            if (rc != 0) {
                snprintf(err, ERRLEN, "backup %lld: %.400s", b->id, bad);
                return -1;
            }
            rc = files_load(p, t, path, fdir, err, ERRLEN);
            store.ops->release(&store, path);
            if (rc != 0 || rmtree(odir) != 0) {
                return -1;
            }
            if ((rename(t->dir, odir) != 0 && errno != ENOENT)
                || rename(fdir, t->dir) != 0)
            {
                snprintf(err, ERRLEN, "cannot move %.300s into place: %s", fdir,
                         strerror(errno));
                return -1;
            }
        }
    }
    return 0;
}

/* what a restore set aside, once its job has succeeded */
static void
restore_cleanup(struct prov *p, struct tenant *t, const char *tag)
{
    char  old[64], odir[1100], err[ERRLEN];

    snprintf(old, sizeof(old), "retired_%s", tag);
    snprintf(odir, sizeof(odir), "%.1000s/home.retired-%s", t->slot, tag);
    if (drop_db(p, old, err) != 0) {
        log_warn("%s: cannot drop %s, its data before the restore: %s",
                 t->id, old, err);
    }
    if (rmtree(odir) != 0) {
        log_warn("%s: cannot remove %s: %s", t->id, odir, strerror(errno));
    }
}

static enum outcome
restore_locked(struct prov *p, struct job *j, struct tenant *t, char *err)
{
    struct backup_row  b;
    char               tag[32];
    int                rc;

    rc = row_load(p, payload_backup(j), &b, err);
    if (rc != 0) {
        return rc == PROV_NONE ? PERMANENT : FAILED;
    }
    if (strcmp(b.tenant, t->id) != 0 || strcmp(b.blueprint, t->blueprint))
    {
        snprintf(err, ERRLEN, "backup %lld is of %s (%s), not of %s (%s)",
                 b.id, b.tenant, b.blueprint, t->id, t->blueprint);
        row_free(&b);
        return PERMANENT;
    }
    snprintf(tag, sizeof(tag), "%lld", j->id);

    STEP("user", tenant_ensure_user(p, t, err, ERRLEN));
    STEP("stop", tenant_stop_all(p, t, err, ERRLEN));
    if (task_extend(p, j, BACKUP_LEASE, err) != 0) {
        row_free(&b);
        return LOST;
    }
    rc = restore_data(p, t, &b, tag, err);
    row_free(&b);
    STEP("restore", rc);
    if (task_extend(p, j, tenant_health_time(p, t), err) != 0) {
        return LOST;
    }
    STEP("services", task_start_active(p, t, err));

    failpoint(j->kind, "finish");

    if (job_begin(p) != 0) {
        return FAILED;
    }
    if (task_finish(p, j, json_pack("{s:I, s:b}", "backup",
                                    (json_int_t) b.id, "restored", 1), err)
        != DONE)
    {
        return LOST;
    }
    restore_cleanup(p, t, tag);
    return DONE;
}

enum outcome
backup_do_restore(struct prov *p, struct job *j, struct tenant *t, char *err)
{
    if (strcmp(t->status, "active") != 0
        && strcmp(t->status, "suspended") != 0)
    {
        snprintf(err, ERRLEN, "the tenant is %s; a restore needs it active "
                 "or suspended", t->status);
        return PERMANENT;
    }
    return backup_locked_run(p, j, t, err, restore_locked);
}

/* --- clone -------------------------------------------------------------- */

int
backup_clone_into(struct prov *p, struct job *j, struct tenant *t, char *err)
{
    struct backup_store  store;
    struct backup_row    b;
    json_t              *v = json_object_get(j->payload, "from_backup");
    char                 path[1300], bad[ERRLEN];
    int                  rc;

    if (!json_is_integer(v)) {
        return 0;
    }
    rc = row_load(p, (long long) json_integer_value(v), &b, err);
    if (rc != 0) {
        return -1;
    }
    backup_store_init(&store, &p->conf);

    rc = 0;
    if (b.db_sha[0] && blueprint_database(t->bp)) {
        rc = fetch_checked(&store, &b, "db.dump", b.db_sha, b.db_bytes, path,
                           sizeof(path), bad);
        if (rc != 0) {
            snprintf(err, ERRLEN, "backup %lld: %.400s", b.id, bad);
            row_free(&b);
            return -1;
        }
        /* the copy a template create would make is replaced by the backup */
        rc = fresh_db(p, t->db_name, t->db_name, err) != 0 ? -1
             : pgtool_restore(p, t->db_name, t->db_name, path, err, ERRLEN);
        store.ops->release(&store, path);
    }
    if (rc == 0 && b.files_sha[0]) {
        rc = tenant_ensure_user(p, t, err, ERRLEN);
        if (rc == 0) {
            rc = fetch_checked(&store, &b, "files.tar", b.files_sha,
                               b.files_bytes, path, sizeof(path), bad);
            if (rc != 0) {
                snprintf(err, ERRLEN, "backup %lld: %.400s", b.id, bad);
                rc = -1;
            } else {
                rc = files_load(p, t, path, t->dir, err, ERRLEN);
                store.ops->release(&store, path);
            }
        }
    }
    row_free(&b);
    return rc;
}

/* --- for fleet migrations ------------------------------------------------ */

int
backup_take(struct prov *p, struct job *j, struct tenant *t, char *err)
{
    json_t  *m;
    int      rc;

    if (backup_make(p, j, t, &m, err, ERRLEN) != 0) {
        return -1;
    }
    rc = backup_record(p, j, t, "migration", m, err);
    json_decref(m);
    return rc;
}

int
backup_put_back(struct prov *p, struct job *j, struct tenant *t,
                const char *tag, char *err)
{
    struct backup_row  b;
    char               full[48];
    int                rc;

    if (row_load(p, j->id, &b, err) != 0) {
        return -1;
    }
    snprintf(full, sizeof(full), "%lld%s", j->id, tag);
    /* a rollback's earlier try is not a swap done: start it afresh */
    restore_cleanup(p, t, full);
    rc = restore_data(p, t, &b, full, err);
    row_free(&b);
    if (rc == 0) {
        restore_cleanup(p, t, full);
    }
    return rc;
}
