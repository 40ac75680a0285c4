#define _GNU_SOURCE
#include "events.h"

#include <stdio.h>
#include <string.h>

#include "check.h"
#include "client.h"

events EV;
pthread_mutex_t ev_mu = PTHREAD_MUTEX_INITIALIZER;

void events_reset(void) {
    pthread_mutex_lock(&ev_mu);
    memset(&EV, 0, sizeof EV);
    pthread_mutex_unlock(&ev_mu);
}

static void check_thread(void) {
    char name[32] = "";
    pthread_getname_np(pthread_self(), name, sizeof name);
    if (strcmp(name, "wsserver-io") != 0) EV.wrong_thread++;
}

static ev_conn *slot(uint64_t conn) {
    if (conn == 0 || conn >= EV_MAX_CONN) {
        EV.bad_id++;
        return NULL;
    }
    if (conn > EV.max_id) EV.max_id = conn;
    return &EV.conn[conn];
}

void ev_enter(uint64_t conn, int is_open) {
    pthread_mutex_lock(&ev_mu);
    if (EV.in_callback) EV.concurrent++;
    EV.in_callback++;
    if (EV.shut) EV.after_shutdown++;
    check_thread();
    ev_conn *c = slot(conn);
    if (c != NULL) {
        if (!c->thread_set) {
            c->thread = pthread_self();
            c->thread_set = 1;
        } else if (!pthread_equal(c->thread, pthread_self())) {
            c->moved++;
        }
        if (is_open) {
            if (c->opened || c->refused || c->closed || c->messages) EV.reused++;
        } else if (!c->opened || c->closed) {
            c->late++;
        }
    }
    pthread_mutex_unlock(&ev_mu);
}

void ev_leave(void) {
    pthread_mutex_lock(&ev_mu);
    EV.in_callback--;
    pthread_mutex_unlock(&ev_mu);
}

void events_shutdown(void) {
    pthread_mutex_lock(&ev_mu);
    EV.shut = 1;
    pthread_mutex_unlock(&ev_mu);
}

ev_conn ev_get(uint64_t conn) {
    ev_conn copy;
    memset(&copy, 0, sizeof copy);
    pthread_mutex_lock(&ev_mu);
    if (conn > 0 && conn < EV_MAX_CONN) copy = EV.conn[conn];
    pthread_mutex_unlock(&ev_mu);
    return copy;
}

int ev_count_logs(ws_log_level max_level, const char *needle) {
    int n = 0;
    pthread_mutex_lock(&ev_mu);
    for (int i = 0; i < EV.nlogs; i++) {
        if (EV.logs[i].level <= max_level && (needle == NULL || strstr(EV.logs[i].message, needle))) n++;
    }
    pthread_mutex_unlock(&ev_mu);
    return n;
}

void ev_record_open(uint64_t conn, int accepted) {
    pthread_mutex_lock(&ev_mu);
    ev_conn *c = slot(conn);
    if (c) {
        if (accepted)
            c->opened++;
        else
            c->refused++;
    }
    if (accepted) EV.last_open = conn;
    pthread_mutex_unlock(&ev_mu);
}

ws_callbacks ev_callbacks(int (*on_open)(void *, uint64_t, const ws_request *),
                          void (*on_message)(void *, uint64_t, const uint8_t *, size_t, ws_kind)) {
    ws_callbacks cb = {0};
    cb.on_open = on_open;
    cb.on_message = on_message;
    cb.on_close = ev_on_close;
    cb.on_error = ev_on_error;
    cb.on_drain = ev_on_drain;
    cb.on_log = ev_on_log;
    return cb;
}

void ev_forget_open(void) {
    pthread_mutex_lock(&ev_mu);
    EV.last_open = 0;
    pthread_mutex_unlock(&ev_mu);
}

uint64_t ev_wait_open(int timeout_ms) {
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        pthread_mutex_lock(&ev_mu);
        uint64_t id = EV.last_open;
        pthread_mutex_unlock(&ev_mu);
        if (id != 0 || now_ms() >= deadline) return id;
        sleep_ms(1);
    }
}

void ev_record_message(uint64_t conn) {
    pthread_mutex_lock(&ev_mu);
    ev_conn *c = slot(conn);
    if (c) c->messages++;
    pthread_mutex_unlock(&ev_mu);
}

void ev_on_close(void *ud, uint64_t conn, uint16_t code, const char *reason, size_t reason_len) {
    (void)ud;
    ev_enter(conn, 0);
    pthread_mutex_lock(&ev_mu);
    ev_conn *c = slot(conn);
    if (c) {
        c->closed++;
        c->close_code = code;
        size_t n = reason_len < sizeof c->close_reason - 1 ? reason_len : sizeof c->close_reason - 1;
        if (reason) memcpy(c->close_reason, reason, n);
        c->close_reason[n] = '\0';
        c->close_reason_len = reason_len;
        c->close_reason_nul = reason != NULL && reason[reason_len] == '\0';
    }
    pthread_mutex_unlock(&ev_mu);
    ev_leave();
}

void ev_on_error(void *ud, uint64_t conn, ws_result error, const char *message) {
    (void)ud;
    ev_enter(conn, 0);
    pthread_mutex_lock(&ev_mu);
    ev_conn *c = slot(conn);
    if (c) {
        c->errors++;
        c->last_error = error;
        snprintf(c->error_message, sizeof c->error_message, "%s", message ? message : "(NULL)");
    }
    pthread_mutex_unlock(&ev_mu);
    ev_leave();
}

void ev_on_drain(void *ud, uint64_t conn) {
    (void)ud;
    ev_enter(conn, 0);
    pthread_mutex_lock(&ev_mu);
    ev_conn *c = slot(conn);
    if (c) c->drains++;
    pthread_mutex_unlock(&ev_mu);
    ev_leave();
}

void ev_on_log(void *ud, ws_log_level level, const char *message) {
    (void)ud;
    pthread_mutex_lock(&ev_mu);
    if (EV.shut) EV.after_shutdown++;
    if (EV.nlogs < EV_MAX_LOG) {
        EV.logs[EV.nlogs].level = level;
        snprintf(EV.logs[EV.nlogs].message, sizeof EV.logs[EV.nlogs].message, "%s", message ? message : "(NULL)");
        EV.nlogs++;
    }
    pthread_mutex_unlock(&ev_mu);
    if (getenv("WSTEST_VERBOSE")) fprintf(stderr, "  [log %u] %s\n", (unsigned)level, message);
}

void ev_check_invariants(const char *when) {
    pthread_mutex_lock(&ev_mu);
    events e = EV;
    pthread_mutex_unlock(&ev_mu);
    int late = 0, multi_close = 0, unclosed = 0, both = 0, moved = 0;
    for (uint64_t i = 1; i <= e.max_id && i < EV_MAX_CONN; i++) {
        late += e.conn[i].late;
        moved += e.conn[i].moved;
        if (e.conn[i].closed > 1) multi_close++;
        if (e.conn[i].opened && e.conn[i].closed == 0) unclosed++;
        if (e.conn[i].refused && (e.conn[i].closed || e.conn[i].messages || e.conn[i].errors)) both++;
    }
    CHECK(e.bad_id == 0, "%s: no callback with id 0 or a huge id (%d)", when, e.bad_id);
    CHECK(e.reused == 0, "%s: no connection id reused (%d)", when, e.reused);
    CHECK(e.concurrent == 0, "%s: callbacks never ran concurrently with 1 thread (%d)", when, e.concurrent);
    CHECK(e.wrong_thread == 0, "%s: callbacks ran on \"wsserver-io\" threads (%d elsewhere)", when, e.wrong_thread);
    CHECK(late == 0, "%s: no event before on_open or after on_close (%d)", when, late);
    CHECK(moved == 0, "%s: each connection's callbacks ran on one thread (%d on another)", when, moved);
    CHECK(multi_close == 0, "%s: on_close at most once per connection (%d twice)", when, multi_close);
    CHECK(unclosed == 0, "%s: every opened connection got on_close (%d did not)", when, unclosed);
    CHECK(both == 0, "%s: refused connections got no further event (%d did)", when, both);
    CHECK(e.after_shutdown == 0, "%s: no callback after ws_server_close returned (%d)", when, e.after_shutdown);
}

int ev_wait(int (*cond)(void *), void *arg, int timeout_ms) {
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        pthread_mutex_lock(&ev_mu);
        int ok = cond(arg);
        pthread_mutex_unlock(&ev_mu);
        if (ok) return 1;
        if (now_ms() >= deadline) return 0;
        sleep_ms(2);
    }
}

static int closed_cond(void *arg) {
    uint64_t id = *(uint64_t *)arg;
    return id > 0 && id < EV_MAX_CONN && EV.conn[id].closed > 0;
}

int ev_wait_closed(uint64_t conn, int timeout_ms) { return ev_wait(closed_cond, &conn, timeout_ms); }

uint64_t ev_open_client(wsc *c, uint16_t port, const char *target, int rcvbuf) {
    ev_forget_open();
    int status = wsc_open(c, "127.0.0.1", port, target, NULL, rcvbuf, scaled(5000));
    if (!CHECK(status == 101, "handshake for %s: %d %s", target, status, c->why)) return 0;
    uint64_t id = ev_wait_open(scaled(5000));
    CHECK(id != 0, "on_open seen");
    return id;
}

void ev_stop_server(ws_server *srv, uint32_t grace_ms, const char *when) {
    CHECK_RES(ws_server_close(srv, grace_ms), WS_OK);
    events_shutdown();
    ev_check_invariants(when);
    ws_server_free(srv);
}
