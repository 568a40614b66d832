#define _DEFAULT_SOURCE

#include "apikey.h"
#include "blueprint.h"
#include "check_cmd.h"
#include "cli.h"
#include "cli_jwt.h"
#include "conf.h"
#include "db.h"
#include "log.h"
#include "migrate.h"
#include "prov.h"
#include "run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void
usage(FILE *out)
{
    fprintf(out,
        "usage: provisioner [-c FILE] [--db CONNINFO] [-v] COMMAND [ARGS]\n"
        "\n"
        "daemon and registry:\n"
        "  run                       run the provisioner daemon\n"
        "  migrate                   apply registry migrations (idempotent)\n"
        "  blueprints check [DIR]    validate blueprints, naming file and field\n"
        "  blueprints sync           publish the blueprints to the registry\n"
        "  apikey create NAME [--tenant T] | list | revoke ID\n"
        "                            (--tenant: the key acts on T only)\n"
        "  jwt keys | sources        the keys tenant_jwt checks tokens with\n"
        "  jwt upload KID FILE       a PEM public key or certificate (RS256,\n"
        "                            ES256)\n"
        "  jwt jwks URL [--refresh SECONDS]   an issuer's JWKS, kept current\n"
        "  jwt remove KID|URL\n"
        "\n"
        "tenants (write jobs exactly as the admin API does):\n"
        "  create NAME --blueprint B [--theme T] [--mode dedicated|shared]\n"
        "              [--display-name D] [--idempotency-key K] [--wait [SECS]]\n"
        "  delete NAME [--wait [SECS]]     suspend NAME [--wait [SECS]]\n"
        "  resume NAME [--wait [SECS]]     logs NAME [--lines N]\n"
        "  list                            health\n"
        "  check [--json] [--store]        disk, databases, jobs, certificates,\n"
        "                                  tenant services; exit 0 ok, 1 warning,\n"
        "                                  2 critical\n"
        "  show NAME                       jobs [--tenant T] [--status S] [--limit N]\n"
        "  seed-admin NAME --email E --password P [--wait [SECS]]\n"
        "  domains NAME [add HOST [--role site|admin] | remove HOST]\n"
        "  certs upload NAME HOST --cert FILE --key FILE\n"
        "  certs platform HOST --cert FILE --key FILE   (HOST may be *.parent)\n"
        "  certs show NAME HOST            certs delete NAME HOST\n"
        "  certs expiring [--days N]       (certificate_key seals uploads)\n"
        "  limits NAME [set [--rate R] [--burst N] [--connections N]\n"
        "              [--monthly-requests N] [--monthly-bytes N] [--plan P]]\n"
        "  plans [set NAME [--rate R] [--burst N] [--connections N] ...]\n"
        "  users [list]                    the dashboard's operators\n"
        "  users add|password NAME         the password on standard input\n"
        "  users remove NAME               users sessions [NAME]\n"
        "  users revoke NAME               end every session of NAME\n"
        "\n"
        "backups (backup_dir; see the README's Backups):\n"
        "  backup NAME [--no-verify] [--wait [SECS]]   backups NAME\n"
        "  verify ID [--wait [SECS]]       restore ID [--wait [SECS]]\n"
        "  clone ID NEWNAME [--display-name D] [--wait [SECS]]\n"
        "  fleet-migrate BLUEPRINT [--wave N] [--max-failures N]\n"
        "  migration ID [--status S]       migration ID resume\n"
        "\n"
        "this machine's tenant services (the driver's view, no registry):\n"
        "  services [list]           each tenant service and whether it runs\n"
        "  services stop             stop them all (auto/run stop); the\n"
        "                            reconciler starts them again\n"
        "\n"
        "exit codes: 0 ok, 1 error, 2 bad arguments, 3 not found,\n"
        "            4 conflict, 5 job failed, 6 --wait ran out\n"
        "\n"
        "The registry conninfo comes from --db, else $TENANT_DB, else the\n"
        "config file's \"db\", else \"dbname=tenant\".\n");
}

/*
 * Without -c: $TENANT_PROVISIONER_CONF, else var/provisioner.conf next to
 * the build directory the binary runs from (what auto/run writes), so
 * build/provisioner works against the local platform as it is.
 */
static const char *
default_conf(void)
{
    static char  buf[4096];
    const char  *env = getenv("TENANT_PROVISIONER_CONF");
    ssize_t      n;
    char        *slash;

    if (env && *env) {
        return env;
    }
    n = readlink("/proc/self/exe", buf, sizeof(buf) - 64);
    if (n <= 0) {
        return NULL;
    }
    buf[n] = '\0';
    slash = strrchr(buf, '/');
    if (slash == NULL) {
        return NULL;
    }
    snprintf(slash, sizeof(buf) - (size_t) (slash - buf),
             "/../var/provisioner.conf");
    return access(buf, R_OK) == 0 ? buf : NULL;
}

static int
blueprints_cmd(struct prov *p, int argc, char **argv)
{
    struct blueprint_set  set;
    int                   broken, rc;
    const char           *dir = p->conf.blueprints;

    if (argc < 1 || (strcmp(argv[0], "check") != 0
                     && strcmp(argv[0], "sync") != 0))
    {
        log_err("usage: provisioner blueprints check [DIR] | sync");
        return 2;
    }
    if (strcmp(argv[0], "check") == 0 && argc > 1) {
        dir = argv[1];
    }

    if (blueprints_load(dir, &set, &broken) != 0) {
        return 1;
    }
    printf("%zu blueprint(s) valid, %d refused\n", set.n, broken);

    rc = broken ? 2 : 0;
    if (rc == 0 && strcmp(argv[0], "sync") == 0) {
        p->conn = db_connect(p->conf.db);
        rc = (p->conn == NULL || blueprints_sync(p->conn, &set, NULL, NULL) != 0) ? 1 : 0;
    }
    blueprints_free(&set);
    return rc;
}

/* what the driver runs here, listed or stopped: no registry needed */
static int
services_cmd(struct prov *p, int argc, char **argv)
{
    const char  *tenant, *service;
    json_t      *all, *svcs, *up;
    char         err[512];
    int          stop, rc = 0, n = 0;

    if (argc > 1 || (argc == 1 && strcmp(argv[0], "list") != 0
                     && strcmp(argv[0], "stop") != 0))
    {
        log_err("usage: provisioner services [list | stop]");
        return 2;
    }
    stop = argc == 1 && strcmp(argv[0], "stop") == 0;

    all = p->driver->ops->list(p->driver);
    if (all == NULL) {
        log_err("services: the %s driver cannot list what runs",
                p->driver->name);
        return 1;
    }

    json_object_foreach(all, tenant, svcs) {
        json_object_foreach(svcs, service, up) {
            n++;
            if (!stop) {
                printf("%s/%s %s\n", tenant, service,
                       json_is_true(up) ? "running" : "stopped");
                continue;
            }
            if (p->driver->ops->stop(p->driver, tenant, service, err,
                                sizeof(err)) != 0)
            {
                log_err("services: stop %s/%s: %s", tenant, service, err);
                rc = 1;
                continue;
            }
            printf("%s/%s stopped\n", tenant, service);
        }
    }
    json_decref(all);

    if (n == 0) {
        printf("no tenant services\n");
    }
    return rc;
}

int
main(int argc, char **argv)
{
    struct prov            p;
    const char            *db = NULL, *env, *cmd;
    int                    i, rc, applied;
    volatile sig_atomic_t  never = 0;

    memset(&p, 0, sizeof(p));
    /* the CLI is never asked to stop; run_daemon points it at its flag */
    p.stop = &never;
    conf_defaults(&p.conf);

    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
            p.conf_path = argv[++i];
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

    if (p.conf_path == NULL && getenv("TENANT_DB") == NULL && db == NULL) {
        p.conf_path = default_conf();
    }

    if (p.conf_path != NULL && conf_load(&p.conf, p.conf_path) != 0) {
        return 2;
    }

    env = getenv("TENANT_DB");
    if (db == NULL && env != NULL && *env != '\0') {
        db = env;
    }
    if (db != NULL) {
        if (strlen(db) >= sizeof(p.conf.db)) {
            log_err("--db: conninfo is too long");
            return 2;
        }
        memcpy(p.conf.db, db, strlen(db) + 1);
    }

    if (strcmp(cmd, "blueprints") == 0) {
        rc = blueprints_cmd(&p, argc - i, argv + i);
        goto done;
    }

    if (strcmp(cmd, "services") == 0) {
        p.driver = driver_new(&p.conf);
        if (p.driver == NULL) {
            return 2;
        }
        rc = services_cmd(&p, argc - i, argv + i);
        driver_free(p.driver);
        return rc;
    }

    if (strcmp(cmd, "run") == 0) {
        if (p.conf.secret_key[0]) {
            if (secret_key_load(p.conf.secret_key, p.key) != 0) {
                return 2;
            }
            p.have_key = 1;
        }
        p.driver = driver_new(&p.conf);
        if (p.driver == NULL) {
            return 2;
        }
        rc = run_daemon(&p);
        driver_free(p.driver);
        blueprints_free(&p.blueprints);
        json_decref(p.runtime_dirs);
        explicit_bzero(p.key, sizeof(p.key));
        return rc;
    }

    if (strcmp(cmd, "migrate") != 0 && strcmp(cmd, "apikey") != 0
        && strcmp(cmd, "check") != 0 && strcmp(cmd, "jwt") != 0 && !cli_is_verb(cmd))
    {
        log_err("unknown command \"%s\"", cmd);
        usage(stderr);
        return 2;
    }

    p.conn = db_connect(p.conf.db);
    if (p.conn == NULL) {
        return 1;
    }

    if (strcmp(cmd, "migrate") == 0) {
        rc = migrate(p.conn, &applied) == 0 ? 0 : 1;
        if (rc == 0) {
            printf("migrations: %d applied, schema at version %d\n", applied,
                   migrations_count ? migrations[migrations_count - 1].version
                                    : 0);
        }
    } else if (strcmp(cmd, "apikey") == 0) {
        rc = apikey_main(p.conn, argc - i, argv + i);
    } else if (strcmp(cmd, "jwt") == 0) {
        rc = cli_jwt(&p, argc - i, argv + i);
    } else if (strcmp(cmd, "check") == 0) {
        rc = check_cmd(&p, argc - i, argv + i);
    } else {
        rc = cli_main(&p, cmd, argc - i, argv + i);
    }

done:
    if (p.conn) {
        PQfinish(p.conn);
    }
    return rc;
}
