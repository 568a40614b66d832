#ifndef PROV_BACKUP_DIGEST_H
#define PROV_BACKUP_DIGEST_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>

/*
 * What a backup is checked against: per table its row count and an
 * order-free checksum (the sum of each row's hash), read as the tenant's
 * role in a fixed text format, so the source at backup time and a restored
 * copy give the same answer only when they hold the same rows.
 */

/* the session conn reads the tenant's data in: SET ROLE role and the
 * settings row text depends on */
int backup_session(PGconn *conn, const char *role, char *err, size_t len);

/* {"schema.table": {"rows": n, "sum": "..."}} of every table, in the
 * transaction under way */
int backup_tables(PGconn *conn, json_t **out, char *err, size_t len);

/* the first difference between two such objects, "" if none */
void backup_tables_diff(json_t *want, json_t *got, char *out, size_t len);

/* SHA-256 (hex) and size of a file */
int backup_file_sha256(const char *path, char hex[65], long long *bytes,
                       char *err, size_t len);

#endif
