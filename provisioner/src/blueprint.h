#ifndef PROV_BLUEPRINT_H
#define PROV_BLUEPRINT_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>

struct blueprint {
    char     name[256];
    char     path[1024];
    char     dir[1024];     /* where its files are */
    json_t  *json;
    int      runtimes;      /* it names an npm runtime ({{runtime:NAME}}) */
};

struct blueprint_set {
    struct blueprint  *items;
    size_t             n;
};

/* loads every *.json in dir; a broken one is reported and left out */
int  blueprints_load(const char *dir, struct blueprint_set *set, int *broken);
void blueprints_free(struct blueprint_set *set);
int  blueprints_sync(PGconn *conn, const struct blueprint_set *set,
                     const char *id, const char *driver);
const struct blueprint *blueprint_find(const struct blueprint_set *set,
                                       const char *name);

/* NULL when valid; else "field: why" in err */
const char *blueprint_validate(json_t *root, const char *name, char *err,
                               size_t errlen);

int         blueprint_has(const struct blueprint *bp, const char *list,
                          const char *value);
json_t     *blueprint_services(const struct blueprint *bp);
const char *blueprint_role(const struct blueprint *bp, const char *role);
int         blueprint_database(const struct blueprint *bp);

#endif
