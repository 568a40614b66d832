
/*
 * One LISTEN tenant_changed connection per nginx instance.  The cache is
 * shared by all workers, so one listener evicts for all of them.  Workers
 * claim the listener through the shared zone:
 *
 *   - nobody holds it, or its holder died: a worker claims it, and once it
 *     listens it invalidates the whole cache (changes may have been missed);
 *   - its holder is exiting because of a reload (the zone has seen a newer
 *     configuration, whose workers are starting): it asks for a handover
 *     and keeps listening until the new holder listens, so no change is
 *     missed and the warm cache is kept;
 *   - its holder is exiting and no newer configuration exists (nginx -s
 *     quit): nobody will take over, so it lets go at once and the worker
 *     exits as fast as it would without the module;
 *   - the connection drops: it reconnects with backoff and, once listening
 *     again, invalidates the whole cache.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>
#include "ngx_http_tenant_module.h"
#include "ngx_http_tenant_cache.h"
#include "ngx_http_tenant_certs.h"
#include "ngx_http_tenant_acme.h"
#include "ngx_http_tenant_filter.h"
#include "ngx_http_tenant_listen.h"
#include "ngx_http_tenant_probe.h"
#include "ngx_http_tenant_pg.h"


#define NGX_HTTP_TENANT_LISTEN_CHECK     250
#define NGX_HTTP_TENANT_LISTEN_HANDOVER  20
#define NGX_HTTP_TENANT_LISTEN_GIVE_UP   3000


static void ngx_http_tenant_listen_check(ngx_event_t *ev);
static void ngx_http_tenant_listen_claim(ngx_http_tenant_listen_t *lst,
    ngx_uint_t gap);
static void ngx_http_tenant_listen_release(ngx_http_tenant_listen_t *lst);
static void ngx_http_tenant_listen_arm(ngx_http_tenant_listen_t *lst,
    ngx_msec_t t, ngx_uint_t cancelable);
static ngx_uint_t ngx_http_tenant_listen_alive(ngx_pid_t pid);
static void ngx_http_tenant_listen_ready(void *data);
static void ngx_http_tenant_listen_notify(void *data, PGnotify *n);
static void ngx_http_tenant_listen_quit(void *data);
static void ngx_http_tenant_listen_hand_over(ngx_http_tenant_listen_t *lst);


/* the host filter is loaded anew at every (re)connect and this often */
#define NGX_HTTP_TENANT_FILTER_RELOAD  3600


/* a worker's side of the listener, from its init_process to its exit */
struct ngx_http_tenant_listen_s {
    ngx_connection_t                dumb;       /* first: the timer's data */
    ngx_event_t                     ev;
    ngx_http_tenant_cache_t        *cache;
    ngx_http_tenant_filter_t       *filter;     /* NULL: none configured */
    ngx_http_tenant_certs_t        *certs;      /* NULL: no tenant_ssl_zone */
    ngx_http_tenant_jwt_keys_t     *jwt;        /* NULL: no tenant_jwt on */
    ngx_http_tenant_pg_listener_t  *listener;
    ngx_http_tenant_probe_t        *probe;
    ngx_uint_t                      owner;
    ngx_uint_t                      gap;
    ngx_msec_t                      exiting;

    /*
     * A filter load is due until one completes: the first attempt may find
     * no pool connection up yet (the listener reconnects first), or fail
     * half-way.
     */
    time_t                          filter_at;
    ngx_uint_t                      filter_due;
    ngx_atomic_uint_t               filter_loads;
};


/* a load is due from now until the filter's load count moves */

static void
ngx_http_tenant_listen_filter_want(ngx_http_tenant_listen_t *lst)
{
    lst->filter_at = ngx_time();
    lst->filter_due = 1;
    lst->filter_loads = lst->filter->sh->loads;
}


/* the cache and the filter (or NULL) are this worker's cycle's */

ngx_http_tenant_listen_t *
ngx_http_tenant_listen_init_process(ngx_cycle_t *cycle,
    ngx_http_tenant_cache_t *cache, ngx_http_tenant_filter_t *filter,
    ngx_http_tenant_certs_t *certs, ngx_http_tenant_jwt_keys_t *jwt)
{
    ngx_http_tenant_listen_t  *lst;

    lst = ngx_pcalloc(cycle->pool, sizeof(ngx_http_tenant_listen_t));
    if (lst == NULL) {
        return NULL;
    }

    lst->cache = cache;
    lst->filter = filter;
    lst->certs = certs;
    lst->jwt = jwt;

    lst->probe = ngx_http_tenant_probe_create(cycle, cache);
    if (lst->probe == NULL) {
        return NULL;
    }

    lst->dumb.fd = (ngx_socket_t) -1;
    lst->ev.handler = ngx_http_tenant_listen_check;
    lst->ev.log = cycle->log;
    lst->ev.data = &lst->dumb;

    ngx_http_tenant_listen_arm(lst, 1, 1);

    return lst;
}


void
ngx_http_tenant_listen_exit_process(ngx_http_tenant_listen_t *lst)
{
    if (lst->owner) {
        ngx_http_tenant_listen_release(lst);
    }
}


static void
ngx_http_tenant_listen_check(ngx_event_t *ev)
{
    ngx_pid_t                    owner;
    ngx_http_tenant_listen_t    *lst;
    ngx_http_tenant_filter_t    *filter;
    ngx_http_tenant_cache_sh_t  *sh;

    lst = ev->data;
    sh = lst->cache->sh;

    if (!lst->owner) {

        if (ngx_exiting || ngx_terminate || ngx_quit) {
            return;
        }

        owner = (ngx_pid_t) sh->listener_pid;

        if (owner == 0 || !ngx_http_tenant_listen_alive(owner)) {
            if (ngx_atomic_cmp_set(&sh->listener_pid, owner, ngx_pid)) {
                ngx_http_tenant_listen_claim(lst, 1);
            }

        } else if ((ngx_pid_t) sh->handover == owner) {
            if (ngx_atomic_cmp_set(&sh->listener_pid, owner, ngx_pid)) {
                ngx_http_tenant_listen_claim(lst, 0);
            }
        }

        ngx_http_tenant_listen_arm(lst, NGX_HTTP_TENANT_LISTEN_CHECK, 1);
        return;
    }

    if (ngx_terminate) {
        ngx_http_tenant_listen_release(lst);
        return;
    }

    if ((ngx_pid_t) sh->listener_pid != ngx_pid) {

        /* handed over: listen on until the new holder listens */

        if ((ngx_pid_t) sh->listener_ready == (ngx_pid_t) sh->listener_pid
            || ngx_current_msec - lst->exiting
               > NGX_HTTP_TENANT_LISTEN_GIVE_UP)
        {
            lst->owner = 0;
            ngx_http_tenant_pg_listen_stop(lst->listener);
            lst->listener = NULL;

            ngx_log_error(NGX_LOG_INFO, ev->log, 0,
                          "tenant: listener handed over to pid %P",
                          (ngx_pid_t) sh->listener_pid);
            return;
        }

        ngx_http_tenant_listen_arm(lst, NGX_HTTP_TENANT_LISTEN_HANDOVER, 0);
        return;
    }

    if (ngx_exiting) {
        /* missed the quit hook (no connection was up then) */
        ngx_http_tenant_listen_hand_over(lst);
        return;
    }

    filter = lst->filter;

    if (filter && lst->filter_at
        && ngx_time() - lst->filter_at >= NGX_HTTP_TENANT_FILTER_RELOAD)
    {
        /* deleted hosts cannot leave a Bloom filter: start a clean one */
        ngx_http_tenant_listen_filter_want(lst);
    }

    if (filter && lst->filter_due) {
        if (filter->sh->loads != lst->filter_loads) {
            lst->filter_due = 0;

        } else if (sh->listener_ready == (ngx_atomic_uint_t) ngx_pid) {
            ngx_http_tenant_filter_load(filter);
        }
    }

    if (sh->listener_ready == (ngx_atomic_uint_t) ngx_pid) {
        ngx_http_tenant_probe_tick(lst->probe);
    }

    /*
     * Cancelable: the timer alone never holds an exiting worker back; the
     * quit hook decides whether a handover is worth waiting for.
     */
    ngx_http_tenant_listen_arm(lst, NGX_HTTP_TENANT_LISTEN_CHECK, 1);
}


static void
ngx_http_tenant_listen_quit(void *data)
{
    ngx_http_tenant_listen_t  *lst = data;

    if (lst->owner && (ngx_pid_t) lst->cache->sh->listener_pid == ngx_pid)
    {
        ngx_http_tenant_listen_hand_over(lst);
    }
}


/* the holder is exiting: wait for a newer worker, if one is coming */

static void
ngx_http_tenant_listen_hand_over(ngx_http_tenant_listen_t *lst)
{
    ngx_http_tenant_cache_sh_t  *sh;

    sh = lst->cache->sh;

    if (sh->configs == lst->cache->config) {
        ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                      "tenant: listener released, no newer configuration "
                      "to hand it to");
        ngx_http_tenant_listen_release(lst);
        return;
    }

    if (lst->exiting == 0) {
        lst->exiting = ngx_current_msec;
        sh->handover = ngx_pid;
    }

    if (ngx_current_msec - lst->exiting
        > NGX_HTTP_TENANT_LISTEN_GIVE_UP)
    {
        ngx_http_tenant_listen_release(lst);
        return;
    }

    ngx_http_tenant_listen_arm(lst, NGX_HTTP_TENANT_LISTEN_HANDOVER, 0);
}


static void
ngx_http_tenant_listen_claim(ngx_http_tenant_listen_t *lst, ngx_uint_t gap)
{
    lst->owner = 1;
    lst->gap = gap;

    ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                  "tenant: this worker listens for registry changes%s",
                  gap ? "" : " (handover)");

    lst->listener = ngx_http_tenant_pg_listen_start("LISTEN tenant_changed",
                                        ngx_http_tenant_listen_notify,
                                        ngx_http_tenant_listen_ready,
                                        ngx_http_tenant_listen_quit, lst);
    if (lst->listener == NULL) {
        /* released, so this or another worker claims it again */
        ngx_http_tenant_listen_release(lst);
    }
}


static void
ngx_http_tenant_listen_release(ngx_http_tenant_listen_t *lst)
{
    ngx_http_tenant_cache_sh_t  *sh;

    sh = lst->cache->sh;

    lst->owner = 0;
    ngx_http_tenant_pg_listen_stop(lst->listener);
    lst->listener = NULL;

    (void) ngx_atomic_cmp_set(&sh->listener_ready, ngx_pid, 0);
    (void) ngx_atomic_cmp_set(&sh->handover, ngx_pid, 0);
    (void) ngx_atomic_cmp_set(&sh->listener_pid, ngx_pid, 0);
}


static void
ngx_http_tenant_listen_arm(ngx_http_tenant_listen_t *lst, ngx_msec_t t,
    ngx_uint_t cancelable)
{
    lst->ev.cancelable = cancelable;

    if (lst->ev.timer_set) {
        ngx_del_timer(&lst->ev);
    }

    ngx_add_timer(&lst->ev, t);
}


static ngx_uint_t
ngx_http_tenant_listen_alive(ngx_pid_t pid)
{
    return kill(pid, 0) == 0 || ngx_errno == NGX_EPERM;
}


static void
ngx_http_tenant_listen_ready(void *data)
{
    ngx_http_tenant_listen_t  *lst = data;

    ngx_http_tenant_filter_t  *filter;

    if (!lst->owner) {
        return;
    }

    (void) ngx_atomic_fetch_add(&lst->cache->sh->listener_connects, 1);

    if (lst->gap) {
        ngx_http_tenant_cache_purge_all(lst->cache);

        ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                      "tenant: listening for registry changes; "
                      "cache invalidated, changes may have been missed");
    }

    /*
     * From now on every change arrives by NOTIFY, so the host filter can
     * be loaded: anything the load misses is added by its notification.
     * A gap may have missed some: it is loaded anew after one too.
     */
    filter = lst->filter;

    if (filter && (lst->gap || !filter->sh->ready)) {
        ngx_http_tenant_listen_filter_want(lst);
        ngx_http_tenant_filter_load(filter);
    }

    /* certificates too: every (re)connect may have missed a change */
    if (lst->certs) {
        ngx_http_tenant_certs_load(lst->certs);
        ngx_http_tenant_acme_load(lst->certs);
    }

    if (lst->jwt) {
        ngx_http_tenant_jwt_keys_load(lst->jwt);
    }

    /* from now on, a reconnect means a gap */
    lst->gap = 1;

    lst->cache->sh->listener_ready = ngx_pid;
    (void) ngx_atomic_cmp_set(&lst->cache->sh->handover,
                              lst->cache->sh->handover, 0);
}


/*
 * payload: "*", "<tenant>" or "<tenant> <host>" (see migration 002), a
 * certificate's "cert:<host>" (migration 008), the token keys' "jwt:*"
 * (migration 019), or an edge's "probe:..."
 */

static void
ngx_http_tenant_listen_notify(void *data, PGnotify *n)
{
    ngx_http_tenant_listen_t  *lst = data;

    u_char                    *p, *sp, *last;
    ngx_str_t                  tenant, host;
    ngx_http_tenant_cache_t   *cache;
    ngx_http_tenant_filter_t  *filter;

    cache = lst->cache;

    p = (u_char *) n->extra;
    last = p + ngx_strlen(p);

    /* not a change: not counted as one */
    if (last - p > 6 && ngx_strncmp(p, "probe:", 6) == 0) {
        ngx_http_tenant_probe_arrived(lst->probe, p + 6, last - p - 6);
        return;
    }

    (void) ngx_atomic_fetch_add(&cache->sh->notifications, 1);

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "tenant: changed \"%s\"", p);

    if (last - p == 1 && *p == '*') {
        ngx_http_tenant_cache_purge_all(cache);
        return;
    }


    /* "acme:<host> <token>" or "acme:*" */
    if (last - p > 5 && ngx_strncmp(p, "acme:", 5) == 0) {
        if (lst->certs) {
            ngx_http_tenant_acme_changed(lst->certs, p + 5, last - p - 5);
        }
        return;
    }

    /* "jwt:*": the token keys (migration 019) */
    if (last - p > 4 && ngx_strncmp(p, "jwt:", 4) == 0) {
        if (lst->jwt) {
            ngx_http_tenant_jwt_keys_load(lst->jwt);
        }
        return;
    }

    /* "cert:<host>" or "cert:*": no tenant name has a colon */
    if (last - p > 5 && ngx_strncmp(p, "cert:", 5) == 0) {
        if (lst->certs) {
            ngx_http_tenant_certs_changed(lst->certs, p + 5, last - p - 5);
        }
        return;
    }

    sp = ngx_strlchr(p, last, ' ');

    tenant.data = p;
    tenant.len = (sp ? sp : last) - p;

    filter = lst->filter;

    if (tenant.len) {
        ngx_http_tenant_cache_purge_tenant(cache, &tenant);

        if (filter) {
            ngx_http_tenant_filter_add(filter, 't', &tenant);
        }
    }

    if (sp) {
        host.data = sp + 1;
        host.len = last - host.data;

        if (host.len) {
            (void) ngx_http_tenant_cache_purge_host(cache, &host);

            if (filter) {
                ngx_http_tenant_filter_add(filter, 'h', &host);
            }
        }
    }
}
