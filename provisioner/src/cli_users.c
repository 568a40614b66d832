#define _DEFAULT_SOURCE

/*
 * `provisioner users`: the dashboard's operators (migration 015).  A
 * password is read from standard input, never from the command line (where
 * ps and the shell's history would show it), and kept as a yescrypt hash
 * (libcrypt, the scheme of Debian's own /etc/shadow): memory-hard, with a
 * salt of its own.  Changing a password or removing an operator ends its
 * sessions.
 */

#include "cli_users.h"
#include "actor.h"
#include "cli.h"
#include "db.h"

#include <crypt.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PASSWORD_MIN  12
#define PASSWORD_MAX  1024

static int
usage(const char *msg, const char *what)
{
    fprintf(stderr, "provisioner users: %s%s%s\n", what ? what : "",
            what ? ": " : "", msg);
    return EXIT_USAGE;
}

/* NULL, or why the name is not an operator's (as migration 015 checks) */
static const char *
name_check(const char *s)
{
    size_t i, n = strlen(s);

    if (n == 0 || n > 64) {
        return "1 to 64 characters";
    }
    if (s[0] < 'a' || s[0] > 'z') {
        return "starts with a lowercase letter";
    }
    for (i = 1; i < n; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')
              || s[i] == '.' || s[i] == '_' || s[i] == '-'))
        {
            return "lowercase letters, digits, '.', '_' and '-' only";
        }
    }
    return NULL;
}

/*
 * The first line of standard input as a yescrypt hash in out; the line
 * itself is wiped.  0, or the exit code once the error is said.
 */
static int
read_hash(char *out, size_t len)
{
    char                pw[PASSWORD_MAX + 2], *setting, *h;
    size_t              n;
    struct crypt_data  *cd;
    int                 rc = EXIT_USAGE;

    if (fgets(pw, sizeof(pw), stdin) == NULL) {
        return usage("give it on standard input "
                     "(printf '%s\\n' \"$PW\" | provisioner users ...)",
                     "password");
    }
    n = strcspn(pw, "\r\n");
    if (pw[n] == '\0' && n == sizeof(pw) - 1) {
        explicit_bzero(pw, sizeof(pw));
        return usage("at most 1024 characters", "password");
    }
    pw[n] = '\0';
    if (n < PASSWORD_MIN) {
        explicit_bzero(pw, sizeof(pw));
        return usage("at least 12 characters", "password");
    }

    cd = calloc(1, sizeof(*cd));
    setting = crypt_gensalt_ra("$y$", 0, NULL, 0);
    if (cd == NULL || setting == NULL) {
        fprintf(stderr, "provisioner users: cannot make a salt: %s\n",
                strerror(errno));
        rc = EXIT_ERROR;
        goto done;
    }
    h = crypt_r(pw, setting, cd);
    if (h == NULL || h[0] != '$' || strlen(h) >= len) {
        fprintf(stderr, "provisioner users: cannot hash the password: %s\n",
                strerror(errno));
        rc = EXIT_ERROR;
        goto done;
    }
    strcpy(out, h);
    rc = 0;

done:
    explicit_bzero(pw, sizeof(pw));
    if (cd) {
        explicit_bzero(cd, sizeof(*cd));
    }
    free(cd);
    free(setting);
    return rc;
}

static int
print_rows(PGresult *res)
{
    int i, j, rows, cols;

    if (res == NULL) {
        return EXIT_ERROR;
    }
    rows = PQntuples(res);
    cols = PQnfields(res);
    for (j = 0; j < cols; j++) {
        printf("%s%s", j ? "\t" : "", PQfname(res, j));
    }
    printf("\n");
    for (i = 0; i < rows; i++) {
        for (j = 0; j < cols; j++) {
            printf("%s%s", j ? "\t" : "", PQgetvalue(res, i, j));
        }
        printf("\n");
    }
    PQclear(res);
    return EXIT_OK;
}

/* one statement's answer: EXIT_OK with a row, else not found */
static int
one_row(PGresult *res, const char *name, const char *done)
{
    int n;

    if (res == NULL) {
        return EXIT_ERROR;
    }
    n = PQntuples(res);
    PQclear(res);
    if (n == 0) {
        fprintf(stderr, "provisioner users: no operator named %s\n", name);
        return EXIT_NOT_FOUND;
    }
    printf("%s %s\n", done, name);
    return EXIT_OK;
}

static int
add_or_password(struct prov *p, int add, const char *name)
{
    char        hash[CRYPT_OUTPUT_SIZE];
    const char *params[3];
    PGresult   *res;
    int         rc, conflict;

    rc = read_hash(hash, sizeof(hash));
    if (rc) {
        return rc;
    }
    params[0] = name;
    params[1] = hash;
    params[2] = cli_actor();

    if (!add) {
        res = db_query(p->conn, "change a password",
            "WITH o AS (UPDATE operators SET password_hash = $2,"
            "                  updated_at = now() WHERE name = $1"
            "           RETURNING name),"
            " s AS (UPDATE operator_sessions SET revoked_at = now()"
            "        WHERE operator IN (SELECT name FROM o)"
            "          AND revoked_at IS NULL),"
            " a AS (INSERT INTO audit_log (actor, action, detail)"
            "       SELECT $3, 'operator.password',"
            "              jsonb_build_object('user', name) FROM o)"
            " SELECT name FROM o", 3, params);
        return one_row(res, name, "changed the password of");
    }

    res = db_query(p->conn, "add an operator",
        "WITH o AS (INSERT INTO operators (name, password_hash)"
        "           VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING name),"
        " a AS (INSERT INTO audit_log (actor, action, detail)"
        "       SELECT $3, 'operator.add', jsonb_build_object('user', name)"
        "         FROM o)"
        " SELECT name FROM o", 3, params);
    if (res == NULL) {
        return EXIT_ERROR;
    }
    conflict = PQntuples(res) == 0;
    PQclear(res);
    if (conflict) {
        fprintf(stderr, "provisioner users: %s exists (change its password "
                "with: provisioner users password %s)\n", name, name);
        return EXIT_CONFLICT;
    }
    printf("added %s\n", name);
    return EXIT_OK;
}

int
cli_users(struct prov *p, int argc, char **argv)
{
    const char *params[2];
    const char *why, *sub;
    PGresult   *res;

    if (argc == 0 || strcmp(argv[0], "list") == 0) {
        if (argc > 1) {
            return usage("unexpected argument", argv[1]);
        }
        return print_rows(db_query(p->conn, "list operators",
            "SELECT o.name, o.created_at,"
            "       (SELECT count(*) FROM operator_sessions s"
            "         WHERE s.operator = o.name AND s.revoked_at IS NULL"
            "           AND s.expires_at > now()) AS sessions"
            "  FROM operators o ORDER BY o.name", 0, NULL));
    }

    sub = argv[0];

    if (strcmp(sub, "sessions") == 0) {
        if (argc > 2) {
            return usage("unexpected argument", argv[2]);
        }
        params[0] = argc == 2 ? argv[1] : NULL;
        return print_rows(db_query(p->conn, "list sessions",
            "SELECT id, operator, address, created_at, seen_at, expires_at"
            "  FROM operator_sessions"
            " WHERE revoked_at IS NULL AND expires_at > now()"
            "   AND ($1::text IS NULL OR operator = $1)"
            " ORDER BY id", 1, params));
    }

    if (strcmp(sub, "add") != 0 && strcmp(sub, "password") != 0
        && strcmp(sub, "remove") != 0 && strcmp(sub, "revoke") != 0)
    {
        return usage("expected list, add, password, remove, sessions or "
                     "revoke", sub);
    }
    if (argc != 2) {
        return usage(argc < 2 ? "missing" : "one name only", "NAME");
    }
    why = name_check(argv[1]);
    if (why) {
        return usage(why, "NAME");
    }

    if (strcmp(sub, "add") == 0 || strcmp(sub, "password") == 0) {
        return add_or_password(p, strcmp(sub, "add") == 0, argv[1]);
    }

    params[0] = argv[1];
    params[1] = cli_actor();

    if (strcmp(sub, "remove") == 0) {
        res = db_query(p->conn, "remove an operator",
            "WITH o AS (DELETE FROM operators WHERE name = $1"
            "           RETURNING name),"
            " a AS (INSERT INTO audit_log (actor, action, detail)"
            "       SELECT $2, 'operator.remove',"
            "              jsonb_build_object('user', name) FROM o)"
            " SELECT name FROM o", 2, params);
        return one_row(res, argv[1], "removed");
    }

    res = db_query(p->conn, "revoke sessions",
        "WITH o AS (SELECT name FROM operators WHERE name = $1),"
        " s AS (UPDATE operator_sessions SET revoked_at = now()"
        "        WHERE operator IN (SELECT name FROM o)"
        "          AND revoked_at IS NULL RETURNING id),"
        " a AS (INSERT INTO audit_log (actor, action, detail)"
        "       SELECT $2, 'operator.revoke',"
        "              jsonb_build_object('user', name,"
        "                                 'sessions', (SELECT count(*) FROM s))"
        "         FROM o)"
        " SELECT name FROM o", 2, params);
    return one_row(res, argv[1], "ended every session of");
}
