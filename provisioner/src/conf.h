#ifndef PROV_CONF_H
#define PROV_CONF_H

#define CONF_STR 512

struct conf {
    char  db[CONF_STR];            /* libpq conninfo of the registry */
    char  driver[32];              /* process | docker */
    char  blueprints[CONF_STR];    /* directory of blueprint JSON files */
    char  runtimes[CONF_STR];      /* the checkout's runtimes/ (lock files) */
    char  runtime_dir[CONF_STR];   /* where auto/runtimes installs them */
    char  state_dir[CONF_STR];     /* per-tenant files, logs, pid files */
    char  secret_key[CONF_STR];    /* file holding the AES-256 key, hex */
    char  certificate_key[CONF_STR]; /* the edges' certificate key file */
    char  dns_resolver[64];        /* ip[:port] for TXT checks; "": system */
    int   domain_claim_ttl;        /* seconds a domain claim may wait */
    int   domain_verification;     /* 0: custom domains are trusted as added
                                      (the API's verification is off too) */
    char  acme_directory[CONF_STR]; /* an RFC 8555 directory; "": no ACME */
    char  acme_ca_file[CONF_STR];  /* CAs to trust for it; "": the system's */
    char  acme_email[256];         /* the account's contact; "": none */
    char  acme_dns_hook[CONF_STR]; /* sets/clears TXT records: with it, the
                                      platform wildcard is ordered too */
    char  acme_edges[CONF_STR];    /* the edges' HTTP addresses (ip:port ...):
                                      each must answer a challenge before
                                      the CA is told to look */
    int   acme_orders_per_hour;    /* new orders, across all provisioners */
    int   acme_timeout;            /* seconds a challenge or finalize waits */
    int   acme_dns_wait;           /* seconds a TXT record may take to show */
    char  id[128];                 /* name in jobs.claimed_by */
    char  base_domain[256];        /* tenants live at {tenant}.base_domain */
    char  admin_email_domain[256]; /* admins are admin@{tenant}.this; empty:
                                      base_domain */
    char  docker_socket[CONF_STR]; /* the docker driver's engine */
    char  docker_network[32];      /* host | bridge */
    int   base_port;               /* the edge's HTTP port, for URLs */
    int   port_min;                /* tenant service ports come from here */
    int   port_max;
    int   poll_interval;           /* seconds between fallback job polls */
    int   lease;                   /* seconds a claimed job stays ours */
    int   reconcile_interval;      /* seconds */
    int   health_timeout;          /* seconds a new service has to answer */
    int   workers;                 /* processes running jobs side by side */
    int   uid_min;                 /* tenant users come from here */
    int   uid_max;
    long  log_cap;                 /* bytes kept per service log */
    char  cgroup_root[CONF_STR];   /* where control groups are mounted */
    char  cgroup_parent[64];       /* the group the services' groups go in */
    int   resource_limits;         /* off: services run without limits */

    /* health checks (check.c): warning and critical thresholds */
    int   check_interval;          /* seconds between the daemon's checks */
    int   check_disk_warning;      /* percent used of state_dir's disk */
    int   check_disk_critical;
    int   check_db_mb_warning;     /* the largest tenant database, MB */
    int   check_db_mb_critical;
    int   check_failed_jobs_warning;   /* jobs failed in check_failed_hours */
    int   check_failed_jobs_critical;
    int   check_failed_hours;
    int   check_stuck_minutes;     /* a job running or due this long: stuck */
    int   check_stuck_warning;
    int   check_stuck_critical;
    int   check_cert_days_warning; /* the soonest certificate expiry, days */
    int   check_cert_days_critical;
    int   check_unreachable_warning;   /* active tenants' endpoints down */
    int   check_unreachable_critical;
    /* backups (backup.c, backup_schedule.c) */
    char  backup_dir[CONF_STR];    /* the local store: <tenant>/<id>/ */
    int   backup_interval;         /* seconds between scheduled backups of
                                      a tenant; 0: none scheduled */
    int   backup_jitter;           /* up to this much earlier, per tenant */
    int   backup_batch;            /* scheduled backups queued at a time */
    int   backup_keep_daily;       /* the newest of each of the last N days */
    int   backup_keep_weekly;      /* ... and of each of the last M weeks */
    int   backup_keep_deleted;     /* seconds a deleted tenant's last backup
                                      is kept */
    int   backup_pass_interval;    /* seconds between scheduling and
                                      retention passes */
    int   jwks_pass_interval;      /* seconds between looks for JWKS
                                    * sources due a refresh (jwks.c) */
    int   check_backup_hours;      /* active tenants without a verified
                                      backup this recent; 0: not checked */
    int   check_backup_warning;
    int   check_backup_critical;
    char  metrics_file[CONF_STR];  /* Prometheus text the daemon rewrites
                                      each check_interval; "": none */
};

void conf_defaults(struct conf *c);
int  conf_load(struct conf *c, const char *path);
void conf_check_ports(const struct conf *c);

#endif
