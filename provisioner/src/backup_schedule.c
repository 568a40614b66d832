#define _GNU_SOURCE

#include "backup_schedule.h"
#include "backup_store.h"
#include "db.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>

/* at most this many expired backups are deleted a pass */
#define EXPIRE_BATCH  200

static int
expire(struct prov *p)
{
    struct backup_store  store;
    const char          *params[4];
    char                 daily[16], weekly[16], gone[16], lim[16],
                         err[512];
    PGresult            *res, *del;
    int                  i, n = 0;

    snprintf(daily, sizeof(daily), "%d", p->conf.backup_keep_daily);
    snprintf(weekly, sizeof(weekly), "%d", p->conf.backup_keep_weekly);
    snprintf(gone, sizeof(gone), "%d", p->conf.backup_keep_deleted);
    snprintf(lim, sizeof(lim), "%d", EXPIRE_BATCH);
    params[0] = daily;
    params[1] = weekly;
    params[2] = gone;
    params[3] = lim;
    res = db_query(p->conn, "find expired backups",
                   "SELECT id, location FROM backup_expired($1::int, $2::int,"
                   " $3::int) LIMIT $4::int", 4, params);
    if (res == NULL) {
        return -1;
    }

    backup_store_init(&store, &p->conf);
    for (i = 0; i < PQntuples(res); i++) {
        /* the row first: files without a row are only space, a row
         * without its files would be a backup that cannot be restored */
        params[0] = PQgetvalue(res, i, 0);
        del = db_query(p->conn, "delete an expired backup",
                       "DELETE FROM tenant_backups WHERE id = $1::bigint"
                       " RETURNING id", 1, params);
        if (del == NULL) {
            continue;
        }
        if (PQntuples(del) == 1) {
            if (store.ops->remove(&store, PQgetvalue(res, i, 1), err,
                                  sizeof(err)) != 0)
            {
                log_warn("expired backup %s: %s", PQgetvalue(res, i, 0), err);
            }
            n++;
        }
        PQclear(del);
    }
    PQclear(res);
    if (n > 0) {
        log_info("retention: deleted %d expired backup(s)", n);
    }
    return 0;
}

int
backup_schedule(struct prov *p)
{
    const char  *params[3];
    char         interval[16], jitter[16], batch[16];
    PGresult    *res;
    int          queued = 0;

    if (p->conf.backup_interval > 0) {
        snprintf(interval, sizeof(interval), "%d", p->conf.backup_interval);
        snprintf(jitter, sizeof(jitter), "%d", p->conf.backup_jitter);
        snprintf(batch, sizeof(batch), "%d", p->conf.backup_batch);
        params[0] = interval;
        params[1] = jitter;
        params[2] = batch;
        res = db_query(p->conn, "schedule backups",
                       "SELECT backup_schedule($1::int, $2::int, $3::int)", 3,
                       params);
        if (res == NULL) {
            return -1;
        }
        queued = atoi(PQgetvalue(res, 0, 0));
        PQclear(res);
        if (queued > 0) {
            log_info("scheduled %d backup(s)", queued);
        }
    }
    return expire(p) == 0 ? queued : -1;
}
