#ifndef PROV_CONF_H
#define PROV_CONF_H

#define CONF_STR 512

struct conf {
    char  db[CONF_STR];          /* libpq conninfo of the registry */
    char  driver[32];            /* process | docker */
    char  blueprints[CONF_STR];  /* directory of blueprint JSON files */
    char  state_dir[CONF_STR];   /* per-tenant files, logs, pid files */
    int   poll_interval;         /* seconds between fallback job polls */
};

void conf_defaults(struct conf *c);
int  conf_load(struct conf *c, const char *path);

#endif
