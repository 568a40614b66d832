#ifndef PROV_TENANT_H
#define PROV_TENANT_H

#include "db.h"
#include "driver.h"
#include "prov.h"
#include "template.h"

#include <jansson.h>

struct tenant {
    char                     id[64];
    char                     blueprint[65];
    char                     theme[65];
    char                     mode[16];
    char                     status[16];
    char                     display_name[256];
    char                     dir[1024];   /* its home: {{dir}}, the cwd */
    char                     slot[1024];  /* the provisioner's: run/, logs/ */
    unsigned int             uid;         /* its services' user; 0: none yet */
    char                     domain[320];
    const struct blueprint  *bp;
    json_t                  *ports;      /* service -> port */
    json_t                  *secrets;    /* name -> plaintext */
    char                     db_name[80];
    char                     db_url[1024];
    char                     db_host[256];
    char                     db_port[16];
    char                     admin_email[256];
    char                     admin_crypt[128];
    const char              *bind;       /* {{bind}}: where services listen */
    json_t                  *runtimes;   /* {{runtime:NAME}}: installed ones */
};

/* 0 found, PROV_NONE no such tenant, -1 error (err says why) */
int  tenant_load(struct prov *p, const char *id, struct tenant *t, char *err,
                 size_t len);
void tenant_free(struct tenant *t);

int  tenant_prepare(struct prov *p, struct tenant *t, char *err, size_t len);
/* the tenant's user: allocated once, its home made and owned by it */
int  tenant_ensure_user(struct prov *p, struct tenant *t, char *err,
                        size_t len);
/* file writes for the tenant run with its rights, so a link it planted
 * leads nowhere it could not go itself; 0: done, -1: cannot switch */
int  tenant_become(const struct tenant *t);
void tenant_unbecome(const struct tenant *t);
int  tenant_ensure_secrets(struct prov *p, struct tenant *t, char *err,
                           size_t len);
/* re-encrypts secrets stored before migration 007, bound to their tenant
 * and name; how many, or -1 */
int  tenant_secrets_bind(struct prov *p);
int  tenant_ensure_named_secret(struct prov *p, struct tenant *t,
                                const char *name, char *err, size_t len);
int  tenant_ensure_database(struct prov *p, struct tenant *t, char *err,
                            size_t len);
int  tenant_drop_database(struct prov *p, const char *id, char *err,
                          size_t len);
int  tenant_ensure_ports(struct prov *p, struct tenant *t, char *err,
                         size_t len);
int  tenant_write_files(struct prov *p, struct tenant *t, char *err,
                        size_t len);
int  tenant_write_login(struct prov *p, struct tenant *t, const char *email,
                        const char *password, char *err, size_t len);

/* the blueprint's one-off commands at create ("setup"), as their service
 * runs: its user, directory, environment and limits */
int  tenant_run_setup(struct prov *p, struct tenant *t, char *err,
                      size_t len);
/* the longest the services' health checks may take together, in seconds */
int  tenant_health_time(struct prov *p, struct tenant *t);
/* the longest the setup and the admin login may take, in seconds */
int  tenant_setup_time(const struct tenant *t);
int  tenant_migrate_time(const struct tenant *t);
int  tenant_run_migrate(struct prov *p, struct tenant *t, char *err,
                        size_t len);
/* the admin login by command ("admin_login": {"command", "service"}):
 * ADMIN_EMAIL and ADMIN_PASSWORD in its environment, never in argv */
int  tenant_run_admin_login(struct prov *p, struct tenant *t,
                            const char *email, const char *password,
                            char *err, size_t len);

/* the rendered spec of one service; spec_free releases it */
int  tenant_spec(struct prov *p, struct tenant *t, const char *service,
                 struct service_spec *s, char *err, size_t len);
void spec_free(struct service_spec *s);

int  tenant_start_all(struct prov *p, struct tenant *t, char *err,
                      size_t len);
int  tenant_stop_all(struct prov *p, struct tenant *t, char *err, size_t len);
int  tenant_wait_healthy(struct prov *p, struct tenant *t, char *err,
                         size_t len);
int  tenant_write_endpoints(struct prov *p, struct tenant *t, char *err,
                            size_t len);

/* what tenant_endpoints_batch's statements point at, kept by the caller
 * until the batch has run */
struct tenant_endpoint_rows {
    const char  *tenant[2];
    const char  *row[2][3];
    char         addr[2][256];
};

/* the statements of tenant_write_endpoints, added to a batch of the
 * caller's (a create's last transaction: one round trip) */
int  tenant_endpoints_batch(struct prov *p, struct tenant *t,
                            struct tenant_endpoint_rows *r,
                            struct db_batch *b, char *err, size_t len);
/* where the driver's services moved (ops->moves): the endpoints rewritten
 * in one transaction if any differs; 1 rewritten, 0 current, -1 error */
int  tenant_follow_endpoints(struct prov *p, struct tenant *t, char *err,
                             size_t len);
int  tenant_render_into(struct prov *p, struct tenant *t, json_t *files,
                        const char *into, char *err, size_t len);

/* what the tenant_*.c files share among themselves */
int  tenant_dedicated(const struct tenant *t);
int  tenant_load_secrets(struct prov *p, struct tenant *t, char *err,
                         size_t len);
/* database and role name of a tenant: an identifier without hyphens */
void tenant_db_name(const char *id, char *out, size_t len);
void tenant_fill_db_url(struct prov *p, struct tenant *t);
/* a role's URL of its own database (named as the role) on host:port */
void tenant_db_url(char *out, size_t len, const char *role, const char *pw,
                   const char *host, const char *port);
int  tenant_load_ports(struct prov *p, struct tenant *t, char *err,
                       size_t len);
/* DDL on an identifier libpq quotes; 0, or -1 with err */
int  tenant_db_ddl(PGconn *conn, const char *what, const char *verb,
                   const char *ident, const char *tail, char *err,
                   size_t len);
/* 1 when sql (one parameter: name) has rows, 0 none, -1 error */
int  tenant_db_exists(PGconn *conn, const char *sql, const char *name);
/* a role with this password (NULL: no login), the provisioner its member */
int  tenant_db_role(struct prov *p, const char *role, const char *pw,
                    char *err, size_t len);
/* the database db, owned by owner (NULL: the provisioner), a copy of
 * template (NULL: empty), closed to others; left as it is if it exists */
int  tenant_db_create(struct prov *p, const char *db, const char *owner,
                      const char *template, char *err, size_t len);
/* the blueprint's setup fills a template database its tenants copy */
int  tenant_db_templated(const struct tenant *t);

/*
 * The blueprint's template database (tenant_dbtemplate.c): open takes its
 * lock and says whether it must be built (build: the setup is to be run
 * into it, as the tenant "as" that template_as makes), seal marks it
 * built, close lets the lock go; copy makes the tenant's database from it.
 */
struct tenant_template {
    char  name[64];
    char  password[33];
    int   build;
    int   locked;
};

int  tenant_template_open(struct prov *p, struct tenant *t,
                          struct tenant_template *tpl, char *err, size_t len);
int  tenant_template_as(const struct tenant_template *tpl,
                        const struct tenant *t, struct tenant *as, char *err,
                        size_t len);
void tenant_template_as_free(struct tenant *as);
int  tenant_template_seal(struct prov *p, struct tenant_template *tpl,
                          char *err, size_t len);
void tenant_template_close(struct prov *p, struct tenant_template *tpl);
int  tenant_template_copy(struct prov *p, struct tenant *t,
                          const struct tenant_template *tpl, char *err,
                          size_t len);

/* the template context of t (port: the service's own, or 0) */
void tenant_context(struct tenant *t, int port, struct tctx *c);

#endif
