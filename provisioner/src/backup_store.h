#ifndef PROV_BACKUP_STORE_H
#define PROV_BACKUP_STORE_H

#include "conf.h"

#include <stddef.h>

/*
 * Where backups are kept. A backup is a few files under a key
 * ("<tenant>/<id>"): written into a local staging directory, then handed
 * to the store whole by commit, which makes them visible at once or not
 * at all. An object store would upload in commit and download in fetch;
 * the local one (backup_store_local.c) renames and reads in place.
 */
struct backup_store;

struct backup_store_ops {
    const char  *name;
    /* a fresh, empty local directory to write the backup's files into */
    int  (*stage)(struct backup_store *s, const char *key, char *dir,
                  size_t dlen, char *err, size_t len);
    /* the staged files kept under key; the staging directory is gone */
    int  (*commit)(struct backup_store *s, const char *key,
                   const char *dir, char *err, size_t len);
    /* a local path holding file of the backup at key, valid until
     * release */
    int  (*fetch)(struct backup_store *s, const char *key, const char *file,
                  char *path, size_t plen, char *err, size_t len);
    void (*release)(struct backup_store *s, const char *path);
    /* key and its files gone; nothing there is not an error */
    int  (*remove)(struct backup_store *s, const char *key, char *err,
                   size_t len);
};

struct backup_store {
    const struct backup_store_ops  *ops;
    const struct conf              *conf;
};

extern const struct backup_store_ops  backup_store_local_ops;

/* the store of conf (today: the local directory backup_dir) */
void backup_store_init(struct backup_store *s, const struct conf *conf);

#endif
