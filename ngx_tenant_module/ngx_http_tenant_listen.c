
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
#include "ngx_http_tenant_filter.h"
#include "ngx_http_tenant_listen.h"
#include "ngx_http_tenant_pg.h"


#define NGX_HTTP_TENANT_LISTEN_CHECK     250
#define NGX_HTTP_TENANT_LISTEN_HANDOVER  20
#define NGX_HTTP_TENANT_LISTEN_GIVE_UP   3000


static void ngx_http_tenant_listen_check(ngx_event_t *ev);
static void ngx_http_tenant_listen_claim(ngx_http_tenant_cache_sh_t *sh,
    ngx_uint_t gap);
static void ngx_http_tenant_listen_release(ngx_http_tenant_cache_sh_t *sh);
static void ngx_http_tenant_listen_arm(ngx_msec_t t, ngx_uint_t cancelable);
static ngx_uint_t ngx_http_tenant_listen_alive(ngx_pid_t pid);
static void ngx_http_tenant_listen_ready(void *data);
static void ngx_http_tenant_listen_notify(void *data, PGnotify *n);
static void ngx_http_tenant_listen_quit(void *data);
static void ngx_http_tenant_listen_hand_over(ngx_http_tenant_cache_t *cache);


static ngx_event_t       ngx_http_tenant_listen_ev;
static ngx_connection_t  ngx_http_tenant_listen_dumb;
static ngx_uint_t   ngx_http_tenant_listen_owner;
static ngx_uint_t   ngx_http_tenant_listen_gap;
static ngx_msec_t   ngx_http_tenant_listen_exiting;

static ngx_http_tenant_pg_listener_t  *ngx_http_tenant_listener;

/* the host filter is loaded anew at every (re)connect and this often */
#define NGX_HTTP_TENANT_FILTER_RELOAD  3600
static time_t       ngx_http_tenant_listen_filter_at;

/*
 * A load is due until one completes: the first attempt may find no pool
 * connection up yet (the listener reconnects first), or fail half-way.
 */
static ngx_uint_t         ngx_http_tenant_listen_filter_due;
static ngx_atomic_uint_t  ngx_http_tenant_listen_filter_loads;


static ngx_http_tenant_filter_t *
ngx_http_tenant_listen_filter(void)
{
    ngx_http_tenant_main_conf_t  *tmcf;

    tmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_tenant_module);

    return (tmcf && tmcf->filter_zone) ? tmcf->filter_zone->data : NULL;
}


/* a load is due from now until the filter's load count moves */

static void
ngx_http_tenant_listen_filter_want(ngx_http_tenant_filter_t *filter)
{
    ngx_http_tenant_listen_filter_at = ngx_time();
    ngx_http_tenant_listen_filter_due = 1;
    ngx_http_tenant_listen_filter_loads = filter->sh->loads;
}


void
ngx_http_tenant_listen_init_process(ngx_cycle_t *cycle)
{
    ngx_http_tenant_listen_ev.handler = ngx_http_tenant_listen_check;
    ngx_http_tenant_listen_ev.log = cycle->log;
    ngx_http_tenant_listen_dumb.fd = (ngx_socket_t) -1;
    ngx_http_tenant_listen_ev.data = &ngx_http_tenant_listen_dumb;

    ngx_http_tenant_listen_owner = 0;
    ngx_http_tenant_listen_exiting = 0;

    ngx_http_tenant_listen_arm(1, 1);
}


void
ngx_http_tenant_listen_exit_process(void)
{
    ngx_http_tenant_cache_t  *cache;

    cache = ngx_http_tenant_get_cache();

    if (cache && ngx_http_tenant_listen_owner) {
        ngx_http_tenant_listen_release(cache->sh);
    }
}


static void
ngx_http_tenant_listen_check(ngx_event_t *ev)
{
    ngx_pid_t                    owner;
    ngx_http_tenant_cache_t     *cache;
    ngx_http_tenant_filter_t    *filter;
    ngx_http_tenant_cache_sh_t  *sh;

    cache = ngx_http_tenant_get_cache();
    sh = cache->sh;

    if (!ngx_http_tenant_listen_owner) {

        if (ngx_exiting || ngx_terminate || ngx_quit) {
            return;
        }

        owner = (ngx_pid_t) sh->listener_pid;

        if (owner == 0 || !ngx_http_tenant_listen_alive(owner)) {
            if (ngx_atomic_cmp_set(&sh->listener_pid, owner, ngx_pid)) {
                ngx_http_tenant_listen_claim(sh, 1);
            }

        } else if ((ngx_pid_t) sh->handover == owner) {
            if (ngx_atomic_cmp_set(&sh->listener_pid, owner, ngx_pid)) {
                ngx_http_tenant_listen_claim(sh, 0);
            }
        }

        ngx_http_tenant_listen_arm(NGX_HTTP_TENANT_LISTEN_CHECK, 1);
        return;
    }

    if (ngx_terminate) {
        ngx_http_tenant_listen_release(sh);
        return;
    }

    if ((ngx_pid_t) sh->listener_pid != ngx_pid) {

        /* handed over: listen on until the new holder listens */

        if ((ngx_pid_t) sh->listener_ready == (ngx_pid_t) sh->listener_pid
            || ngx_current_msec - ngx_http_tenant_listen_exiting
               > NGX_HTTP_TENANT_LISTEN_GIVE_UP)
        {
            ngx_http_tenant_listen_owner = 0;
            ngx_http_tenant_pg_listen_stop(ngx_http_tenant_listener);
            ngx_http_tenant_listener = NULL;

            ngx_log_error(NGX_LOG_INFO, ev->log, 0,
                          "tenant: listener handed over to pid %P",
                          (ngx_pid_t) sh->listener_pid);
            return;
        }

        ngx_http_tenant_listen_arm(NGX_HTTP_TENANT_LISTEN_HANDOVER, 0);
        return;
    }

    if (ngx_exiting) {
        /* missed the quit hook (no connection was up then) */
        ngx_http_tenant_listen_hand_over(cache);
        return;
    }

    filter = ngx_http_tenant_listen_filter();

    if (filter && ngx_http_tenant_listen_filter_at
        && ngx_time() - ngx_http_tenant_listen_filter_at
           >= NGX_HTTP_TENANT_FILTER_RELOAD)
    {
        /* deleted hosts cannot leave a Bloom filter: start a clean one */
        ngx_http_tenant_listen_filter_want(filter);
    }

    if (filter && ngx_http_tenant_listen_filter_due) {
        if (filter->sh->loads != ngx_http_tenant_listen_filter_loads) {
            ngx_http_tenant_listen_filter_due = 0;

        } else if (sh->listener_ready == (ngx_atomic_uint_t) ngx_pid) {
            ngx_http_tenant_filter_load(filter);
        }
    }

    /*
     * Cancelable: the timer alone never holds an exiting worker back; the
     * quit hook decides whether a handover is worth waiting for.
     */
    ngx_http_tenant_listen_arm(NGX_HTTP_TENANT_LISTEN_CHECK, 1);
}


static void
ngx_http_tenant_listen_quit(void *data)
{
    ngx_http_tenant_cache_t  *cache;

    cache = ngx_http_tenant_get_cache();

    if (ngx_http_tenant_listen_owner
        && (ngx_pid_t) cache->sh->listener_pid == ngx_pid)
    {
        ngx_http_tenant_listen_hand_over(cache);
    }
}


/* the holder is exiting: wait for a newer worker, if one is coming */

static void
ngx_http_tenant_listen_hand_over(ngx_http_tenant_cache_t *cache)
{
    ngx_http_tenant_cache_sh_t  *sh;

    sh = cache->sh;

    if (sh->configs == cache->config) {
        ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                      "tenant: listener released, no newer configuration "
                      "to hand it to");
        ngx_http_tenant_listen_release(sh);
        return;
    }

    if (ngx_http_tenant_listen_exiting == 0) {
        ngx_http_tenant_listen_exiting = ngx_current_msec;
        sh->handover = ngx_pid;
    }

    if (ngx_current_msec - ngx_http_tenant_listen_exiting
        > NGX_HTTP_TENANT_LISTEN_GIVE_UP)
    {
        ngx_http_tenant_listen_release(sh);
        return;
    }

    ngx_http_tenant_listen_arm(NGX_HTTP_TENANT_LISTEN_HANDOVER, 0);
}


static void
ngx_http_tenant_listen_claim(ngx_http_tenant_cache_sh_t *sh, ngx_uint_t gap)
{
    ngx_http_tenant_listen_owner = 1;
    ngx_http_tenant_listen_gap = gap;

    ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                  "tenant: this worker listens for registry changes%s",
                  gap ? "" : " (handover)");

    ngx_http_tenant_listener = ngx_http_tenant_pg_listen_start(
                                           "LISTEN tenant_changed",
                                           ngx_http_tenant_listen_notify,
                                           ngx_http_tenant_listen_ready,
                                           ngx_http_tenant_listen_quit, NULL);
    if (ngx_http_tenant_listener == NULL) {
        /* released, so this or another worker claims it again */
        ngx_http_tenant_listen_release(sh);
    }
}


static void
ngx_http_tenant_listen_release(ngx_http_tenant_cache_sh_t *sh)
{
    ngx_http_tenant_listen_owner = 0;
    ngx_http_tenant_pg_listen_stop(ngx_http_tenant_listener);
    ngx_http_tenant_listener = NULL;

    (void) ngx_atomic_cmp_set(&sh->listener_ready, ngx_pid, 0);
    (void) ngx_atomic_cmp_set(&sh->handover, ngx_pid, 0);
    (void) ngx_atomic_cmp_set(&sh->listener_pid, ngx_pid, 0);
}


static void
ngx_http_tenant_listen_arm(ngx_msec_t t, ngx_uint_t cancelable)
{
    ngx_http_tenant_listen_ev.cancelable = cancelable;

    if (ngx_http_tenant_listen_ev.timer_set) {
        ngx_del_timer(&ngx_http_tenant_listen_ev);
    }

    ngx_add_timer(&ngx_http_tenant_listen_ev, t);
}


static ngx_uint_t
ngx_http_tenant_listen_alive(ngx_pid_t pid)
{
    return kill(pid, 0) == 0 || ngx_errno == NGX_EPERM;
}


static void
ngx_http_tenant_listen_ready(void *data)
{
    ngx_http_tenant_cache_t   *cache;
    ngx_http_tenant_filter_t  *filter;

    cache = ngx_http_tenant_get_cache();

    if (!ngx_http_tenant_listen_owner) {
        return;
    }

    if (ngx_http_tenant_listen_gap) {
        ngx_http_tenant_cache_purge_all(cache);

        ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                      "tenant: listening for registry changes; "
                      "cache invalidated, changes may have been missed");
    }

    /*
     * From now on every change arrives by NOTIFY, so the host filter can
     * be loaded: anything the load misses is added by its notification.
     * A gap may have missed some: it is loaded anew after one too.
     */
    filter = ngx_http_tenant_listen_filter();

    if (filter && (ngx_http_tenant_listen_gap || !filter->sh->ready)) {
        ngx_http_tenant_listen_filter_want(filter);
        ngx_http_tenant_filter_load(filter);
    }

    /* from now on, a reconnect means a gap */
    ngx_http_tenant_listen_gap = 1;

    cache->sh->listener_ready = ngx_pid;
    (void) ngx_atomic_cmp_set(&cache->sh->handover, cache->sh->handover, 0);
}


/* payload: "*", "<tenant>" or "<tenant> <host>" (see migration 002) */

static void
ngx_http_tenant_listen_notify(void *data, PGnotify *n)
{
    u_char                    *p, *sp, *last;
    ngx_str_t                  tenant, host;
    ngx_http_tenant_cache_t   *cache;
    ngx_http_tenant_filter_t  *filter;

    cache = ngx_http_tenant_get_cache();

    (void) ngx_atomic_fetch_add(&cache->sh->notifications, 1);

    p = (u_char *) n->extra;
    last = p + ngx_strlen(p);

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "tenant: changed \"%s\"", p);

    if (last - p == 1 && *p == '*') {
        ngx_http_tenant_cache_purge_all(cache);
        return;
    }

    sp = ngx_strlchr(p, last, ' ');

    tenant.data = p;
    tenant.len = (sp ? sp : last) - p;

    filter = ngx_http_tenant_listen_filter();

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
