#define _POSIX_C_SOURCE 200809L

#include "apikey.h"
#include "conf.h"
#include "db.h"
#include "log.h"
#include "migrate.h"
#include "run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
usage(FILE *out)
{
    fprintf(out,
        "usage: provisioner [-c FILE] [--db CONNINFO] [-v] COMMAND [ARGS]\n"
        "\n"
        "commands:\n"
        "  migrate                 apply registry migrations (idempotent)\n"
        "  run                     run the provisioner daemon\n"
        "  apikey create NAME      create an admin API key (shown once)\n"
        "  apikey list             list API keys\n"
        "  apikey revoke ID        revoke an API key\n"
        "\n"
        "The registry conninfo comes from --db, else $TENANT_DB, else the\n"
        "config file's \"db\", else \"dbname=tenant\".\n");
}

int
main(int argc, char **argv)
{
    struct conf  conf;
    const char  *conf_path = NULL, *db = NULL, *env;
    const char  *cmd;
    PGconn      *conn;
    int          i, rc, applied;

    conf_defaults(&conf);

    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
            conf_path = argv[++i];
        } else if (strcmp(argv[i], "--db") == 0 && i + 1 < argc) {
            db = argv[++i];
        } else if (strcmp(argv[i], "-v") == 0) {
            log_set_level(LOG_DEBUG);
        } else if (strcmp(argv[i], "-h") == 0
                   || strcmp(argv[i], "--help") == 0)
        {
            usage(stdout);
            return 0;
        } else {
            log_err("unknown option \"%s\"", argv[i]);
            usage(stderr);
            return 2;
        }
    }

    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    cmd = argv[i++];

    if (conf_path != NULL && conf_load(&conf, conf_path) != 0) {
        return 2;
    }

    env = getenv("TENANT_DB");
    if (db == NULL && env != NULL && *env != '\0') {
        db = env;
    }
    if (db != NULL) {
        if (strlen(db) >= sizeof(conf.db)) {
            log_err("--db: conninfo is too long");
            return 2;
        }
        memcpy(conf.db, db, strlen(db) + 1);
    }

    if (strcmp(cmd, "run") == 0) {
        return run_daemon(&conf, conf_path);
    }

    if (strcmp(cmd, "migrate") != 0 && strcmp(cmd, "apikey") != 0) {
        log_err("unknown command \"%s\"", cmd);
        usage(stderr);
        return 2;
    }

    conn = db_connect(conf.db);
    if (conn == NULL) {
        return 1;
    }

    if (strcmp(cmd, "migrate") == 0) {
        rc = migrate(conn, &applied) == 0 ? 0 : 1;
        if (rc == 0) {
            printf("migrations: %d applied, schema at version %d\n", applied,
                   migrations_count ? migrations[migrations_count - 1].version
                                    : 0);
        }
    } else {
        rc = apikey_main(conn, argc - i, argv + i);
    }

    PQfinish(conn);
    return rc;
}
