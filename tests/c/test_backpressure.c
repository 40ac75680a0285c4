/*
 * test_backpressure: a client that does not read, a small
 * WS_OPT_SEND_QUEUE_LIMIT and hard limit. Sends return WS_BACKPRESSURE,
 * then WS_ERR_DROPPED at the hard limit (policy 0: the connection stays
 * open and the queued messages all arrive, in order, once the client
 * reads; on_drain fires), ws_server_queued_bytes grows; with
 * WS_OPT_OVERFLOW_POLICY 1013 (and 1008) the overflow closes the
 * connection with that code, reported by on_error and on_close.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "client.h"
#include "events.h"

enum { SOFT = 16 * 1024, HARD = 256 * 1024, MSG = 4096, MAX_SENDS = 40000 };

static ws_server *srv;
static uint16_t port;

static int on_open(void *ud, uint64_t conn, const ws_request *req) {
    (void)ud;
    (void)req;
    ev_enter(conn, 1);
    ev_record_open(conn, 1);
    ev_leave();
    return 0;
}

static void on_message(void *ud, uint64_t conn, const uint8_t *data, size_t len, ws_kind kind) {
    (void)ud;
    ev_enter(conn, 0);
    ev_record_message(conn);
    ws_server_send(srv, conn, data, len, kind);
    ev_leave();
}

static ws_server *start(uint64_t policy) {
    ws_callbacks cb = ev_callbacks(on_open, on_message);
    events_reset();
    ws_server *s = ws_server_new(&cb, NULL);
    CHECK_RES(ws_server_set_option(s, WS_OPT_SEND_QUEUE_LIMIT, SOFT), WS_OK);
    CHECK_RES(ws_server_set_option(s, WS_OPT_SEND_QUEUE_HARD_LIMIT, HARD), WS_OK);
    CHECK_RES(ws_server_set_option(s, WS_OPT_OVERFLOW_POLICY, policy), WS_OK);
    CHECK_RES(ws_server_set_option(s, WS_OPT_CLOSE_TIMEOUT_MS, (uint64_t)scaled(5000)), WS_OK);
    CHECK_RES(ws_server_listen(s, "127.0.0.1", 0), WS_OK);
    CHECK_RES(ws_server_port(s, &port), WS_OK);
    return s;
}

/* Starts a server with `policy` and connects a client with a small receive
 * buffer; returns its id, or 0 (everything freed) when that failed. */
static uint64_t start_and_connect(uint64_t policy, wsc *c) {
    srv = start(policy);
    uint64_t id = ev_open_client(c, port, "/bp", 4096);
    if (id == 0) {
        wsc_free(c);
        ws_server_free(srv);
    }
    return id;
}

typedef struct {
    int sent;          /* messages accepted (WS_OK or WS_BACKPRESSURE) */
    int first_bp;      /* index of the first WS_BACKPRESSURE, or -1 */
    int dropped_at;    /* index of the first WS_ERR_DROPPED, or -1 */
    int other;         /* any other result */
    int other_code;
    size_t q_first_bp; /* queued bytes right after the first backpressure */
    size_t q_drop;     /* queued bytes right at the drop */
    int saturated_at;  /* first message left in the queue by a full socket */
} fill_result;

/* Sends MSG-byte binary messages numbered 0, 1, ... until the hard limit. */
static fill_result fill(uint64_t id) {
    fill_result r = {0, -1, -1, 0, 0, 0, 0, -1};
    unsigned char *m = calloc(MSG, 1);
    int i = 0;
    /* Phase 1: send slowly, letting the server flush each message, until
     * the socket is full (the client reads nothing): then a message stays
     * queued. This makes the kernel buffers full before the limits count. */
    int64_t deadline = now_ms() + scaled(20000);
    for (; i < MAX_SENDS && now_ms() < deadline; i++) {
        memcpy(m, &i, sizeof i);
        memset(m + sizeof i, (unsigned char)i, MSG - sizeof i);
        int res = ws_server_send(srv, id, m, MSG, WS_BINARY);
        if (res != WS_OK) {
            r.other++;
            r.other_code = res;
            free(m);
            return r;
        }
        r.sent++;
        size_t q = 0;
        int64_t until = now_ms() + scaled(50);
        while (ws_server_queued_bytes(srv, id, &q) == WS_OK && q > 0 && now_ms() < until) sleep_ms(1);
        if (q > 0) {
            r.saturated_at = i;
            i++;
            break;
        }
    }
    for (; i < MAX_SENDS; i++) {
        memcpy(m, &i, sizeof i);
        memset(m + sizeof i, (unsigned char)i, MSG - sizeof i);
        int res = ws_server_send(srv, id, m, MSG, WS_BINARY);
        if (res == WS_OK || res == WS_BACKPRESSURE) {
            r.sent++;
            if (res == WS_BACKPRESSURE && r.first_bp < 0) {
                r.first_bp = i;
                ws_server_queued_bytes(srv, id, &r.q_first_bp);
            }
            continue;
        }
        if (res == WS_ERR_DROPPED) {
            r.dropped_at = i;
            ws_server_queued_bytes(srv, id, &r.q_drop);
            if (ws_last_error()[0] == '\0') r.other++;
        } else {
            r.other++;
            r.other_code = res;
        }
        break;
    }
    free(m);
    return r;
}

/* Reads binary messages; checks they are numbered 0..n-1 in order with the
 * right content. Returns how many came before the close frame (or n). */
static int read_numbered(wsc *c, int n, int *close_code, int *bad) {
    *bad = 0;
    *close_code = -1;
    for (int i = 0; i < n + 1; i++) {
        wsc_frame f;
        int r = wsc_recv(c, &f, scaled(10000));
        if (r != WSC_OK) {
            CHECK(0, "reading message %d of %d: r=%d %s", i, n, r, c->why);
            return i;
        }
        if (f.opcode == WSC_CLOSE) {
            *close_code = wsc_close_code(&f, NULL, 0);
            wsc_frame_free(&f);
            return i;
        }
        int seq = -1;
        if (f.len == MSG) memcpy(&seq, f.data, sizeof seq);
        if (f.opcode != WSC_BINARY || seq != i || f.data[MSG - 1] != (unsigned char)i) (*bad)++;
        wsc_frame_free(&f);
        if (i + 1 == n) return n;
    }
    return n;
}

static int drained(void *arg) {
    uint64_t id = *(uint64_t *)arg;
    return EV.conn[id].drains > 0;
}

static void test_drop_policy(void) {
    wsc c;
    uint64_t id = start_and_connect(0, &c);
    if (id == 0) return;
    /* Idle: nothing queued. */
    size_t q = 1;
    CHECK_RES(ws_server_queued_bytes(srv, id, &q), WS_OK);
    CHECK_INT(q, 0);
    fill_result r = fill(id);
    printf("policy 0: socket full at #%d, %d messages accepted, first backpressure at #%d (queue %zu), dropped at #%d "
           "(queue %zu)\n", r.saturated_at, r.sent, r.first_bp, r.q_first_bp, r.dropped_at, r.q_drop);
    CHECK(r.saturated_at >= 0, "with a client that does not read, messages stay queued (at #%d)", r.saturated_at);
    CHECK(r.first_bp >= 0, "a send returned WS_BACKPRESSURE");
    CHECK(r.dropped_at > r.first_bp, "WS_ERR_DROPPED came after WS_BACKPRESSURE (%d > %d)", r.dropped_at, r.first_bp);
    CHECK(r.other == 0, "no other send result (%s)", ws_result_name(r.other_code));
    CHECK(r.q_first_bp >= MSG, "queue holds a message at the first backpressure (%zu)", r.q_first_bp);
    CHECK(r.q_drop > r.q_first_bp, "ws_server_queued_bytes grew (%zu -> %zu)", r.q_first_bp, r.q_drop);
    CHECK(r.q_drop <= HARD && r.q_drop + 2 * (MSG + 10) > HARD,
          "at the drop the queue is just under the hard limit (%zu of %d)", r.q_drop, HARD);
    /* Still over the hard limit: the next send is refused too, and the connection stays open. */
    unsigned char m[MSG] = {0};
    CHECK_RES(ws_server_send(srv, id, m, MSG, WS_BINARY), WS_ERR_DROPPED);
    /* A broadcast skips a connection over its hard limit (nothing queued:
     * the reads below expect exactly the numbered messages, then "again"). */
    size_t nq = 99;
    CHECK_RES(ws_server_broadcast(srv, m, MSG, WS_BINARY, 0, &nq), WS_OK);
    CHECK_INT(nq, 0);
    /* The refused message was not queued: the queue stays under the hard limit. */
    size_t q2 = 0;
    CHECK_RES(ws_server_queued_bytes(srv, id, &q2), WS_OK);
    CHECK(q2 <= HARD, "queue never passes the hard limit (%zu)", q2);
    ev_conn e = ev_get(id);
    CHECK_INT(e.errors, 0);
    CHECK_INT(e.closed, 0);
    int drains_before = e.drains;
    /* Now read: every accepted message arrives, in order, and on_drain fires. */
    int bad, code;
    int got = read_numbered(&c, r.sent, &code, &bad);
    CHECK_INT(got, r.sent);
    CHECK_INT(bad, 0);
    CHECK(ev_wait(drained, &id, scaled(5000)) && ev_get(id).drains > drains_before,
          "on_drain fired once the client read (%d -> %d)", drains_before, ev_get(id).drains);
    CHECK_RES(ws_server_queued_bytes(srv, id, &q), WS_OK);
    CHECK_INT(q, 0);
    /* Sending works again, and under the soft limit it is plain WS_OK. */
    CHECK_RES(ws_server_send(srv, id, (const uint8_t *)"again", 5, WS_TEXT), WS_OK);
    wsc_frame f;
    int rr = wsc_recv(&c, &f, scaled(5000));
    CHECK(rr == WSC_OK && f.len == 5 && memcmp(f.data, "again", 5) == 0, "message after the drain arrives");
    wsc_frame_free(&f);
    /* The connection still echoes. */
    wsc_send_text(&c, "ping?");
    rr = wsc_recv(&c, &f, scaled(5000));
    CHECK(rr == WSC_OK && f.len == 5 && memcmp(f.data, "ping?", 5) == 0, "connection still works after the drops");
    wsc_frame_free(&f);
    wsc_send_close(&c, 1000, NULL);
    CHECK(ev_wait_closed(id, scaled(5000)), "on_close");
    CHECK_INT(ev_get(id).close_code, 1000);
    CHECK_INT(ev_get(id).errors, 0);
    ev_stop_server(srv, (uint32_t)scaled(1000), "policy 0");
    wsc_free(&c);
}

static void test_close_policy(int policy) {
    wsc c;
    uint64_t id = start_and_connect((uint64_t)policy, &c);
    if (id == 0) return;
    fill_result r = fill(id);
    printf("policy %d: %d messages accepted, first backpressure at #%d, dropped at #%d (queue %zu)\n", policy, r.sent,
           r.first_bp, r.dropped_at, r.q_drop);
    CHECK(r.first_bp >= 0 && r.dropped_at > r.first_bp, "policy %d: backpressure then WS_ERR_DROPPED", policy);
    CHECK(r.other == 0, "no other send result (%s)", ws_result_name(r.other_code));
    /* The overflow closed the connection: later sends say closed. */
    unsigned char m[16] = {0};
    CHECK_RES(ws_server_send(srv, id, m, sizeof m, WS_BINARY), WS_ERR_CLOSED);
    CHECK_RES(ws_server_disconnect(srv, id, 1000, NULL), WS_ERR_CLOSED);
    /* The client reads an in-order prefix of the messages, then the close. */
    int bad, code;
    int got = read_numbered(&c, r.sent, &code, &bad);
    CHECK_INT(code, policy);
    CHECK(got <= r.sent && got >= r.saturated_at,
          "policy %d: %d of %d queued messages delivered before the close (at least the %d already in the socket)",
          policy, got, r.sent, r.saturated_at);
    CHECK_INT(bad, 0);
    wsc_send_close(&c, policy, NULL);
    CHECK(ev_wait_closed(id, scaled(10000)), "policy %d: on_close", policy);
    ev_conn e = ev_get(id);
    CHECK_INT(e.close_code, policy);
    CHECK_INT(e.errors, 1);
    CHECK_RES(e.last_error, WS_ERR_DROPPED);
    CHECK(wsc_wait_eof(&c, scaled(5000)), "TCP closed after the overflow close");
    ev_stop_server(srv, (uint32_t)scaled(1000), "close policy");
    wsc_free(&c);
}

int main(void) {
    /* A SIGPIPE from the library is test_sigpipe's subject; here it would
     * only hide every other result. */
    signal(SIGPIPE, SIG_IGN);
    test_drop_policy();
    test_close_policy(1013);
    test_close_policy(1008);
    return check_summary("test_backpressure");
}
