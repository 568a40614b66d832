
/*
 * Non-blocking PostgreSQL: PQconnectStart/PQconnectPoll, PQsendQueryParams,
 * PQflush, PQconsumeInput/PQisBusy/PQgetResult, all on nginx events, so a
 * worker never waits for the registry.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include "ngx_http_tenant_pg.h"


#define NGX_HTTP_TENANT_PG_DOWN        0
#define NGX_HTTP_TENANT_PG_CONNECTING  1
#define NGX_HTTP_TENANT_PG_IDLE        2
#define NGX_HTTP_TENANT_PG_BUSY        3


typedef struct {
    PGconn                         *conn;
    ngx_connection_t               *connection;
    ngx_uint_t                      state;
    PostgresPollingStatusType       poll;
    ngx_http_tenant_pg_query_t     *query;
    PGresult                       *result;
    ngx_event_t                     timer;    /* connect timeout or retry */
    ngx_msec_t                      backoff;
    ngx_uint_t                      failures; /* in a row */
    time_t                          logged;   /* the last failure logged */

    /* a LISTEN connection runs its command on every connect */
    ngx_http_tenant_pg_listener_t  *listener;
    unsigned                        listening:1;
} ngx_http_tenant_pg_conn_t;


struct ngx_http_tenant_pg_listener_s {
    ngx_http_tenant_pg_conn_t       conn;
    ngx_http_tenant_pg_query_t      query;
    ngx_http_tenant_pg_notify_pt    notify;
    ngx_http_tenant_pg_listening_pt listening;
    ngx_http_tenant_pg_quit_pt      quit;
    void                           *data;
    ngx_queue_t                     queue;
};


static void ngx_http_tenant_pg_connect(ngx_http_tenant_pg_conn_t *pc);
static void ngx_http_tenant_pg_connect_step(ngx_http_tenant_pg_conn_t *pc);
static ngx_int_t ngx_http_tenant_pg_watch(ngx_http_tenant_pg_conn_t *pc,
    ngx_uint_t rd, ngx_uint_t wr);
static void ngx_http_tenant_pg_unwatch(ngx_http_tenant_pg_conn_t *pc);
static void ngx_http_tenant_pg_event_handler(ngx_event_t *ev);
static void ngx_http_tenant_pg_timer_handler(ngx_event_t *ev);
static void ngx_http_tenant_pg_query_timeout(ngx_event_t *ev);
static void ngx_http_tenant_pg_exec(ngx_http_tenant_pg_conn_t *pc,
    ngx_http_tenant_pg_query_t *q);
static void ngx_http_tenant_pg_flush(ngx_http_tenant_pg_conn_t *pc);
static void ngx_http_tenant_pg_read(ngx_http_tenant_pg_conn_t *pc);
static void ngx_http_tenant_pg_finish(ngx_http_tenant_pg_query_t *q,
    PGresult *res);
static void ngx_http_tenant_pg_fail(ngx_http_tenant_pg_conn_t *pc,
    const char *what);
static void ngx_http_tenant_pg_dispatch(void);
static ngx_uint_t ngx_http_tenant_pg_alive(void);
static void ngx_http_tenant_pg_arm(ngx_http_tenant_pg_query_t *q);
static void ngx_http_tenant_pg_listen_done(ngx_http_tenant_pg_query_t *q,
    PGresult *res);
static void ngx_http_tenant_pg_notifies(ngx_http_tenant_pg_conn_t *pc);


static ngx_http_tenant_pg_conn_t  *ngx_http_tenant_pg_conns;
static ngx_uint_t                  ngx_http_tenant_pg_nconns;
static ngx_queue_t                 ngx_http_tenant_pg_queue;
static ngx_uint_t                  ngx_http_tenant_pg_nqueued;
static char                       *ngx_http_tenant_pg_conninfo;
static ngx_msec_t                  ngx_http_tenant_pg_timeout;
static ngx_msec_t                  ngx_http_tenant_pg_retry;
static ngx_log_t                  *ngx_http_tenant_pg_log;

static ngx_queue_t                       ngx_http_tenant_pg_listeners;

/*
 * Debug logging reads a timer's data as a connection (ngx_event_ident());
 * timers point at this one and find their owner by offsetof().
 */
static ngx_connection_t                  ngx_http_tenant_pg_dumb;


ngx_int_t
ngx_http_tenant_pg_init_process(ngx_cycle_t *cycle, ngx_str_t *conninfo,
    ngx_uint_t n, ngx_msec_t timeout, ngx_msec_t retry)
{
    ngx_uint_t                  i;
    ngx_http_tenant_pg_conn_t  *pc;

    ngx_http_tenant_pg_conninfo = ngx_pnalloc(cycle->pool, conninfo->len + 1);
    if (ngx_http_tenant_pg_conninfo == NULL) {
        return NGX_ERROR;
    }

    (void) ngx_cpystrn((u_char *) ngx_http_tenant_pg_conninfo, conninfo->data,
                       conninfo->len + 1);

    ngx_http_tenant_pg_conns = ngx_pcalloc(cycle->pool,
                                     n * sizeof(ngx_http_tenant_pg_conn_t));
    if (ngx_http_tenant_pg_conns == NULL) {
        return NGX_ERROR;
    }

    ngx_http_tenant_pg_nconns = n;
    ngx_http_tenant_pg_timeout = timeout;
    ngx_http_tenant_pg_retry = retry;
    ngx_http_tenant_pg_log = cycle->log;
    ngx_queue_init(&ngx_http_tenant_pg_queue);
    ngx_queue_init(&ngx_http_tenant_pg_listeners);
    ngx_http_tenant_pg_dumb.fd = (ngx_socket_t) -1;

    for (i = 0; i < n; i++) {
        pc = &ngx_http_tenant_pg_conns[i];

        pc->timer.handler = ngx_http_tenant_pg_timer_handler;
        pc->timer.data = &ngx_http_tenant_pg_dumb;
        pc->timer.log = cycle->log;
        pc->timer.cancelable = 1;

        /* connect now, so the first request for a host does not pay for it */
        ngx_http_tenant_pg_connect(pc);
    }

    return NGX_OK;
}


void
ngx_http_tenant_pg_exit_process(void)
{
    ngx_uint_t                  i;
    ngx_http_tenant_pg_conn_t  *pc;

    for (i = 0; i < ngx_http_tenant_pg_nconns; i++) {
        pc = &ngx_http_tenant_pg_conns[i];

        if (pc->timer.timer_set) {
            ngx_del_timer(&pc->timer);
        }

        ngx_http_tenant_pg_unwatch(pc);

        if (pc->conn) {
            PQfinish(pc->conn);
            pc->conn = NULL;
        }
    }

    ngx_http_tenant_pg_nconns = 0;

    while (ngx_http_tenant_pg_listeners.next
           && !ngx_queue_empty(&ngx_http_tenant_pg_listeners))
    {
        ngx_http_tenant_pg_listen_stop(ngx_queue_data(
                          ngx_queue_head(&ngx_http_tenant_pg_listeners),
                          ngx_http_tenant_pg_listener_t, queue));
    }
}


/*
 * Queues or runs a query.  NGX_DECLINED means no connection is up or coming
 * up, so the caller answers at once instead of waiting for a timeout.
 */

ngx_int_t
ngx_http_tenant_pg_send(ngx_http_tenant_pg_query_t *q)
{
    if (!ngx_http_tenant_pg_alive()) {
        return NGX_DECLINED;
    }

    ngx_http_tenant_pg_arm(q);

    ngx_queue_insert_tail(&ngx_http_tenant_pg_queue, &q->queue);
    ngx_http_tenant_pg_nqueued++;

    ngx_http_tenant_pg_dispatch();

    return NGX_OK;
}


static void
ngx_http_tenant_pg_arm(ngx_http_tenant_pg_query_t *q)
{
    ngx_memzero(&q->timer, sizeof(ngx_event_t));
    q->timer.handler = ngx_http_tenant_pg_query_timeout;
    q->timer.data = &ngx_http_tenant_pg_dumb;
    q->timer.log = ngx_http_tenant_pg_log;
    q->conn = NULL;

    ngx_add_timer(&q->timer, ngx_http_tenant_pg_timeout);
}


/*
 * A LISTEN connection is not part of the pool: it runs its command on every
 * connect and reports when it listens, so the caller can tell that
 * notifications may have been missed in between.  Listeners are allocated
 * with malloc: they outlive requests and are freed when stopped.
 */

ngx_http_tenant_pg_listener_t *
ngx_http_tenant_pg_listen_start(const char *command,
    ngx_http_tenant_pg_notify_pt notify,
    ngx_http_tenant_pg_listening_pt listening,
    ngx_http_tenant_pg_quit_pt quit, void *data)
{
    ngx_http_tenant_pg_conn_t      *pc;
    ngx_http_tenant_pg_listener_t  *l;

    l = ngx_calloc(sizeof(ngx_http_tenant_pg_listener_t),
                   ngx_http_tenant_pg_log);
    if (l == NULL) {
        return NULL;
    }

    pc = &l->conn;

    pc->listener = l;
    pc->timer.handler = ngx_http_tenant_pg_timer_handler;
    pc->timer.data = &ngx_http_tenant_pg_dumb;
    pc->timer.log = ngx_http_tenant_pg_log;
    pc->timer.cancelable = 1;

    l->query.sql = command;
    l->query.handler = ngx_http_tenant_pg_listen_done;
    l->query.data = pc;
    l->notify = notify;
    l->listening = listening;
    l->quit = quit;
    l->data = data;

    ngx_queue_insert_tail(&ngx_http_tenant_pg_listeners, &l->queue);

    ngx_http_tenant_pg_connect(pc);

    return l;
}


void
ngx_http_tenant_pg_listen_stop(ngx_http_tenant_pg_listener_t *l)
{
    ngx_http_tenant_pg_conn_t   *pc;
    ngx_http_tenant_pg_query_t  *q;

    if (l == NULL) {
        return;
    }

    pc = &l->conn;

    ngx_queue_remove(&l->queue);

    if (pc->timer.timer_set) {
        ngx_del_timer(&pc->timer);
    }

    q = pc->query;
    pc->query = NULL;

    if (q && q->timer.timer_set) {
        ngx_del_timer(&q->timer);
    }

    if (pc->result) {
        PQclear(pc->result);
        pc->result = NULL;
    }

    ngx_http_tenant_pg_unwatch(pc);

    if (pc->conn) {
        PQfinish(pc->conn);
        pc->conn = NULL;
    }

    ngx_free(l);
}


ngx_uint_t
ngx_http_tenant_pg_listen_ready(ngx_http_tenant_pg_listener_t *l)
{
    return l && l->conn.listening;
}


static void
ngx_http_tenant_pg_listen_done(ngx_http_tenant_pg_query_t *q, PGresult *res)
{
    ngx_http_tenant_pg_conn_t  *pc = q->data;

    if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
        /* a failed connection reconnects by itself; a refused LISTEN must */
        if (pc->state == NGX_HTTP_TENANT_PG_IDLE) {
            ngx_http_tenant_pg_fail(pc, "LISTEN failed");
        }
        return;
    }

    pc->listening = 1;

    pc->listener->listening(pc->listener->data);

    /* notifications may have come with the LISTEN answer */
    ngx_http_tenant_pg_notifies(pc);
}


static void
ngx_http_tenant_pg_notifies(ngx_http_tenant_pg_conn_t *pc)
{
    PGnotify  *n;

    while (pc->conn && (n = PQnotifies(pc->conn)) != NULL) {
        pc->listener->notify(pc->listener->data, n);
        PQfreemem(n);
    }
}


void
ngx_http_tenant_pg_stats(ngx_http_tenant_pg_stats_t *st)
{
    ngx_uint_t  i;

    ngx_memzero(st, sizeof(ngx_http_tenant_pg_stats_t));

    st->total = ngx_http_tenant_pg_nconns;
    st->queued = ngx_http_tenant_pg_nqueued;

    for (i = 0; i < ngx_http_tenant_pg_nconns; i++) {
        switch (ngx_http_tenant_pg_conns[i].state) {
        case NGX_HTTP_TENANT_PG_IDLE:
            st->idle++;
            break;
        case NGX_HTTP_TENANT_PG_BUSY:
            st->busy++;
            break;
        case NGX_HTTP_TENANT_PG_CONNECTING:
            st->connecting++;
            break;
        default:
            st->down++;
        }
    }
}


static ngx_uint_t
ngx_http_tenant_pg_alive(void)
{
    ngx_uint_t  i;

    for (i = 0; i < ngx_http_tenant_pg_nconns; i++) {
        if (ngx_http_tenant_pg_conns[i].state != NGX_HTTP_TENANT_PG_DOWN) {
            return 1;
        }
    }

    return 0;
}


static void
ngx_http_tenant_pg_dispatch(void)
{
    ngx_uint_t                   i;
    ngx_queue_t                 *qq;
    ngx_http_tenant_pg_conn_t   *pc;
    ngx_http_tenant_pg_query_t  *q;

    for (i = 0; i < ngx_http_tenant_pg_nconns; i++) {

        if (ngx_queue_empty(&ngx_http_tenant_pg_queue)) {
            return;
        }

        pc = &ngx_http_tenant_pg_conns[i];

        if (pc->state != NGX_HTTP_TENANT_PG_IDLE) {
            continue;
        }

        qq = ngx_queue_head(&ngx_http_tenant_pg_queue);
        ngx_queue_remove(qq);
        ngx_http_tenant_pg_nqueued--;

        q = ngx_queue_data(qq, ngx_http_tenant_pg_query_t, queue);

        ngx_http_tenant_pg_exec(pc, q);
    }

    /* nothing can serve the queue any more: answer it now */

    if (!ngx_http_tenant_pg_alive()) {
        while (!ngx_queue_empty(&ngx_http_tenant_pg_queue)) {
            qq = ngx_queue_head(&ngx_http_tenant_pg_queue);
            ngx_queue_remove(qq);
            ngx_http_tenant_pg_nqueued--;

            q = ngx_queue_data(qq, ngx_http_tenant_pg_query_t, queue);
            ngx_http_tenant_pg_finish(q, NULL);
        }
    }
}


static void
ngx_http_tenant_pg_connect(ngx_http_tenant_pg_conn_t *pc)
{
    pc->conn = PQconnectStart(ngx_http_tenant_pg_conninfo);

    if (pc->conn == NULL || PQstatus(pc->conn) == CONNECTION_BAD) {
        ngx_http_tenant_pg_fail(pc, "PQconnectStart() failed");
        return;
    }

    if (PQsetnonblocking(pc->conn, 1) == -1) {
        ngx_http_tenant_pg_fail(pc, "PQsetnonblocking() failed");
        return;
    }

    pc->state = NGX_HTTP_TENANT_PG_CONNECTING;
    pc->poll = PGRES_POLLING_WRITING;

    ngx_add_timer(&pc->timer, ngx_http_tenant_pg_timeout);

    if (ngx_http_tenant_pg_watch(pc, 0, 1) != NGX_OK) {
        ngx_http_tenant_pg_fail(pc, "cannot watch the registry socket");
    }
}


/*
 * libpq may close its socket and open another while connecting (next
 * address, SSL or GSS fallback), often under the same descriptor number, so
 * the socket is unwatched before every PQconnectPoll() and watched anew.
 */

static void
ngx_http_tenant_pg_connect_step(ngx_http_tenant_pg_conn_t *pc)
{
    ngx_http_tenant_pg_unwatch(pc);

    pc->poll = PQconnectPoll(pc->conn);

    switch (pc->poll) {

    case PGRES_POLLING_READING:
        if (ngx_http_tenant_pg_watch(pc, 1, 0) != NGX_OK) {
            ngx_http_tenant_pg_fail(pc, "cannot watch the registry socket");
        }
        return;

    case PGRES_POLLING_WRITING:
        if (ngx_http_tenant_pg_watch(pc, 0, 1) != NGX_OK) {
            ngx_http_tenant_pg_fail(pc, "cannot watch the registry socket");
        }
        return;

    case PGRES_POLLING_OK:
        break;

    default:
        ngx_http_tenant_pg_fail(pc, "cannot connect");
        return;
    }

    if (pc->timer.timer_set) {
        ngx_del_timer(&pc->timer);
    }

    if (ngx_http_tenant_pg_watch(pc, 1, 0) != NGX_OK) {
        ngx_http_tenant_pg_fail(pc, "cannot watch the registry socket");
        return;
    }

    if (pc->failures) {
        ngx_log_error(NGX_LOG_NOTICE, ngx_http_tenant_pg_log, 0,
                      "tenant: registry reachable again after %ui failed "
                      "attempts", pc->failures);

    } else {
        ngx_log_error(NGX_LOG_INFO, ngx_http_tenant_pg_log, 0,
                      "tenant: connected to the registry");
    }

    pc->state = NGX_HTTP_TENANT_PG_IDLE;
    pc->backoff = 0;
    pc->failures = 0;

    if (pc->listener) {
        ngx_http_tenant_pg_arm(&pc->listener->query);
        ngx_http_tenant_pg_exec(pc, &pc->listener->query);
        return;
    }

    ngx_http_tenant_pg_dispatch();
}


static ngx_int_t
ngx_http_tenant_pg_watch(ngx_http_tenant_pg_conn_t *pc, ngx_uint_t rd,
    ngx_uint_t wr)
{
    ngx_socket_t       fd;
    ngx_connection_t  *c;

    c = pc->connection;

    if (c == NULL) {
        fd = PQsocket(pc->conn);
        if (fd == -1) {
            return NGX_ERROR;
        }

        c = ngx_get_connection(fd, ngx_http_tenant_pg_log);
        if (c == NULL) {
            return NGX_ERROR;
        }

        c->data = pc;

        /*
         * A graceful shutdown (nginx -s quit, or the old workers of a
         * reload) "closes" idle connections by calling their read handler
         * with c->close set: the one moment a listener learns of it
         * without a timer that would hold the worker back.
         */
        c->idle = (pc->listener && pc->listener->quit) ? 1 : 0;

        c->read->handler = ngx_http_tenant_pg_event_handler;
        c->write->handler = ngx_http_tenant_pg_event_handler;
        c->read->log = ngx_http_tenant_pg_log;
        c->write->log = ngx_http_tenant_pg_log;

        pc->connection = c;
    }

    /* level-triggered: libpq reads in its own buffer sizes */

    if (rd && !c->read->active) {
        if (ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else if (!rd && c->read->active) {
        if (ngx_del_event(c->read, NGX_READ_EVENT, 0) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (wr && !c->write->active) {
        if (ngx_add_event(c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else if (!wr && c->write->active) {
        if (ngx_del_event(c->write, NGX_WRITE_EVENT, 0) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * Drops nginx's hold on the socket; libpq owns and closes it.  libpq closes
 * it by itself when the server goes away (PQsocket() is then -1): the
 * kernel has dropped it from epoll already, so no syscall is made for it.
 */

static void
ngx_http_tenant_pg_unwatch(ngx_http_tenant_pg_conn_t *pc)
{
    ngx_uint_t         flags;
    ngx_connection_t  *c;

    c = pc->connection;

    if (c == NULL) {
        return;
    }

    flags = (pc->conn && PQsocket(pc->conn) == c->fd) ? 0 : NGX_CLOSE_EVENT;

    if (c->read->active) {
        (void) ngx_del_event(c->read, NGX_READ_EVENT, flags);
    }

    if (c->write->active) {
        (void) ngx_del_event(c->write, NGX_WRITE_EVENT, flags);
    }

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    c->fd = (ngx_socket_t) -1;
    ngx_free_connection(c);

    pc->connection = NULL;
}


static void
ngx_http_tenant_pg_event_handler(ngx_event_t *ev)
{
    ngx_connection_t           *c;
    ngx_http_tenant_pg_conn_t  *pc;

    c = ev->data;
    pc = c->data;

    if (c->close) {
        c->close = 0;

        if (pc->listener && pc->listener->quit) {
            /* may stop the listener, and free pc with it */
            pc->listener->quit(pc->listener->data);
            return;
        }
    }

    switch (pc->state) {

    case NGX_HTTP_TENANT_PG_CONNECTING:
        ngx_http_tenant_pg_connect_step(pc);
        return;

    case NGX_HTTP_TENANT_PG_BUSY:
        if (ev->write) {
            ngx_http_tenant_pg_flush(pc);
            return;
        }

        ngx_http_tenant_pg_read(pc);
        return;

    case NGX_HTTP_TENANT_PG_IDLE:
        /* notifications, or the server closing the connection */
        if (PQconsumeInput(pc->conn) == 0
            || PQstatus(pc->conn) != CONNECTION_OK)
        {
            ngx_http_tenant_pg_fail(pc, "connection lost");
            return;
        }

        if (pc->listener) {
            ngx_http_tenant_pg_notifies(pc);
        }

        return;
    }
}


static void
ngx_http_tenant_pg_timer_handler(ngx_event_t *ev)
{
    ngx_http_tenant_pg_conn_t  *pc;

    pc = (ngx_http_tenant_pg_conn_t *)
             ((u_char *) ev - offsetof(ngx_http_tenant_pg_conn_t, timer));

    if (pc->state == NGX_HTTP_TENANT_PG_CONNECTING) {
        ngx_http_tenant_pg_fail(pc, "connect timed out");
        return;
    }

    if (pc->state == NGX_HTTP_TENANT_PG_DOWN) {
        ngx_http_tenant_pg_connect(pc);
    }
}


static void
ngx_http_tenant_pg_query_timeout(ngx_event_t *ev)
{
    ngx_http_tenant_pg_query_t  *q;

    q = (ngx_http_tenant_pg_query_t *)
            ((u_char *) ev - offsetof(ngx_http_tenant_pg_query_t, timer));

    if (q->conn) {
        /*
         * PQcancel() blocks, so a slow query costs its connection; the
         * connection is made again in the background.
         */
        ngx_http_tenant_pg_fail(q->conn, "query timed out");
        return;
    }

    ngx_queue_remove(&q->queue);
    ngx_http_tenant_pg_nqueued--;

    ngx_http_tenant_pg_finish(q, NULL);
}


static void
ngx_http_tenant_pg_exec(ngx_http_tenant_pg_conn_t *pc,
    ngx_http_tenant_pg_query_t *q)
{
    pc->state = NGX_HTTP_TENANT_PG_BUSY;
    pc->query = q;
    q->conn = pc;

    if (PQsendQueryParams(pc->conn, q->sql, q->nparams, NULL, q->params,
                          NULL, NULL, 0)
        == 0)
    {
        ngx_http_tenant_pg_fail(pc, "PQsendQueryParams() failed");
        return;
    }

    ngx_http_tenant_pg_flush(pc);
}


static void
ngx_http_tenant_pg_flush(ngx_http_tenant_pg_conn_t *pc)
{
    switch (PQflush(pc->conn)) {

    case 0:
        if (ngx_http_tenant_pg_watch(pc, 1, 0) != NGX_OK) {
            ngx_http_tenant_pg_fail(pc, "cannot watch the registry socket");
        }
        return;

    case 1:
        if (ngx_http_tenant_pg_watch(pc, 1, 1) != NGX_OK) {
            ngx_http_tenant_pg_fail(pc, "cannot watch the registry socket");
        }
        return;

    default:
        ngx_http_tenant_pg_fail(pc, "PQflush() failed");
    }
}


static void
ngx_http_tenant_pg_read(ngx_http_tenant_pg_conn_t *pc)
{
    PGresult                    *res;
    ngx_http_tenant_pg_query_t  *q;

    if (PQconsumeInput(pc->conn) == 0) {
        ngx_http_tenant_pg_fail(pc, "PQconsumeInput() failed");
        return;
    }

    /*
     * The result may be complete while ReadyForQuery is still in flight:
     * keep it until PQgetResult() says the query is done.
     */

    while (!PQisBusy(pc->conn)) {
        res = PQgetResult(pc->conn);

        if (res != NULL) {
            if (pc->result == NULL) {
                pc->result = res;

            } else {
                PQclear(res);
            }

            continue;
        }

        q = pc->query;
        res = pc->result;

        pc->query = NULL;
        pc->result = NULL;
        pc->state = NGX_HTTP_TENANT_PG_IDLE;

        /* error results go to the handler too: it maps SQLSTATEs */

        if (res && PQresultStatus(res) != PGRES_TUPLES_OK
            && PQresultStatus(res) != PGRES_COMMAND_OK)
        {
            ngx_log_error(NGX_LOG_INFO, ngx_http_tenant_pg_log, 0,
                          "tenant: registry query failed: %s",
                          PQresultErrorMessage(res));
        }

        ngx_http_tenant_pg_finish(q, res);

        if (res) {
            PQclear(res);
        }

        ngx_http_tenant_pg_dispatch();
        return;
    }
}


static void
ngx_http_tenant_pg_finish(ngx_http_tenant_pg_query_t *q, PGresult *res)
{
    if (q->timer.timer_set) {
        ngx_del_timer(&q->timer);
    }

    q->conn = NULL;

    q->handler(q, res);
}


static void
ngx_http_tenant_pg_fail(ngx_http_tenant_pg_conn_t *pc, const char *what)
{
    ngx_msec_t                   prev;
    ngx_http_tenant_pg_query_t  *q;

    /* capped exponential backoff: a registry that is down is not hammered */

    prev = pc->backoff;
    pc->backoff = pc->backoff ? ngx_min(pc->backoff * 2,
                                        ngx_http_tenant_pg_retry)
                              : ngx_min(50, ngx_http_tenant_pg_retry);

    /*
     * A lasting failure is logged once per backoff step, then once a
     * minute at the cap: the log says what is wrong without flooding.
     */
    pc->failures++;

    if (pc->backoff != prev || ngx_time() - pc->logged >= 60) {
        pc->logged = ngx_time();
        ngx_log_error(NGX_LOG_ERR, ngx_http_tenant_pg_log, 0,
                      "tenant: registry %s (attempt %ui, next in %Mms): %s",
                      what, pc->failures, pc->backoff,
                      pc->conn ? PQerrorMessage(pc->conn) : "out of memory");
    }

    ngx_http_tenant_pg_unwatch(pc);

    if (pc->conn) {
        PQfinish(pc->conn);
        pc->conn = NULL;
    }

    if (pc->result) {
        PQclear(pc->result);
        pc->result = NULL;
    }

    q = pc->query;
    pc->query = NULL;
    pc->state = NGX_HTTP_TENANT_PG_DOWN;
    pc->listening = 0;

    if (pc->timer.timer_set) {
        ngx_del_timer(&pc->timer);
    }

    if (!ngx_exiting && !ngx_terminate && !ngx_quit) {
        ngx_add_timer(&pc->timer, pc->backoff);
    }

    if (q) {
        ngx_http_tenant_pg_finish(q, NULL);
    }

    ngx_http_tenant_pg_dispatch();
}
