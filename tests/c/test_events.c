/*
 * test_events: event-queue mode (WS_OPT_EVENT_QUEUE) through the public C
 * ABI, with real clients over loopback.
 *
 * - poll/event_fd: WS_ERR_STATE before listen and on a callback server;
 *   argument errors; timeouts (0 at once, 200 ms about that long, -1 wakes
 *   when an event arrives).
 * - WS_EVENT_OPEN carries an owned request (path, query, headers, peer,
 *   offered subprotocols) that stays valid across later polls until
 *   ws_event_free; ws_conn_accept with NULL (the server's choice), with an
 *   offered subprotocol (the 101 carries it), with one not offered
 *   (WS_ERR_INVALID_ARGUMENT); answering twice: WS_ERR_STATE.
 * - ws_conn_refuse(403): the client gets 403, no close event follows.
 * - An open left unanswered past WS_OPT_HANDSHAKE_TIMEOUT_MS: 503 for the
 *   client, a WARN log event, WS_EVENT_CLOSE 1006, then WS_ERR_CLOSED.
 * - WS_OPT_AUTO_ACCEPT: 101 without the host; the open is news only.
 * - Messages in order per connection, ev->data NUL-terminated, kinds;
 *   sends from the host thread between polls never block; user data set at
 *   the open comes back in every later event (close included) and from
 *   other threads, WS_ERR_CLOSED after the close.
 * - WS_EVENT_DRAIN after WS_BACKPRESSURE; WS_EVENT_ERROR for bad UTF-8,
 *   then close 1007.
 * - The event fd is level-triggered (taking one event per wake-up never
 *   stalls), not readable when the queue is empty, readable after close;
 *   after ws_server_close the remaining closes come out, then WS_ERR_CLOSED.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "client.h"
#include "evq.h"

typedef struct tag {
    const char *name;
} tag;

/* Drains what is there and expects nothing but log lines. */
static void expect_quiet(ws_server *srv, const char *when) {
    int n = evq_drain(srv);
    CHECK(n == 0, "%s: no unexpected event (%d)", when, n);
}

static void test_states(void) {
    ws_event *ev = (ws_event *)0x1;
    int fd = -7;
    /* A callback-mode server never has a queue. */
    ws_callbacks cb = {0};
    ws_server *cbs = ws_server_new(&cb, NULL);
    CHECK_RES(ws_server_poll(cbs, 0, &ev), WS_ERR_STATE);
    CHECK_RES(ws_server_event_fd(cbs, &fd), WS_ERR_STATE);
    CHECK_RES(ws_server_listen(cbs, "127.0.0.1", 0), WS_OK);
    CHECK_RES(ws_server_poll(cbs, 0, &ev), WS_ERR_STATE);
    CHECK_RES(ws_server_poll(cbs, 100, &ev), WS_ERR_STATE);
    CHECK_RES(ws_server_event_fd(cbs, &fd), WS_ERR_STATE);
    CHECK(ev == (ws_event *)0x1 && fd == -7, "outputs untouched on errors");
    ws_server_free(cbs);

    /* Event mode before listen. */
    ws_server *s = ws_server_new(NULL, NULL);
    CHECK_RES(ws_server_set_option(s, WS_OPT_EVENT_QUEUE, 1), WS_OK);
    CHECK_RES(ws_server_poll(s, 0, &ev), WS_ERR_STATE);
    CHECK_RES(ws_server_event_fd(s, &fd), WS_ERR_STATE);
    CHECK_RES(ws_server_listen(s, "127.0.0.1", 0), WS_OK);
    CHECK_RES(ws_server_set_option(s, WS_OPT_EVENT_QUEUE, 0), WS_ERR_STATE);
    CHECK_RES(ws_server_poll(s, 0, NULL), WS_ERR_NULL);
    CHECK_RES(ws_server_poll(NULL, 0, &ev), WS_ERR_NULL);
    CHECK_RES(ws_server_poll(s, -2, &ev), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_server_event_fd(s, NULL), WS_ERR_NULL);
    CHECK_RES(ws_server_event_fd(NULL, &fd), WS_ERR_NULL);
    CHECK_RES(ws_server_event_fd(s, &fd), WS_OK);
    CHECK(fd >= 0, "event fd %d", fd);
    int fd2 = -1;
    CHECK_RES(ws_server_event_fd(s, &fd2), WS_OK);
    CHECK_INT(fd2, fd);
    CHECK_RES(ws_conn_accept(s, 999, NULL), WS_ERR_NO_SUCH_CONN);
    CHECK_RES(ws_conn_refuse(s, 999, 403), WS_ERR_NO_SUCH_CONN);
    CHECK_RES(ws_conn_refuse(s, 999, 399), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_conn_refuse(s, 999, 600), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_conn_accept(NULL, 1, NULL), WS_ERR_NULL);
    CHECK_RES(ws_conn_refuse(NULL, 1, 403), WS_ERR_NULL);
    ws_event_free(NULL);
    ws_server_free(s);
}

static void test_timeouts(void) {
    evq_reset();
    uint16_t port;
    ws_server *s = evq_server(0, &port);
    evq_drain(s); /* e.g. a "listening" log line */
    int fd = -1;
    CHECK_RES(ws_server_event_fd(s, &fd), WS_OK);
    CHECK(!fd_readable(fd, 0), "event fd not readable while the queue is empty");
    ws_event *ev = NULL;
    int64_t t0 = now_ms();
    CHECK_RES(ws_server_poll(s, 0, &ev), WS_ERR_TIMEOUT);
    int64_t d0 = now_ms() - t0;
    CHECK(d0 < scaled(50), "poll(0) returns at once (%lld ms)", (long long)d0);
    CHECK(ev == NULL, "no event written on a timeout");
    t0 = now_ms();
    CHECK_RES(ws_server_poll(s, 200, &ev), WS_ERR_TIMEOUT);
    int64_t d200 = now_ms() - t0;
    CHECK(d200 >= 195 && d200 < 200 + scaled(300), "poll(200) waits about 200 ms (%lld ms)", (long long)d200);
    printf("poll(0): %lld ms, poll(200): %lld ms\n", (long long)d0, (long long)d200);

    /* -1 waits until an event arrives: a client connects 150 ms from now
     * (the opener thread sleeps first: the delay is the stimulus). */
    opener o = {0};
    o.delay_ms = 150;
    opener_start(&o, port, "/late", NULL);
    t0 = now_ms();
    int r = evq_poll(s, -1, &ev);
    int64_t dm1 = now_ms() - t0;
    CHECK_RES(r, WS_OK);
    if (r == WS_OK) {
        CHECK(ev->type == WS_EVENT_OPEN, "poll(-1) woke for the open (type %u)", ev->type);
        CHECK(dm1 >= 100, "poll(-1) waited for it (%lld ms)", (long long)dm1);
        CHECK_RES(evq_refuse(s, ev->conn, 403), WS_OK);
        ws_event_free(ev);
    }
    CHECK_INT(opener_join(&o), 403);
    wsc_free(&o.c);
    /* A positive timeout also returns as soon as an event arrives. */
    o.delay_ms = 50;
    opener_start(&o, port, "/late2", NULL);
    t0 = now_ms();
    ev = evq_wait(s, WS_EVENT_OPEN, 0, scaled(10000));
    int64_t dl = now_ms() - t0;
    if (CHECK(ev != NULL, "open of /late2")) {
        CHECK(dl < scaled(5000), "poll(10 s) returned when the open came (%lld ms)", (long long)dl);
        CHECK_RES(evq_refuse(s, ev->conn, 403), WS_OK);
        ws_event_free(ev);
    }
    CHECK_INT(opener_join(&o), 403);
    wsc_free(&o.c);
    o.delay_ms = 0;
    CHECK_RES(ws_server_close(s, (uint32_t)scaled(1000)), WS_OK);
    evq_drain(s);
    evq_check_invariants("timeouts");
    ws_server_free(s);
}

/* ---- opens, answers, requests, messages, user data ---- */

static ws_server *g_srv;

typedef struct probe {
    uint64_t conn;
    int result;
    void *value;
} probe;

static void *probe_user_data(void *arg) {
    probe *p = arg;
    p->value = NULL;
    p->result = ws_conn_user_data(g_srv, p->conn, &p->value);
    return NULL;
}

/* ws_conn_user_data from a fresh thread. */
static probe user_data_elsewhere(uint64_t conn) {
    probe p = {conn, 0, NULL};
    pthread_t th;
    pthread_create(&th, NULL, probe_user_data, &p);
    pthread_join(th, NULL);
    return p;
}

static void test_open_accept_messages(void) {
    evq_reset();
    uint16_t port;
    ws_server *s = ws_server_new(NULL, NULL);
    g_srv = s;
    const char *subs[] = {"superchat", "chat"};
    CHECK_RES(ws_server_set_option(s, WS_OPT_EVENT_QUEUE, 1), WS_OK);
    CHECK_RES(ws_server_set_subprotocols(s, subs, 2), WS_OK);
    CHECK_RES(ws_server_listen(s, "127.0.0.1", 0), WS_OK);
    CHECK_RES(ws_server_port(s, &port), WS_OK);
    evq_drain(s);
    int fd = -1;
    CHECK_RES(ws_server_event_fd(s, &fd), WS_OK);

    static tag ta = {"A"}, tb = {"B"}, tc = {"C"};
    opener a = {0}, b = {0}, c = {0};
    /* A: a request with everything in it; accepted with the subprotocol it offered first. */
    opener_start(&a, port, "/room/42?user=bob&x=1",
                 "X-Token: abc123\r\nSec-WebSocket-Protocol: chat, superchat\r\nX-Empty:\r\n");
    CHECK(fd_readable(fd, scaled(5000)), "event fd became readable for the open");
    ws_event *oa = evq_wait(s, WS_EVENT_OPEN, 0, scaled(5000));
    if (!CHECK(oa != NULL, "open of A")) {
        opener_join(&a);
        wsc_free(&a.c);
        ws_server_free(s);
        return;
    }
    uint64_t ia = oa->conn;
    CHECK(ia >= 1, "connection id %llu", (unsigned long long)ia);
    CHECK(oa->user_data == NULL, "no user data yet");
    CHECK(oa->request != NULL && oa->data != NULL && oa->len == 0 && oa->data[0] == '\0' && oa->code == 0,
          "open event: request set, empty NUL-terminated data");
    void *p = (void *)1;
    CHECK_RES(ws_conn_user_data(s, ia, &p), WS_OK);
    CHECK(p == NULL, "user data NULL until set");
    CHECK_RES(ws_conn_set_user_data(s, ia, &ta), WS_OK);
    CHECK_RES(ws_conn_accept(s, ia, "nope"), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_conn_accept(s, ia, "superchat2"), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_conn_accept(s, ia, "chat"), WS_OK);
    CHECK_RES(ws_conn_accept(s, ia, "chat"), WS_ERR_STATE);
    CHECK_RES(ws_conn_accept(s, ia, NULL), WS_ERR_STATE);
    CHECK_RES(ws_conn_refuse(s, ia, 403), WS_ERR_STATE);
    CHECK_INT(opener_join(&a), 101);
    char hv[128];
    CHECK_STR(wsc_answer_header(&a.c, "Sec-WebSocket-Protocol", hv, sizeof hv), "chat");

    /* B: offers both; accepted with NULL: the server's own preference. */
    opener_start(&b, port, "/b", "Sec-WebSocket-Protocol: chat, superchat\r\n");
    ws_event *ob = evq_wait(s, WS_EVENT_OPEN, 0, scaled(5000));
    uint64_t ib = ob ? ob->conn : 0;
    if (ob) {
        CHECK(ib != ia, "a new id for B");
        CHECK_RES(ws_conn_set_user_data(s, ib, &tb), WS_OK);
        CHECK_RES(ws_conn_accept(s, ib, NULL), WS_OK);
        ws_event_free(ob);
    }
    CHECK_INT(opener_join(&b), 101);
    CHECK_STR(wsc_answer_header(&b.c, "Sec-WebSocket-Protocol", hv, sizeof hv), "superchat");

    /* C: offers nothing; a subprotocol is refused, NULL accepted (none in the 101). Small receive buffer. */
    c.rcvbuf = 4096;
    opener_start(&c, port, "/c", NULL);
    ws_event *oc = evq_wait(s, WS_EVENT_OPEN, 0, scaled(5000));
    uint64_t ic = oc ? oc->conn : 0;
    if (oc) {
        CHECK(ws_request_offered_subprotocol(oc->request, 0) == NULL, "C offered nothing");
        CHECK(ws_request_subprotocol(oc->request) == NULL, "no subprotocol agreed for C");
        CHECK_RES(ws_conn_accept(s, ic, "chat"), WS_ERR_INVALID_ARGUMENT);
        CHECK_RES(ws_conn_set_user_data(s, ic, &tc), WS_OK);
        CHECK_RES(ws_conn_accept(s, ic, NULL), WS_OK);
        ws_event_free(oc);
    }
    CHECK_INT(opener_join(&c), 101);
    CHECK(wsc_answer_header(&c.c, "Sec-WebSocket-Protocol", hv, sizeof hv) == NULL, "no subprotocol in C's 101");
    expect_quiet(s, "after three opens");

    /* A's request is still valid after all those polls. */
    const ws_request *rq = oa->request;
    CHECK_STR(ws_request_path(rq), "/room/42");
    CHECK_STR(ws_request_query(rq), "user=bob&x=1");
    CHECK_STR(ws_request_header(rq, "x-token"), "abc123");
    CHECK_STR(ws_request_header(rq, "X-TOKEN"), "abc123");
    CHECK_STR(ws_request_header(rq, "x-empty"), "");
    CHECK(ws_request_header(rq, "X-Missing") == NULL, "missing header is NULL");
    CHECK_STR(ws_request_header(rq, "Upgrade"), "websocket");
    char peer[64];
    snprintf(peer, sizeof peer, "127.0.0.1:%u", (unsigned)a.c.local_port);
    CHECK_STR(ws_request_peer(rq), peer);
    CHECK_STR(ws_request_offered_subprotocol(rq, 0), "chat");
    CHECK_STR(ws_request_offered_subprotocol(rq, 1), "superchat");
    CHECK(ws_request_offered_subprotocol(rq, 2) == NULL, "NULL past the last offered subprotocol");
    CHECK(ws_request_offered_subprotocol(rq, (size_t)-1) == NULL, "NULL far past the end");
    CHECK(ws_request_offered_subprotocol(NULL, 0) == NULL, "NULL request: NULL");
    CHECK_STR(ws_request_subprotocol(rq), "superchat");
    CHECK(ws_request_client_subject(rq) == NULL, "no client certificate");
    ws_event_free(oa);

    /* Messages: A and B interleave text and binary, numbered; the host
     * echoes A's from this thread between polls. */
    enum { N = 60 };
    for (int i = 0; i < N; i++) {
        char m[32];
        snprintf(m, sizeof m, "A-%d", i);
        if (i % 2)
            wsc_send_frame(&a.c, WSC_BINARY, 1, m, strlen(m));
        else
            wsc_send_text(&a.c, m);
        snprintf(m, sizeof m, "B-%d", i);
        wsc_send_text(&b.c, m);
    }
    int next_a = 0, next_b = 0, bad_a = 0, bad_b = 0, bad_ud = 0;
    int64_t max_send = 0;
    int send_bad = 0;
    int64_t deadline = now_ms() + scaled(10000);
    while ((next_a < N || next_b < N) && now_ms() < deadline) {
        ws_event *ev;
        if (evq_poll(s, 100, &ev) != WS_OK) continue;
        if (ev->type == WS_EVENT_MESSAGE) {
            char want[32];
            if (ev->conn == ia) {
                snprintf(want, sizeof want, "A-%d", next_a);
                uint32_t kind = next_a % 2 ? WS_BINARY : WS_TEXT;
                if (ev->len != strlen(want) || strcmp((const char *)ev->data, want) != 0 || ev->kind != kind) bad_a++;
                if (ev->user_data != &ta) bad_ud++;
                int64_t t0 = now_ms();
                int r = ws_server_send(s, ia, ev->data, ev->len, ev->kind);
                int64_t d = now_ms() - t0;
                if (d > max_send) max_send = d;
                if (r != WS_OK) send_bad++;
                next_a++;
            } else if (ev->conn == ib) {
                snprintf(want, sizeof want, "B-%d", next_b);
                if (ev->len != strlen(want) || strcmp((const char *)ev->data, want) != 0 || ev->kind != WS_TEXT) bad_b++;
                if (ev->user_data != &tb) bad_ud++;
                next_b++;
            }
        }
        ws_event_free(ev);
    }
    CHECK_INT(next_a, N);
    CHECK_INT(next_b, N);
    CHECK_INT(bad_a, 0);
    CHECK_INT(bad_b, 0);
    CHECK_INT(bad_ud, 0);
    CHECK_INT(send_bad, 0);
    /* A reads its echoes in order. */
    int echo_bad = 0, echoed = 0;
    for (int i = 0; i < N; i++) {
        wsc_frame f;
        if (wsc_recv(&a.c, &f, scaled(5000)) != WSC_OK) break;
        char want[32];
        snprintf(want, sizeof want, "A-%d", i);
        if (f.len != strlen(want) || memcmp(f.data, want, f.len) != 0 || f.opcode != (i % 2 ? WSC_BINARY : WSC_TEXT))
            echo_bad++;
        echoed++;
        wsc_frame_free(&f);
    }
    CHECK_INT(echoed, N);
    CHECK_INT(echo_bad, 0);

    /* Sends to C, which does not read, from the host thread: none blocks. */
    enum { BIG = 64 * 1024, NBIG = 100 };
    unsigned char *big = calloc(BIG, 1);
    int ok = 0, bp = 0, dropped = 0, other = 0;
    max_send = 0;
    for (int i = 0; i < NBIG; i++) {
        int64_t t0 = now_ms();
        int r = ws_server_send(s, ic, big, BIG, WS_BINARY);
        int64_t d = now_ms() - t0;
        if (d > max_send) max_send = d;
        if (r == WS_OK) ok++;
        else if (r == WS_BACKPRESSURE) bp++;
        else if (r == WS_ERR_DROPPED) dropped++;
        else other++;
    }
    free(big);
    printf("sends to a client that does not read: %d ok, %d backpressure, %d dropped; slowest %lld ms\n", ok, bp,
           dropped, (long long)max_send);
    CHECK(max_send < scaled(100), "no send blocked (slowest %lld ms)", (long long)max_send);
    CHECK(bp > 0 && dropped > 0 && other == 0, "backpressure then drops (%d, %d, %d other)", bp, dropped, other);
    ws_event *warn = evq_wait(s, WS_EVENT_LOG, 0, scaled(5000));
    if (CHECK(warn != NULL, "a log event for the drops")) {
        CHECK(warn->code == WS_LOG_WARN && strstr((const char *)warn->data, "dropped") != NULL,
              "WARN about the drop: [%d] %s", warn->code, (const char *)warn->data);
        ws_event_free(warn);
    }

    /* User data from other threads. */
    probe pr = user_data_elsewhere(ia);
    CHECK(pr.result == WS_OK && pr.value == &ta, "A's user data from another thread");
    pr = user_data_elsewhere(ic);
    CHECK(pr.result == WS_OK && pr.value == &tc, "C's user data from another thread");

    /* A closes: the close carries its code, reason and user data, once. */
    wsc_send_close(&a.c, 1000, "done");
    CHECK_INT(wsc_recv_close(&a.c, scaled(5000), NULL, NULL, 0), 1000);
    ws_event *ca = evq_wait(s, WS_EVENT_CLOSE, ia, scaled(5000));
    if (CHECK(ca != NULL, "close of A")) {
        CHECK_INT(ca->code, 1000);
        CHECK(ca->len == 4 && strcmp((const char *)ca->data, "done") == 0, "close reason \"done\" (%s)",
              (const char *)ca->data);
        CHECK(ca->user_data == &ta, "the close carries A's user data");
        ws_event_free(ca);
    }
    p = (void *)0x5;
    CHECK_RES(ws_conn_user_data(s, ia, &p), WS_ERR_CLOSED);
    CHECK(p == (void *)0x5, "output untouched");
    CHECK_RES(ws_conn_set_user_data(s, ia, &tb), WS_ERR_CLOSED);
    pr = user_data_elsewhere(ia);
    CHECK(pr.result == WS_ERR_CLOSED, "A's user data from another thread after the close: %s",
          ws_result_name(pr.result));
    CHECK_RES(ws_conn_accept(s, ia, NULL), WS_ERR_CLOSED);
    CHECK_RES(ws_server_send(s, ia, (const uint8_t *)"x", 1, WS_TEXT), WS_ERR_CLOSED);

    /* B is closed by the server; the client answers. */
    CHECK_RES(ws_server_disconnect(s, ib, 4000, "kick"), WS_OK);
    char reason[64];
    CHECK_INT(wsc_recv_close(&b.c, scaled(5000), NULL, reason, sizeof reason), 4000);
    CHECK_STR(reason, "kick");
    wsc_send_close(&b.c, 4000, "kick");
    ws_event *cb = evq_wait(s, WS_EVENT_CLOSE, ib, scaled(5000));
    if (CHECK(cb != NULL, "close of B")) {
        CHECK_INT(cb->code, 4000);
        CHECK(cb->user_data == &tb, "the close carries B's user data");
        ws_event_free(cb);
    }
    /* C just goes away: 1006. */
    wsc_free(&c.c);
    ws_event *cc = evq_wait(s, WS_EVENT_CLOSE, ic, scaled(5000));
    if (CHECK(cc != NULL, "close of C")) {
        CHECK_INT(cc->code, 1006);
        CHECK(cc->user_data == &tc, "the close carries C's user data");
        ws_event_free(cc);
    }
    CHECK(EQ.conn[ia].messages == N && EQ.conn[ib].messages == N, "message counts");
    CHECK_RES(ws_server_close(s, (uint32_t)scaled(1000)), WS_OK);
    ws_event *ev;
    int r;
    while ((r = evq_poll(s, scaled(1000), &ev)) == WS_OK) ws_event_free(ev);
    CHECK_RES(r, WS_ERR_CLOSED);
    evq_check_invariants("open/accept/messages");
    wsc_free(&a.c);
    wsc_free(&b.c);
    ws_server_free(s);
}

/* ---- refusals and the handshake timeout ---- */

static void test_refuse_and_timeout(void) {
    evq_reset();
    uint16_t port;
    ws_server *s = ws_server_new(NULL, NULL);
    g_srv = s;
    int timeout = scaled(300);
    CHECK_RES(ws_server_set_option(s, WS_OPT_EVENT_QUEUE, 1), WS_OK);
    CHECK_RES(ws_server_set_option(s, WS_OPT_HANDSHAKE_TIMEOUT_MS, (uint64_t)timeout), WS_OK);
    CHECK_RES(ws_server_listen(s, "127.0.0.1", 0), WS_OK);
    CHECK_RES(ws_server_port(s, &port), WS_OK);
    evq_drain(s);

    /* Refused with 403: the client gets 403, and no close event follows. */
    opener d = {0};
    opener_start(&d, port, "/denied", NULL);
    ws_event *od = evq_wait(s, WS_EVENT_OPEN, 0, scaled(5000));
    uint64_t id = od ? od->conn : 0;
    if (od) {
        CHECK_RES(evq_refuse(s, id, 403), WS_OK);
        int again = ws_conn_refuse(s, id, 404);
        CHECK(again == WS_ERR_STATE || again == WS_ERR_CLOSED, "answering a refused open again: %s",
              ws_result_name(again));
        ws_event_free(od);
    }
    CHECK_INT(opener_join(&d), 403);
    CHECK_RES(ws_conn_accept(s, id, NULL), WS_ERR_CLOSED);
    CHECK_RES(ws_server_send(s, id, (const uint8_t *)"x", 1, WS_TEXT), WS_ERR_CLOSED);
    wsc_free(&d.c);

    /* Unanswered: 503 at the handshake timeout, a WARN log line, a 1006 close. */
    static tag te = {"E"};
    opener e = {0};
    opener_start(&e, port, "/silent", NULL);
    ws_event *oe = evq_wait(s, WS_EVENT_OPEN, 0, scaled(5000));
    int64_t t_open = now_ms();
    uint64_t ie = oe ? oe->conn : 0;
    ws_event_free(oe);
    CHECK(ie != 0 && ie != id, "open of E");
    CHECK_RES(ws_conn_set_user_data(s, ie, &te), WS_OK);
    int nlogs_before = evq_count_logs(WS_LOG_WARN, NULL);
    ws_event *ce = evq_wait(s, WS_EVENT_CLOSE, ie, timeout + scaled(5000));
    int64_t waited = now_ms() - t_open;
    if (CHECK(ce != NULL, "E's close after the handshake timeout")) {
        CHECK_INT(ce->code, 1006);
        CHECK(ce->user_data == &te, "E's close carries its user data");
        ws_event_free(ce);
    }
    printf("unanswered open closed after %lld ms (timeout %d ms)\n", (long long)waited, timeout);
    CHECK(waited >= timeout / 2 && waited < timeout + scaled(3000), "closed near the handshake timeout (%lld ms)",
          (long long)waited);
    CHECK_INT(opener_join(&e), 503);
    CHECK(evq_count_logs(WS_LOG_WARN, "handshake timeout") > 0 && evq_count_logs(WS_LOG_WARN, NULL) > nlogs_before,
          "a WARN log event mentions the handshake timeout");
    for (int i = 0; i < EQ.nlogs; i++)
        if (strstr(EQ.logs[i].message, "handshake timeout")) printf("log: [%d] %s\n", EQ.logs[i].level, EQ.logs[i].message);
    CHECK_RES(ws_conn_accept(s, ie, NULL), WS_ERR_CLOSED);
    CHECK_RES(ws_conn_refuse(s, ie, 403), WS_ERR_CLOSED);
    void *p = NULL;
    CHECK_RES(ws_conn_user_data(s, ie, &p), WS_ERR_CLOSED);
    wsc_free(&e.c);
    CHECK(EQ.conn[id].closed == 0, "no close event for the refused connection");
    CHECK_RES(ws_server_close(s, (uint32_t)scaled(1000)), WS_OK);
    ws_event *ev;
    int r;
    while ((r = evq_poll(s, scaled(1000), &ev)) == WS_OK) ws_event_free(ev);
    CHECK_RES(r, WS_ERR_CLOSED);
    CHECK(EQ.conn[id].closed == 0, "still no close event for the refused connection");
    evq_check_invariants("refuse/timeout");
    ws_server_free(s);
}

/* ---- auto-accept, errors, drain ---- */

static void test_auto_accept_error_drain(void) {
    evq_reset();
    uint16_t port;
    ws_server *s = ws_server_new(NULL, NULL);
    g_srv = s;
    CHECK_RES(ws_server_set_option(s, WS_OPT_EVENT_QUEUE, 1), WS_OK);
    CHECK_RES(ws_server_set_option(s, WS_OPT_AUTO_ACCEPT, 1), WS_OK);
    CHECK_RES(ws_server_set_option(s, WS_OPT_SEND_QUEUE_LIMIT, 16 * 1024), WS_OK);
    CHECK_RES(ws_server_listen(s, "127.0.0.1", 0), WS_OK);
    CHECK_RES(ws_server_port(s, &port), WS_OK);
    evq_drain(s);
    /* The handshake completes without the host polling. */
    wsc a;
    CHECK_INT(wsc_open(&a, "127.0.0.1", port, "/auto?q=1", NULL, 4096, scaled(5000)), 101);
    ws_event *oa = evq_wait(s, WS_EVENT_OPEN, 0, scaled(5000));
    uint64_t ia = oa ? oa->conn : 0;
    static tag ta = {"auto"};
    if (CHECK(oa != NULL, "auto-accepted open still arrives")) {
        CHECK_STR(ws_request_path(oa->request), "/auto");
        CHECK_STR(ws_request_query(oa->request), "q=1");
        CHECK_RES(ws_conn_accept(s, ia, NULL), WS_ERR_STATE);
        CHECK_RES(ws_conn_refuse(s, ia, 403), WS_ERR_STATE);
        CHECK_RES(ws_conn_set_user_data(s, ia, &ta), WS_OK);
        ws_event_free(oa);
    }

    /* Drain: the client does not read until the host sees WS_BACKPRESSURE. */
    enum { MSG = 4096, MAXN = 20000 };
    unsigned char m[MSG];
    int sent = 0, first_bp = -1, bad = 0;
    int64_t max_send = 0;
    for (int i = 0; i < MAXN; i++) {
        memset(m, (unsigned char)i, MSG);
        memcpy(m, &i, sizeof i);
        int64_t t0 = now_ms();
        int r = ws_server_send(s, ia, m, MSG, WS_BINARY);
        int64_t d = now_ms() - t0;
        if (d > max_send) max_send = d;
        if (r == WS_OK || r == WS_BACKPRESSURE) sent++;
        else bad++;
        if (r == WS_BACKPRESSURE) {
            first_bp = i;
            break;
        }
    }
    CHECK(first_bp >= 0 && bad == 0, "WS_BACKPRESSURE after %d messages (%d errors)", first_bp, bad);
    CHECK(max_send < scaled(100), "no send blocked (slowest %lld ms)", (long long)max_send);
    CHECK(EQ.conn[ia].drains == 0, "no drain yet");
    int got = 0, order_bad = 0;
    for (int i = 0; i < sent; i++) {
        wsc_frame f;
        if (wsc_recv(&a, &f, scaled(5000)) != WSC_OK) break;
        int seq = -1;
        if (f.len == MSG) memcpy(&seq, f.data, sizeof seq);
        if (seq != i) order_bad++;
        got++;
        wsc_frame_free(&f);
    }
    CHECK_INT(got, sent);
    CHECK_INT(order_bad, 0);
    ws_event *dr = evq_wait(s, WS_EVENT_DRAIN, ia, scaled(5000));
    if (CHECK(dr != NULL, "WS_EVENT_DRAIN after the client read")) {
        CHECK(dr->user_data == &ta && dr->len == 0, "drain carries the user data");
        ws_event_free(dr);
    }
    CHECK_INT(EQ.conn[ia].drains, 1);

    /* Bad UTF-8 from the client: WS_EVENT_ERROR, then the close with 1007. */
    wsc_send_text(&a, "fine");
    ws_event *mv = evq_wait(s, WS_EVENT_MESSAGE, ia, scaled(5000));
    if (CHECK(mv != NULL, "message before the error")) {
        CHECK(mv->kind == WS_TEXT && mv->len == 4 && strcmp((const char *)mv->data, "fine") == 0, "text \"fine\"");
        ws_event_free(mv);
    }
    const unsigned char bad_utf8[] = {'o', 'k', 0xff, 0xfe};
    wsc_send_frame(&a, WSC_TEXT, 1, bad_utf8, sizeof bad_utf8);
    CHECK_INT(wsc_recv_close(&a, scaled(5000), NULL, NULL, 0), 1007);
    wsc_send_close(&a, 1007, NULL);
    ws_event *er = evq_wait(s, WS_EVENT_ERROR, ia, scaled(5000));
    if (CHECK(er != NULL, "WS_EVENT_ERROR for bad UTF-8")) {
        CHECK(er->code == WS_ERR_INVALID_UTF8 || er->code == WS_ERR_PROTOCOL, "error code %s: %s",
              ws_result_name(er->code), (const char *)er->data);
        CHECK(er->len > 0 && er->user_data == &ta, "error has a message and the user data");
        ws_event_free(er);
    }
    ws_event *cl = evq_wait(s, WS_EVENT_CLOSE, ia, scaled(5000));
    if (CHECK(cl != NULL, "close after the error")) {
        CHECK_INT(cl->code, 1007);
        ws_event_free(cl);
    }
    CHECK_INT(EQ.conn[ia].errors, 1);
    wsc_free(&a);
    CHECK_RES(ws_server_close(s, (uint32_t)scaled(1000)), WS_OK);
    evq_drain(s);
    evq_check_invariants("auto-accept/error/drain");
    ws_server_free(s);
}

/* ---- the event fd, and ws_server_close ---- */

typedef struct closer {
    wsc *c;
    int code;
    pthread_t th;
} closer;

static void *close_answerer(void *arg) {
    closer *k = arg;
    k->code = wsc_recv_close(k->c, scaled(10000), NULL, NULL, 0);
    if (k->code > 0) wsc_send_close(k->c, k->code, NULL);
    return NULL;
}

static void test_fd_and_close(void) {
    evq_reset();
    uint16_t port;
    ws_server *s = evq_server(0, &port);
    g_srv = s;
    evq_drain(s);
    int fd = -1;
    CHECK_RES(ws_server_event_fd(s, &fd), WS_OK);
    CHECK(!fd_readable(fd, 0), "not readable before any client");

    enum { NC = 3, NM = 5 };
    opener o[NC];
    memset(o, 0, sizeof o);
    for (int i = 0; i < NC; i++) opener_start(&o[i], port, "/fd", NULL);
    /* Take exactly one event per wake-up: level-triggered, nothing stalls. */
    int opens = 0, stalls = 0, lies = 0;
    while (opens < NC) {
        if (!fd_readable(fd, scaled(5000))) {
            stalls++;
            break;
        }
        ws_event *ev;
        int r = evq_poll(s, 0, &ev);
        if (r != WS_OK) {
            lies++; /* readable, but nothing to take */
            continue;
        }
        if (ev->type == WS_EVENT_OPEN) {
            CHECK_RES(ws_conn_accept(s, ev->conn, NULL), WS_OK);
            opens++;
        }
        ws_event_free(ev);
    }
    for (int i = 0; i < NC; i++) CHECK_INT(opener_join(&o[i]), 101);
    for (int i = 0; i < NC; i++)
        for (int k = 0; k < NM; k++) wsc_send_text(&o[i].c, "tick");
    int msgs = 0, readable_with_more = 0;
    while (msgs < NC * NM) {
        if (!fd_readable(fd, scaled(5000))) {
            stalls++;
            break;
        }
        ws_event *ev;
        if (evq_poll(s, 0, &ev) != WS_OK) {
            lies++;
            continue;
        }
        if (ev->type == WS_EVENT_MESSAGE) msgs++;
        ws_event_free(ev);
        if (msgs < NC * NM && fd_readable(fd, 0)) readable_with_more++;
    }
    CHECK_INT(stalls, 0);
    CHECK_INT(lies, 0);
    CHECK_INT(msgs, NC * NM);
    printf("fd readable again right after taking one event (more pending): %d of %d\n", readable_with_more,
           NC * NM - 1);
    /* Everything taken, clients idle: not readable, and poll(0) agrees. */
    expect_quiet(s, "after the messages");
    CHECK(!fd_readable(fd, 0), "not readable once the queue is empty");

    /* A pending open at close time, and three clients that answer the close. */
    opener pend = {0};
    opener_start(&pend, port, "/pending", NULL);
    ws_event *op = evq_wait(s, WS_EVENT_OPEN, 0, scaled(5000));
    uint64_t ip = op ? op->conn : 0;
    ws_event_free(op);
    CHECK(ip != 0, "pending open seen");
    closer k[NC];
    for (int i = 0; i < NC; i++) {
        k[i].c = &o[i].c;
        k[i].code = 0;
        pthread_create(&k[i].th, NULL, close_answerer, &k[i]);
    }
    int64_t t0 = now_ms();
    CHECK_RES(ws_server_close(s, (uint32_t)scaled(3000)), WS_OK);
    printf("ws_server_close took %lld ms\n", (long long)(now_ms() - t0));
    for (int i = 0; i < NC; i++) {
        pthread_join(k[i].th, NULL);
        CHECK_INT(k[i].code, 1001);
    }
    CHECK_INT(opener_join(&pend), 503);
    CHECK(fd_readable(fd, 0), "event fd readable after ws_server_close");
    int closes = 0, r;
    ws_event *ev;
    while (fd_readable(fd, 0) && (r = evq_poll(s, 0, &ev)) == WS_OK) {
        if (ev->type == WS_EVENT_CLOSE) {
            closes++;
            CHECK(ev->code == (ev->conn == ip ? 1006 : 1001), "close of %llu: %d", (unsigned long long)ev->conn,
                  ev->code);
        }
        ws_event_free(ev);
    }
    CHECK_INT(closes, NC + 1);
    CHECK_RES(ws_server_poll(s, 0, &ev), WS_ERR_CLOSED);
    CHECK_RES(ws_server_poll(s, 100, &ev), WS_ERR_CLOSED);
    t0 = now_ms();
    CHECK_RES(ws_server_poll(s, -1, &ev), WS_ERR_CLOSED);
    CHECK(now_ms() - t0 < scaled(100), "poll(-1) on a closed, drained server returns at once");
    int fd2 = -1;
    CHECK_RES(ws_server_event_fd(s, &fd2), WS_OK);
    CHECK_INT(fd2, fd);
    CHECK_RES(ws_server_send(s, ip - 1, (const uint8_t *)"x", 1, WS_TEXT), WS_ERR_CLOSED);
    CHECK_RES(ws_conn_accept(s, ip, NULL), WS_ERR_CLOSED);
    CHECK_RES(ws_server_close(s, 0), WS_OK);
    evq_check_invariants("fd/close");
    for (int i = 0; i < NC; i++) wsc_free(&o[i].c);
    wsc_free(&pend.c);
    ws_server_free(s);
}

/* Once closed and drained, a server's event fd should read the same way
 * whatever the order: here one server is drained before the close ends,
 * the other after. The header: "It also becomes readable once the server
 * is closed, so the host polls the last events"; a host that takes one
 * event per wake-up (which level triggering allows) must be woken for the
 * final WS_ERR_CLOSED too. */
static void test_fd_after_close_drained(void) {
    int readable[2] = {0, 0};
    for (int order = 0; order < 2; order++) {
        evq_reset();
        uint16_t port;
        ws_server *s = evq_server(1, &port);
        int fd = -1;
        CHECK_RES(ws_server_event_fd(s, &fd), WS_OK);
        wsc c;
        CHECK_INT(wsc_open(&c, "127.0.0.1", port, "/x", NULL, 0, scaled(5000)), 101);
        wsc_free(&c); /* gone: a close event follows its open */
        if (order == 0) {
            /* Everything taken before the close. */
            ws_event *ce = evq_wait(s, WS_EVENT_CLOSE, 0, scaled(5000));
            CHECK(ce != NULL, "close event");
            ws_event_free(ce);
            evq_drain(s);
        }
        /* order 1: the open and close events still wait when the close ends. */
        CHECK_RES(ws_server_close(s, (uint32_t)scaled(1000)), WS_OK);
        ws_event *ev;
        while (evq_poll(s, 0, &ev) == WS_OK) ws_event_free(ev);
        CHECK_RES(ws_server_poll(s, 0, &ev), WS_ERR_CLOSED);
        readable[order] = fd_readable(fd, 0);
        ws_server_free(s);
    }
    CHECK(readable[0] && readable[1],
          "closed and drained: the event fd reads the same (readable) whether the last event was taken before "
          "(%d) or after (%d) the close", readable[0], readable[1]);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    test_states();
    test_timeouts();
    test_open_accept_messages();
    test_refuse_and_timeout();
    test_auto_accept_error_drain();
    test_fd_and_close();
    test_fd_after_close_drained();
    return check_summary("test_events");
}
