#define _GNU_SOURCE
#include "evq.h"

#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "check.h"

evq EQ;

void evq_reset(void) { memset(&EQ, 0, sizeof EQ); }

void evq_track(const ws_event *ev) {
    EQ.events++;
    if (ev->data == NULL || ev->data[ev->len] != '\0') EQ.bad++;
    if (ev->type == WS_EVENT_LOG) {
        if (ev->conn != 0 || ev->request != NULL || ev->user_data != NULL) EQ.bad++;
        if (EQ.nlogs < EVQ_MAX_LOG) {
            EQ.logs[EQ.nlogs].level = ev->code;
            snprintf(EQ.logs[EQ.nlogs].message, sizeof EQ.logs[EQ.nlogs].message, "%s",
                     ev->data ? (const char *)ev->data : "");
            EQ.nlogs++;
        }
        if (getenv("WSTEST_VERBOSE")) fprintf(stderr, "  [log %d] %s\n", ev->code, (const char *)ev->data);
        return;
    }
    if (ev->conn == 0 || ev->conn >= EVQ_MAX_CONN) {
        EQ.bad_id++;
        return;
    }
    evq_conn *c = &EQ.conn[ev->conn];
    if ((ev->type == WS_EVENT_OPEN) != (ev->request != NULL)) EQ.bad++;
    if (ev->type != WS_EVENT_MESSAGE && ev->kind != 0) EQ.bad++;
    switch (ev->type) {
    case WS_EVENT_OPEN:
        if (c->opened || c->closed || c->messages) EQ.reopened++;
        c->opened++;
        if (ev->len != 0) EQ.bad++;
        return;
    case WS_EVENT_MESSAGE:
        if (ev->kind != WS_TEXT && ev->kind != WS_BINARY) EQ.bad++;
        c->messages++;
        break;
    case WS_EVENT_CLOSE:
        c->close_code = ev->code;
        break;
    case WS_EVENT_ERROR:
        c->errors++;
        c->error_code = ev->code;
        if (ev->code >= 0 || ev->len == 0) EQ.bad++;
        break;
    case WS_EVENT_DRAIN:
        c->drains++;
        break;
    default:
        EQ.bad++;
    }
    if (!c->opened || c->closed) c->late++;
    if (ev->type == WS_EVENT_CLOSE) c->closed++;
}

int evq_poll(ws_server *srv, int timeout_ms, ws_event **out) {
    *out = NULL;
    int r = ws_server_poll(srv, timeout_ms, out);
    if (r == WS_OK) evq_track(*out);
    return r;
}

ws_event *evq_wait(ws_server *srv, uint32_t type, uint64_t conn, int timeout_ms) {
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        int left = (int)(deadline - now_ms());
        if (left < 0) return NULL;
        ws_event *ev;
        int r = evq_poll(srv, left, &ev);
        if (r == WS_ERR_TIMEOUT) continue;
        if (r != WS_OK) return NULL;
        if (ev->type == type && (conn == 0 || ev->conn == conn)) return ev;
        ws_event_free(ev);
    }
}

int evq_drain(ws_server *srv) {
    int n = 0;
    ws_event *ev;
    while (evq_poll(srv, 0, &ev) == WS_OK) {
        if (ev->type != WS_EVENT_LOG) n++;
        ws_event_free(ev);
    }
    return n;
}

int evq_count_logs(int max_level, const char *needle) {
    int n = 0;
    for (int i = 0; i < EQ.nlogs; i++)
        if (EQ.logs[i].level <= max_level && (needle == NULL || strstr(EQ.logs[i].message, needle))) n++;
    return n;
}

void evq_check_invariants(const char *when) {
    int late = 0, multi = 0, unclosed = 0, refused_closed = 0;
    for (int i = 1; i < EVQ_MAX_CONN; i++) {
        late += EQ.conn[i].late;
        if (EQ.conn[i].closed > 1) multi++;
        if (EQ.conn[i].opened && !EQ.conn[i].closed && !EQ.conn[i].refused) unclosed++;
        if (EQ.conn[i].refused && (EQ.conn[i].closed || EQ.conn[i].messages || EQ.conn[i].errors)) refused_closed++;
    }
    CHECK(EQ.bad == 0, "%s: every event well formed (data NUL-terminated, request only on opens) (%d bad)", when,
          EQ.bad);
    CHECK(EQ.bad_id == 0, "%s: connection events carry a connection id (%d without)", when, EQ.bad_id);
    CHECK(EQ.reopened == 0, "%s: one open per connection id (%d again)", when, EQ.reopened);
    CHECK(late == 0, "%s: no event before the open or after the close (%d)", when, late);
    CHECK(multi == 0, "%s: at most one close per connection (%d twice)", when, multi);
    CHECK(refused_closed == 0, "%s: no event after a refusal (%d)", when, refused_closed);
    CHECK(unclosed == 0, "%s: every opened connection got its close (%d did not)", when, unclosed);
}

int evq_refuse(ws_server *srv, uint64_t conn, uint16_t status) {
    int r = ws_conn_refuse(srv, conn, status);
    if (r == WS_OK && conn > 0 && conn < EVQ_MAX_CONN) EQ.conn[conn].refused = 1;
    return r;
}

ws_server *evq_server(int auto_accept, uint16_t *port) {
    ws_server *s = ws_server_new(NULL, NULL);
    CHECK_RES(ws_server_set_option(s, WS_OPT_EVENT_QUEUE, 1), WS_OK);
    CHECK_RES(ws_server_set_option(s, WS_OPT_AUTO_ACCEPT, (uint64_t)auto_accept), WS_OK);
    CHECK_RES(ws_server_set_option(s, WS_OPT_CLOSE_TIMEOUT_MS, (uint64_t)scaled(3000)), WS_OK);
    CHECK_RES(ws_server_listen(s, "127.0.0.1", 0), WS_OK);
    CHECK_RES(ws_server_port(s, port), WS_OK);
    return s;
}

int fd_readable(int fd, int timeout_ms) {
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
}

static void *opener_run(void *arg) {
    opener *o = arg;
    if (o->delay_ms > 0) sleep_ms(o->delay_ms);
    o->status = wsc_open(&o->c, "127.0.0.1", o->port, o->target, o->extra[0] ? o->extra : NULL, o->rcvbuf,
                         scaled(10000));
    return NULL;
}

void opener_start(opener *o, uint16_t port, const char *target, const char *extra) {
    int rcvbuf = o->rcvbuf, delay = o->delay_ms;
    memset(o, 0, sizeof *o);
    o->c.fd = -1;
    o->rcvbuf = rcvbuf;
    o->delay_ms = delay;
    o->port = port;
    snprintf(o->target, sizeof o->target, "%s", target);
    snprintf(o->extra, sizeof o->extra, "%s", extra ? extra : "");
    o->status = -1;
    pthread_create(&o->th, NULL, opener_run, o);
}

int opener_join(opener *o) {
    pthread_join(o->th, NULL);
    return o->status;
}
