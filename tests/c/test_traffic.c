/*
 * test_traffic: a server driven by this program's own raw-socket client on
 * loopback. The request accessors in on_open, refusals with an HTTP status,
 * a log line for a failed handshake, echo (text, binary, empty, large,
 * fragmented), ping, broadcast with and without `except`, sends from other
 * threads while traffic flows, send/broadcast/disconnect from inside
 * callbacks, disconnect with code and reason, every kind of close seen by
 * on_close, protocol errors reported to on_error, WS_OPT_MAX_MESSAGE_SIZE
 * and WS_OPT_MAX_FRAME_SIZE, closed vs unknown ids,
 * ids never reused, and the per-connection event order.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "client.h"
#include "events.h"

static ws_server *srv;
static uint16_t port;

/* What on_open saw for the last accepted connection. */
static struct {
    uint64_t conn;
    char path[256], query[256], custom[256], host[256], peer[128], subprotocol[64];
    int custom_upper_same;  /* header lookup is case-insensitive */
    int missing_is_null;    /* absent header -> NULL */
    int null_name_is_null;  /* NULL name -> NULL */
    int subprotocol_null;   /* no subprotocol agreed -> NULL */
    int welcome_result;     /* ws_server_send from on_open */
    int open_disconnect_result;
    uint64_t open_disconnect_conn;
    char dup[64];
    int stable;
} seen;

/* What callbacks got back from the calls they made. */
static struct {
    int disconnect_result, send_after_disconnect, disconnect_twice;
    int bcast_result;
    size_t bcast_queued;
    int queued_result;
    size_t queued;
} incb;

static void copy(char *dst, size_t cap, const char *src) { snprintf(dst, cap, "%s", src ? src : "(NULL)"); }

static int on_open(void *ud, uint64_t conn, const ws_request *req) {
    (void)ud;
    ev_enter(conn, 1);
    const char *path = ws_request_path(req);
    int verdict = 0;
    if (path && strcmp(path, "/forbidden") == 0) verdict = 403;
    if (path && strcmp(path, "/status200") == 0) verdict = 200; /* not 400..599: 500 */
    if (path && strcmp(path, "/status-1") == 0) verdict = -1;   /* also 500 */
    if (path && strcmp(path, "/status599") == 0) verdict = 599;
    if (path && strcmp(path, "/status451") == 0) verdict = 451;
    if (path && strcmp(path, "/open-disconnect") == 0) {
        /* Accept, but close right away: the 101 must still go out first. */
        int r = ws_server_disconnect(srv, conn, 4001, "go away");
        pthread_mutex_lock(&ev_mu);
        seen.open_disconnect_result = r;
        seen.open_disconnect_conn = conn;
        pthread_mutex_unlock(&ev_mu);
        ev_record_open(conn, 1);
        ev_leave();
        return 0;
    }
    if (verdict == 0) {
        pthread_mutex_lock(&ev_mu);
        seen.conn = conn;
        copy(seen.path, sizeof seen.path, path);
        copy(seen.query, sizeof seen.query, ws_request_query(req));
        const char *custom = ws_request_header(req, "X-Test-Header");
        copy(seen.custom, sizeof seen.custom, custom);
        const char *lower = ws_request_header(req, "x-test-header");
        seen.custom_upper_same = custom && lower && strcmp(custom, lower) == 0;
        copy(seen.host, sizeof seen.host, ws_request_header(req, "host"));
        seen.missing_is_null = ws_request_header(req, "X-Not-There") == NULL;
        seen.null_name_is_null = ws_request_header(req, NULL) == NULL;
        copy(seen.peer, sizeof seen.peer, ws_request_peer(req));
        copy(seen.dup, sizeof seen.dup, ws_request_header(req, "X-Dup"));
        /* Strings handed out stay valid until on_open returns, however many
         * more are asked for. */
        const char *p1 = ws_request_path(req);
        const char *h1 = ws_request_header(req, "Host");
        for (int i = 0; i < 100; i++) {
            ws_request_header(req, i % 2 ? "X-Test-Header" : "Host");
            ws_request_query(req);
            ws_request_peer(req);
        }
        seen.stable = p1 && h1 && path && strcmp(p1, path) == 0 && strcmp(h1, seen.host) == 0;
        CHECK(ws_request_client_subject(req) == NULL, "no TLS: ws_request_client_subject gives NULL");
        const char *sp = ws_request_subprotocol(req);
        seen.subprotocol_null = sp == NULL;
        copy(seen.subprotocol, sizeof seen.subprotocol, sp);
        pthread_mutex_unlock(&ev_mu);
        char welcome[64];
        int n = snprintf(welcome, sizeof welcome, "welcome %llu", (unsigned long long)conn);
        int r = ws_server_send(srv, conn, (const uint8_t *)welcome, (size_t)n, WS_TEXT);
        pthread_mutex_lock(&ev_mu);
        seen.welcome_result = r;
        pthread_mutex_unlock(&ev_mu);
    }
    ev_record_open(conn, verdict == 0);
    ev_leave();
    return verdict;
}

static int starts(const uint8_t *d, size_t len, const char *prefix) {
    size_t n = strlen(prefix);
    return len >= n && memcmp(d, prefix, n) == 0;
}

static void on_message(void *ud, uint64_t conn, const uint8_t *data, size_t len, ws_kind kind) {
    (void)ud;
    ev_enter(conn, 0);
    ev_record_message(conn);
    if (kind == WS_TEXT && starts(data, len, "cmd:disconnect")) {
        int r1 = ws_server_disconnect(srv, conn, 4000, "bye from callback");
        int r2 = ws_server_send(srv, conn, (const uint8_t *)"late", 4, WS_TEXT);
        int r3 = ws_server_disconnect(srv, conn, 1000, NULL);
        pthread_mutex_lock(&ev_mu);
        incb.disconnect_result = r1;
        incb.send_after_disconnect = r2;
        incb.disconnect_twice = r3;
        pthread_mutex_unlock(&ev_mu);
    } else if (kind == WS_TEXT && starts(data, len, "cmd:bcast:")) {
        size_t q = 12345;
        int r = ws_server_broadcast(srv, data + 10, len - 10, WS_TEXT, conn, &q);
        pthread_mutex_lock(&ev_mu);
        incb.bcast_result = r;
        incb.bcast_queued = q;
        pthread_mutex_unlock(&ev_mu);
    } else if (kind == WS_TEXT && starts(data, len, "cmd:twice")) {
        ws_server_send(srv, conn, (const uint8_t *)"one", 3, WS_TEXT);
        ws_server_send(srv, conn, (const uint8_t *)"two", 3, WS_BINARY);
    } else if (kind == WS_TEXT && starts(data, len, "cmd:queued")) {
        size_t q = 777;
        int r = ws_server_queued_bytes(srv, conn, &q);
        pthread_mutex_lock(&ev_mu);
        incb.queued_result = r;
        incb.queued = q;
        pthread_mutex_unlock(&ev_mu);
        ws_server_send(srv, conn, (const uint8_t *)"queued", 6, WS_TEXT);
    } else {
        ws_server_send(srv, conn, data, len, kind);
    }
    ev_leave();
}

/* ---- helpers ---- */

static int open_client(wsc *c, const char *target, const char *headers, uint64_t *id) {
    int status = wsc_open(c, "127.0.0.1", port, target, headers, 0, scaled(5000));
    if (status != 101) {
        CHECK(0, "handshake for %s: status %d %s", target, status, c->why);
        return -1;
    }
    /* The welcome message sent from on_open comes right after the 101. */
    wsc_frame f;
    int r = wsc_recv(c, &f, scaled(5000));
    unsigned long long n = 0;
    int ok = r == WSC_OK && f.opcode == WSC_TEXT && sscanf((char *)f.data, "welcome %llu", &n) == 1;
    CHECK(ok, "first message is the welcome sent from on_open (r=%d, \"%s\")", r, r == WSC_OK ? (char *)f.data : c->why);
    wsc_frame_free(&f);
    if (id) *id = n;
    return ok ? 0 : -1;
}

/* Receives one message and checks its kind and content. */
static int expect_msg(wsc *c, int opcode, const void *data, size_t len, const char *what) {
    wsc_frame f;
    int r = wsc_recv(c, &f, scaled(5000));
    int ok = r == WSC_OK && f.opcode == opcode && f.len == len && (len == 0 || memcmp(f.data, data, len) == 0);
    CHECK(ok, "%s: got r=%d opcode=%d len=%zu (want opcode %d len %zu) %s", what, r, f.opcode, f.len, opcode, len,
          r != WSC_OK ? c->why : "");
    wsc_frame_free(&f);
    return ok;
}

/* Reads until a close frame; returns its code (or -1), reason copied. */
static int expect_close(wsc *c, char *reason, size_t cap) {
    int code = wsc_recv_close(c, scaled(5000), NULL, reason, cap);
    if (code < 0) CHECK(0, "waiting for a close frame: %s", c->why);
    return code;
}

/* ---- tests ---- */

static void test_request_and_echo(void) {
    wsc c;
    uint64_t id = 0;
    if (open_client(&c, "/room/1?user=ann&x=%20y",
                    "X-Test-Header: Hello, World\r\nSec-WebSocket-Protocol: superchat, chat\r\nX-Dup: first\r\n"
                    "x-dup: second\r\n",
                    &id) != 0) {
        wsc_free(&c);
        return;
    }
    char expect_peer[64], got[128];
    snprintf(expect_peer, sizeof expect_peer, "127.0.0.1:%u", (unsigned)c.local_port);
    pthread_mutex_lock(&ev_mu);
    __typeof__(seen) s = seen;
    pthread_mutex_unlock(&ev_mu);
    CHECK_INT(s.conn, id);
    CHECK(id != 0, "connection id is not 0");
    CHECK_STR(s.path, "/room/1");
    CHECK_STR(s.query, "user=ann&x=%20y");
    CHECK_STR(s.custom, "Hello, World");
    CHECK(s.custom_upper_same, "ws_request_header is case-insensitive");
    char host[64];
    snprintf(host, sizeof host, "127.0.0.1:%u", (unsigned)port);
    CHECK_STR(s.host, host);
    CHECK(s.missing_is_null, "an absent header gives NULL");
    CHECK(s.null_name_is_null, "a NULL header name gives NULL");
    CHECK_STR(s.peer, expect_peer);
    CHECK_STR(s.dup, "first");
    CHECK(s.stable, "strings from ws_request_* stay valid during on_open");
    /* The server prefers "chat" (its first choice) among the client's offers. */
    CHECK_STR(s.subprotocol, "chat");
    CHECK_STR(wsc_answer_header(&c, "Sec-WebSocket-Protocol", got, sizeof got), "chat");
    CHECK_RES(s.welcome_result, WS_OK);

    /* Echo: text, binary, empty, UTF-8, large, fragmented. */
    wsc_send_text(&c, "hello");
    expect_msg(&c, WSC_TEXT, "hello", 5, "text echo");
    const unsigned char bin[] = {0, 1, 2, 0xff, 0xfe, 0x80};
    wsc_send_frame(&c, WSC_BINARY, 1, bin, sizeof bin);
    expect_msg(&c, WSC_BINARY, bin, sizeof bin, "binary echo");
    wsc_send_frame(&c, WSC_TEXT, 1, "", 0);
    expect_msg(&c, WSC_TEXT, "", 0, "empty text echo");
    wsc_send_frame(&c, WSC_BINARY, 1, "", 0);
    expect_msg(&c, WSC_BINARY, "", 0, "empty binary echo");
    const char *utf8 = "h\xc3\xa9llo \xf0\x9f\x8c\x8d \xe2\x82\xac";
    wsc_send_text(&c, utf8);
    expect_msg(&c, WSC_TEXT, utf8, strlen(utf8), "UTF-8 text echo");
    size_t big_len = 300 * 1000;
    unsigned char *big = malloc(big_len);
    for (size_t i = 0; i < big_len; i++) big[i] = (unsigned char)(i * 7 + (i >> 9));
    wsc_send_frame(&c, WSC_BINARY, 1, big, big_len);
    expect_msg(&c, WSC_BINARY, big, big_len, "300 KB binary echo");
    /* Fragmented text, a ping between the fragments. */
    wsc_send_frame(&c, WSC_TEXT, 0, "frag", 4);
    wsc_send_frame(&c, WSC_PING, 1, "p1", 2);
    wsc_send_frame(&c, WSC_CONT, 0, "men", 3);
    wsc_send_frame(&c, WSC_CONT, 1, "ted", 3);
    wsc_frame f;
    int r = wsc_read_frame(&c, &f, scaled(5000));
    CHECK(r == WSC_OK && f.opcode == WSC_PONG && f.len == 2 && memcmp(f.data, "p1", 2) == 0,
          "ping answered with a pong carrying its payload (r=%d op=%d)", r, f.opcode);
    wsc_frame_free(&f);
    expect_msg(&c, WSC_TEXT, "fragmented", 10, "reassembled fragmented echo");
    /* Several messages in one TCP write keep their order. */
    for (int i = 0; i < 50; i++) {
        char m[16];
        snprintf(m, sizeof m, "m%d", i);
        wsc_send_text(&c, m);
    }
    int in_order = 1;
    for (int i = 0; i < 50; i++) {
        char m[16];
        snprintf(m, sizeof m, "m%d", i);
        r = wsc_recv(&c, &f, scaled(5000));
        if (r != WSC_OK || strcmp((char *)f.data, m) != 0) in_order = 0;
        wsc_frame_free(&f);
    }
    CHECK(in_order, "50 pipelined messages echoed in order");
    /* Two sends from one callback, in order, kinds kept. */
    wsc_send_text(&c, "cmd:twice");
    expect_msg(&c, WSC_TEXT, "one", 3, "first send from on_message");
    expect_msg(&c, WSC_BINARY, "two", 3, "second send from on_message");
    /* queued_bytes from a callback and from here. */
    wsc_send_text(&c, "cmd:queued");
    expect_msg(&c, WSC_TEXT, "queued", 6, "reply after queued_bytes");
    pthread_mutex_lock(&ev_mu);
    int qr = incb.queued_result;
    pthread_mutex_unlock(&ev_mu);
    CHECK_RES(qr, WS_OK);
    size_t q = 999;
    CHECK_RES(ws_server_queued_bytes(srv, id, &q), WS_OK);
    CHECK_INT(q, 0);
    CHECK_INT(ev_get(id).messages, 50 + 9);

    /* Client-initiated close with a code and reason. */
    wsc_send_close(&c, 1000, "done here");
    char reason[128];
    CHECK_INT(expect_close(&c, reason, sizeof reason), 1000);
    CHECK(wsc_wait_eof(&c, scaled(5000)), "server closes the TCP connection after the close handshake");
    CHECK(ev_wait_closed(id, scaled(5000)), "on_close arrives");
    ev_conn e = ev_get(id);
    CHECK_INT(e.closed, 1);
    CHECK_INT(e.close_code, 1000);
    CHECK_STR(e.close_reason, "done here");
    CHECK_INT(e.close_reason_len, 9);
    CHECK(e.close_reason_nul, "on_close reason is NUL-terminated");
    CHECK_INT(e.errors, 0);
    free(big);
    wsc_free(&c);

    /* Closed id now: every call says WS_ERR_CLOSED; an id never handed out says NO_SUCH_CONN. */
    CHECK_RES(ws_server_send(srv, id, (const uint8_t *)"x", 1, WS_TEXT), WS_ERR_CLOSED);
    CHECK_RES(ws_server_disconnect(srv, id, 1000, NULL), WS_ERR_CLOSED);
    CHECK_RES(ws_server_queued_bytes(srv, id, &q), WS_ERR_CLOSED);
    CHECK_RES(ws_server_send(srv, id + 1000, (const uint8_t *)"x", 1, WS_TEXT), WS_ERR_NO_SUCH_CONN);
    CHECK_RES(ws_server_disconnect(srv, id + 1000, 1000, NULL), WS_ERR_NO_SUCH_CONN);
    CHECK_RES(ws_server_queued_bytes(srv, id + 1000, &q), WS_ERR_NO_SUCH_CONN);
    CHECK_RES(ws_server_send(srv, 0, (const uint8_t *)"x", 1, WS_TEXT), WS_ERR_NO_SUCH_CONN);
}

static void test_no_subprotocol(void) {
    wsc c;
    uint64_t id;
    if (open_client(&c, "/plain", "Sec-WebSocket-Protocol: other\r\n", &id) == 0) {
        char got[64];
        pthread_mutex_lock(&ev_mu);
        int null = seen.subprotocol_null;
        pthread_mutex_unlock(&ev_mu);
        CHECK(null, "no common subprotocol: ws_request_subprotocol gives NULL");
        CHECK(wsc_answer_header(&c, "Sec-WebSocket-Protocol", got, sizeof got) == NULL,
              "no Sec-WebSocket-Protocol in the answer when none was agreed");
        pthread_mutex_lock(&ev_mu);
        CHECK_STR(seen.query, "");
        pthread_mutex_unlock(&ev_mu);
        /* Close without a status code: on_close says 1005, the answer is an empty close. */
        wsc_send_close(&c, -1, NULL);
        wsc_frame f;
        int r = wsc_recv(&c, &f, scaled(5000));
        CHECK(r == WSC_OK && f.opcode == WSC_CLOSE && f.len == 0, "empty close answered with an empty close (len %zu)",
              f.len);
        wsc_frame_free(&f);
        CHECK(ev_wait_closed(id, scaled(5000)), "on_close arrives");
        CHECK_INT(ev_get(id).close_code, 1005);
        CHECK_INT(ev_get(id).close_reason_len, 0);
    }
    wsc_free(&c);
}

static void test_refusals_and_log(void) {
    struct { const char *target; int status; } cases[] = {
        {"/forbidden", 403}, {"/status200", 500}, {"/status-1", 500}, {"/status599", 599}, {"/status451", 451},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        wsc c;
        int status = wsc_open(&c, "127.0.0.1", port, cases[i].target, NULL, 0, scaled(5000));
        CHECK(status == cases[i].status, "on_open refusal for %s answers HTTP %d (got %d)", cases[i].target,
              cases[i].status, status);
        CHECK(wsc_wait_eof(&c, scaled(5000)), "the refused connection is closed by the server");
        wsc_free(&c);
    }
    /* A handshake that fails before on_open: HTTP 400 and a log line. */
    int before = ev_count_logs(WS_LOG_WARN, NULL);
    int fd = wsc_tcp_connect("127.0.0.1", port, 0);
    wsc c;
    wsc_init(&c, fd);
    const char *req = "GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    wsc_send_raw(&c, req, strlen(req));
    wsc_read_some(&c, 12, scaled(5000));
    CHECK(c.len >= 12 && memcmp(c.buf, "HTTP/1.1 400", 12) == 0, "a request without Upgrade gets HTTP 400");
    CHECK(wsc_wait_eof(&c, scaled(5000)), "then the server closes it");
    wsc_free(&c);
    int64_t deadline = now_ms() + scaled(3000);
    while (ev_count_logs(WS_LOG_WARN, NULL) == before && now_ms() < deadline) sleep_ms(5);
    CHECK(ev_count_logs(WS_LOG_WARN, NULL) > before, "on_log received a warning for the failed handshake");
    CHECK(ev_count_logs(WS_LOG_WARN, "400") > 0, "the log line mentions the 400");
    /* A refusal by on_open is logged at info. */
    CHECK(ev_count_logs(WS_LOG_INFO, "403") > 0, "the on_open refusal with 403 was logged");
}

typedef struct {
    uint64_t conn;
    int count;
    int tag;
    int failures;
} sender_arg;

static void *sender(void *p) {
    sender_arg *a = p;
    for (int i = 0; i < a->count; i++) {
        char m[32];
        int n = snprintf(m, sizeof m, "t%d:%d", a->tag, i);
        int r = ws_server_send(srv, a->conn, (const uint8_t *)m, (size_t)n, a->tag % 2 ? WS_TEXT : WS_BINARY);
        if (r != WS_OK && r != WS_BACKPRESSURE) a->failures++;
        if (i % 16 == 0) sched_yield();
    }
    return NULL;
}

static void test_threads_send(void) {
    wsc c;
    uint64_t id;
    if (open_client(&c, "/threads", NULL, &id) != 0) {
        wsc_free(&c);
        return;
    }
    enum { N = 300 };
    sender_arg a1 = {id, N, 1, 0}, a2 = {id, N, 2, 0};
    pthread_t t1, t2;
    pthread_create(&t1, NULL, sender, &a1);
    pthread_create(&t2, NULL, sender, &a2);
    /* Meanwhile, echo traffic on the same connection. */
    int next[3] = {0, 0, 0}, order_ok = 1, kinds_ok = 1, got = 0;
    for (int i = 0; i < N; i++) {
        char m[32];
        snprintf(m, sizeof m, "e:%d", i);
        wsc_send_text(&c, m);
    }
    int64_t deadline = now_ms() + scaled(20000);
    while (got < 3 * N && now_ms() < deadline) {
        wsc_frame f;
        int r = wsc_recv(&c, &f, scaled(5000));
        if (r != WSC_OK) break;
        int tag, seq;
        if (sscanf((char *)f.data, "t%d:%d", &tag, &seq) == 2 && (tag == 1 || tag == 2)) {
            if (seq != next[tag]) order_ok = 0;
            if (f.opcode != (tag == 1 ? WSC_TEXT : WSC_BINARY)) kinds_ok = 0;
            next[tag] = seq + 1;
        } else if (sscanf((char *)f.data, "e:%d", &seq) == 1) {
            if (seq != next[0]) order_ok = 0;
            next[0] = seq + 1;
        } else {
            order_ok = 0;
        }
        got++;
        wsc_frame_free(&f);
    }
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    CHECK_INT(a1.failures + a2.failures, 0);
    CHECK_INT(got, 3 * N);
    CHECK(order_ok, "messages from two threads and the echo each arrive in order");
    CHECK(kinds_ok, "message kinds kept");
    /* Disconnect from this (non-I/O) thread, with a code and a UTF-8 reason. */
    CHECK_RES(ws_server_disconnect(srv, id, 3001, "caf\xc3\xa9 closed"), WS_OK);
    CHECK_RES(ws_server_disconnect(srv, id, 3001, NULL), WS_ERR_CLOSED);
    CHECK_RES(ws_server_send(srv, id, (const uint8_t *)"x", 1, WS_TEXT), WS_ERR_CLOSED);
    char reason[128];
    CHECK_INT(expect_close(&c, reason, sizeof reason), 3001);
    CHECK_STR(reason, "caf\xc3\xa9 closed");
    CHECK(ev_get(id).closed == 0, "no on_close before the client answers the close");
    wsc_send_close(&c, 3001, "ok");
    CHECK(ev_wait_closed(id, scaled(5000)), "on_close after the client's answer");
    CHECK_INT(ev_get(id).close_code, 3001);
    CHECK(wsc_wait_eof(&c, scaled(5000)), "TCP closed after the handshake");
    wsc_free(&c);
}

static void test_callback_disconnect(void) {
    wsc c;
    uint64_t id;
    if (open_client(&c, "/cbdisc", NULL, &id) != 0) {
        wsc_free(&c);
        return;
    }
    wsc_send_text(&c, "before");
    wsc_send_text(&c, "cmd:disconnect");
    expect_msg(&c, WSC_TEXT, "before", 6, "echo queued before the disconnect goes out first");
    char reason[128];
    CHECK_INT(expect_close(&c, reason, sizeof reason), 4000);
    CHECK_STR(reason, "bye from callback");
    pthread_mutex_lock(&ev_mu);
    int r1 = incb.disconnect_result, r2 = incb.send_after_disconnect, r3 = incb.disconnect_twice;
    pthread_mutex_unlock(&ev_mu);
    CHECK_RES(r1, WS_OK);
    CHECK_RES(r2, WS_ERR_CLOSED);
    CHECK_RES(r3, WS_ERR_CLOSED);
    /* Messages the client sends while the server is closing are not delivered. */
    wsc_send_text(&c, "ignored");
    wsc_send_close(&c, 4000, "");
    CHECK(ev_wait_closed(id, scaled(5000)), "on_close after disconnect from a callback");
    ev_conn e = ev_get(id);
    CHECK_INT(e.closed, 1);
    CHECK_INT(e.close_code, 4000);
    CHECK_INT(e.messages, 2);
    wsc_free(&c);
}

static void test_broadcast(void) {
    enum { K = 4 };
    wsc c[K];
    uint64_t id[K];
    int ok = 1;
    for (int i = 0; i < K; i++) {
        if (open_client(&c[i], "/bcast", NULL, &id[i]) != 0) ok = 0;
    }
    if (ok) {
        size_t q = 0;
        CHECK_RES(ws_server_broadcast(srv, (const uint8_t *)"to all", 6, WS_TEXT, 0, &q), WS_OK);
        CHECK_INT(q, K);
        for (int i = 0; i < K; i++) expect_msg(&c[i], WSC_TEXT, "to all", 6, "broadcast to all");
        q = 0;
        const uint8_t bin[3] = {9, 0, 9};
        CHECK_RES(ws_server_broadcast(srv, bin, 3, WS_BINARY, id[1], &q), WS_OK);
        CHECK_INT(q, K - 1);
        CHECK_RES(ws_server_broadcast(srv, (const uint8_t *)"x", 1, WS_TEXT, id[0], NULL), WS_OK);
        /* From a callback: client 2 asks to broadcast to everyone but itself. */
        wsc_send_text(&c[2], "cmd:bcast:from two");
        for (int i = 0; i < K; i++) {
            if (i != 1) expect_msg(&c[i], WSC_BINARY, bin, 3, "binary broadcast except #1");
            if (i != 0) expect_msg(&c[i], WSC_TEXT, "x", 1, "broadcast except #0");
            if (i != 2) expect_msg(&c[i], WSC_TEXT, "from two", 8, "broadcast from a callback except the sender");
        }
        /* The sender got nothing more: its next message is the echo. */
        wsc_send_text(&c[2], "echo");
        expect_msg(&c[2], WSC_TEXT, "echo", 4, "the broadcasting client did not get its own broadcast");
        pthread_mutex_lock(&ev_mu);
        int br = incb.bcast_result;
        size_t bq = incb.bcast_queued;
        pthread_mutex_unlock(&ev_mu);
        CHECK_RES(br, WS_OK);
        CHECK_INT(bq, K - 1);
        /* A closing connection is skipped. */
        CHECK_RES(ws_server_disconnect(srv, id[3], 1000, NULL), WS_OK);
        q = 0;
        CHECK_RES(ws_server_broadcast(srv, (const uint8_t *)"y", 1, WS_TEXT, 0, &q), WS_OK);
        CHECK_INT(q, K - 1);
        CHECK_INT(expect_close(&c[3], NULL, 0), 1000);
        wsc_send_close(&c[3], 1000, NULL);
    }
    /* Drop the TCP connections without a close handshake: on_close says 1006. */
    for (int i = 0; i < K; i++) wsc_free(&c[i]);
    for (int i = 0; ok && i < K; i++) {
        CHECK(ev_wait_closed(id[i], scaled(5000)), "on_close for broadcast client %d", i);
        if (i < 3) CHECK_INT(ev_get(id[i]).close_code, 1006);
    }
}

static void test_protocol_errors(void) {
    wsc c;
    uint64_t id;
    /* Invalid UTF-8 in a text message: close 1007, on_error WS_ERR_PROTOCOL. */
    if (open_client(&c, "/bad-utf8", NULL, &id) == 0) {
        wsc_send_frame(&c, WSC_TEXT, 1, "\xff\xfe", 2);
        CHECK_INT(expect_close(&c, NULL, 0), 1007);
        CHECK(ev_wait_closed(id, scaled(5000)), "on_close after invalid UTF-8");
        ev_conn e = ev_get(id);
        CHECK_INT(e.close_code, 1007);
        CHECK_INT(e.errors, 1);
        CHECK_RES(e.last_error, WS_ERR_PROTOCOL);
        CHECK(e.error_message[0] != '\0', "on_error has a message");
        CHECK_INT(e.messages, 0);
    }
    wsc_free(&c);
    /* Over WS_OPT_MAX_MESSAGE_SIZE (64 KiB here) in frames each under
     * WS_OPT_MAX_FRAME_SIZE (16 KiB): close 1009, on_error WS_ERR_TOO_BIG. */
    if (open_client(&c, "/too-big", NULL, &id) == 0) {
        size_t n = 64 * 1024 + 1;
        unsigned char *big = calloc(n, 1);
        for (size_t off = 0; off < n; off += 16 * 1024) {
            size_t len = n - off < 16 * 1024 ? n - off : 16 * 1024;
            wsc_send_frame(&c, off == 0 ? WSC_BINARY : WSC_CONT, off + len == n, big + off, len);
        }
        free(big);
        CHECK_INT(expect_close(&c, NULL, 0), 1009);
        CHECK(ev_wait_closed(id, scaled(5000)), "on_close after a too big message");
        ev_conn e = ev_get(id);
        CHECK_INT(e.close_code, 1009);
        CHECK_RES(e.last_error, WS_ERR_TOO_BIG);
    }
    wsc_free(&c);
    /* An unmasked client frame: close 1002. */
    if (open_client(&c, "/unmasked", NULL, &id) == 0) {
        const unsigned char raw[] = {0x81, 0x02, 'h', 'i'};
        wsc_send_raw(&c, raw, sizeof raw);
        CHECK_INT(expect_close(&c, NULL, 0), 1002);
        CHECK(ev_wait_closed(id, scaled(5000)), "on_close after an unmasked frame");
        CHECK_INT(ev_get(id).close_code, 1002);
        CHECK_RES(ev_get(id).last_error, WS_ERR_PROTOCOL);
    }
    wsc_free(&c);
}

/* WS_OPT_MAX_FRAME_SIZE (16 KiB on the second server): frames up to it
 * pass, alone or as fragments of a bigger message; one byte more is
 * refused with close 1009 and on_error WS_ERR_TOO_BIG, even though the
 * message is far under WS_OPT_MAX_MESSAGE_SIZE. */
static void test_frame_size(void) {
    wsc c;
    uint64_t id;
    if (open_client(&c, "/frame-size", NULL, &id) != 0) {
        wsc_free(&c);
        return;
    }
    enum { FRAME = 16 * 1024 };
    unsigned char *buf = malloc(3 * FRAME);
    for (size_t i = 0; i < 3 * FRAME; i++) buf[i] = (unsigned char)(i * 13 + (i >> 10));
    wsc_send_frame(&c, WSC_BINARY, 1, buf, FRAME);
    expect_msg(&c, WSC_BINARY, buf, FRAME, "a frame of exactly WS_OPT_MAX_FRAME_SIZE is accepted");
    wsc_send_frame(&c, WSC_BINARY, 0, buf, FRAME);
    wsc_send_frame(&c, WSC_CONT, 0, buf + FRAME, FRAME);
    wsc_send_frame(&c, WSC_CONT, 1, buf + 2 * FRAME, FRAME / 2);
    expect_msg(&c, WSC_BINARY, buf, 2 * FRAME + FRAME / 2, "a 40 KiB message in frames of at most 16 KiB is accepted");
    wsc_send_frame(&c, WSC_BINARY, 1, buf, FRAME + 1);
    free(buf);
    CHECK_INT(expect_close(&c, NULL, 0), 1009);
    CHECK(ev_wait_closed(id, scaled(5000)), "on_close after a frame over WS_OPT_MAX_FRAME_SIZE");
    ev_conn e = ev_get(id);
    CHECK_INT(e.close_code, 1009);
    CHECK_INT(e.errors, 1);
    CHECK_RES(e.last_error, WS_ERR_TOO_BIG);
    CHECK_INT(e.messages, 2);
    wsc_free(&c);
}

static void test_reset(void) {
    /* The client resets the TCP connection: on_close 1006 (an on_error, if
     * any, says WS_ERR_IO). */
    wsc c;
    uint64_t id;
    if (open_client(&c, "/reset", NULL, &id) == 0) {
        struct linger lg = {1, 0};
        setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        wsc_send_text(&c, "partial");
        const unsigned char partial[] = {0x81, 0x85, 0, 0, 0, 0, 'a'};
        wsc_send_raw(&c, partial, sizeof partial);
        sleep_ms(20);
        wsc_free(&c); /* RST */
        CHECK(ev_wait_closed(id, scaled(5000)), "on_close after a TCP reset");
        ev_conn e = ev_get(id);
        CHECK_INT(e.close_code, 1006);
        CHECK(e.errors == 0 || e.last_error == WS_ERR_IO, "on_error after a reset, if any, is WS_ERR_IO (%s: %s)",
              ws_result_name(e.last_error), e.error_message);
    } else {
        wsc_free(&c);
    }
}

/* Senders hammer ids that open and close under them: every result must be
 * one the header lists, and nothing may crash. */
typedef struct {
    volatile int stop;
    int bad;
    int bad_code;
    long calls;
} race_arg;

static void *racer(void *p) {
    race_arg *a = p;
    unsigned seed = 12345;
    while (!a->stop) {
        uint64_t id = 1 + (uint64_t)(rand_r(&seed) % 200);
        int r;
        switch (rand_r(&seed) % 4) {
        case 0:
            r = ws_server_send(srv, id, (const uint8_t *)"race", 4, WS_TEXT);
            if (r != WS_OK && r != WS_BACKPRESSURE && r != WS_ERR_CLOSED && r != WS_ERR_NO_SUCH_CONN) a->bad++, a->bad_code = r;
            break;
        case 1: {
            size_t q;
            r = ws_server_queued_bytes(srv, id, &q);
            if (r != WS_OK && r != WS_ERR_CLOSED && r != WS_ERR_NO_SUCH_CONN) a->bad++, a->bad_code = r;
            break;
        }
        case 2:
            r = ws_server_broadcast(srv, (const uint8_t *)"all", 3, WS_BINARY, id, NULL);
            if (r != WS_OK) a->bad++, a->bad_code = r;
            break;
        default:
            if (rand_r(&seed) % 16 == 0) {
                r = ws_server_disconnect(srv, id, 1000, "race");
                if (r != WS_OK && r != WS_ERR_CLOSED && r != WS_ERR_NO_SUCH_CONN) a->bad++, a->bad_code = r;
            }
        }
        a->calls++;
        if (a->calls % 64 == 0) sched_yield();
    }
    return NULL;
}

static void test_races(void) {
    race_arg a[2];
    pthread_t t[2];
    memset(a, 0, sizeof a);
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, racer, &a[i]);
    int opened = 0;
    int64_t deadline = now_ms() + scaled(4000);
    for (int i = 0; i < 30 && now_ms() < deadline; i++) {
        wsc c;
        int status = wsc_open(&c, "127.0.0.1", port, "/race", NULL, 0, scaled(5000));
        if (status == 101) {
            opened++;
            wsc_send_text(&c, "hello");
            /* Read a little, then leave in one of three ways. */
            wsc_frame f;
            for (int k = 0; k < 3; k++) {
                if (wsc_recv(&c, &f, scaled(200)) != WSC_OK) break;
                int closing = f.opcode == WSC_CLOSE;
                wsc_frame_free(&f);
                if (closing) break;
            }
            if (i % 3 == 0) wsc_send_close(&c, 1000, NULL);
            if (i % 3 == 1) {
                struct linger lg = {1, 0};
                setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            }
        }
        wsc_free(&c);
    }
    for (int i = 0; i < 2; i++) {
        a[i].stop = 1;
        pthread_join(t[i], NULL);
    }
    CHECK(opened > 0, "race: %d connections opened", opened);
    CHECK(a[0].bad + a[1].bad == 0, "race: %ld calls from 2 threads, every result one the header lists (bad: %d, %s)",
          a[0].calls + a[1].calls, a[0].bad + a[1].bad, ws_result_name(a[0].bad ? a[0].bad_code : a[1].bad_code));
    /* Let every connection finish before the invariants are checked. */
    int64_t until = now_ms() + scaled(8000);
    for (;;) {
        pthread_mutex_lock(&ev_mu);
        int pending = 0;
        for (uint64_t i = 1; i <= EV.max_id && i < EV_MAX_CONN; i++)
            if (EV.conn[i].opened && !EV.conn[i].closed) pending++;
        pthread_mutex_unlock(&ev_mu);
        if (pending == 0 || now_ms() > until) break;
        sleep_ms(10);
    }
}

static void test_ids_never_reused(void) {
    uint64_t prev = 0;
    int increasing = 1;
    for (int i = 0; i < 20; i++) {
        wsc c;
        if (i % 3 == 2) {
            int status = wsc_open(&c, "127.0.0.1", port, "/forbidden", NULL, 0, scaled(5000));
            CHECK_INT(status, 403);
            wsc_free(&c);
            continue;
        }
        uint64_t id = 0;
        if (open_client(&c, "/seq", NULL, &id) == 0) {
            if (id <= prev) increasing = 0;
            prev = id;
            wsc_send_close(&c, 1000, NULL);
            expect_close(&c, NULL, 0);
            ev_wait_closed(id, scaled(5000));
        }
        wsc_free(&c);
    }
    CHECK(increasing, "ids of successive connections strictly increase (never reused)");
}

static void test_frames_with_handshake(void) {
    /* The client's first frames in the same TCP write as its request. */
    int fd = wsc_tcp_connect("127.0.0.1", port, 0);
    wsc c;
    wsc_init(&c, fd);
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "GET /early HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    const unsigned char frames[] = {0x81, 0x83, 1, 2, 3, 4, 'e' ^ 1, 'a' ^ 2, 'r' ^ 3,
                                    0x82, 0x82, 0, 0, 0, 0, 'l', 'y',
                                    0x81, 0x85, 0, 0, 0, 0, 'p', 'a'}; /* the last one is partial */
    memcpy(req + n, frames, sizeof frames);
    wsc_send_raw(&c, req, (size_t)n + sizeof frames);
    wsc_read_some(&c, 12, scaled(5000));
    char *end = c.len ? memmem(c.buf, c.len, "\r\n\r\n", 4) : NULL;
    for (int i = 0; i < 100 && end == NULL; i++) {
        if (wsc_read_some(&c, 1, scaled(100)) < 0) break;
        end = memmem(c.buf, c.len, "\r\n\r\n", 4);
    }
    int ok = c.len >= 12 && memcmp(c.buf, "HTTP/1.1 101", 12) == 0 && end != NULL;
    CHECK(ok, "handshake with frames in the same write answered 101");
    if (ok) {
        size_t head = (size_t)(end - (char *)c.buf) + 4;
        /* The key is RFC 6455's sample (section 1.3): its accept value is known. */
        char accept[64];
        if (head < sizeof c.head) {
            memcpy(c.head, c.buf, head);
            c.head[head] = '\0';
        }
        CHECK_STR(wsc_answer_header(&c, "Sec-WebSocket-Accept", accept, sizeof accept), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        memmove(c.buf, c.buf + head, c.len - head);
        c.len -= head;
        wsc_frame f;
        wsc_recv(&c, &f, scaled(5000)); /* welcome */
        wsc_frame_free(&f);
        expect_msg(&c, WSC_TEXT, "ear", 3, "first frame sent with the handshake");
        expect_msg(&c, WSC_BINARY, "ly", 2, "second frame sent with the handshake");
        const unsigned char rest[] = {'r', 't', 'y'};
        wsc_send_raw(&c, rest, sizeof rest);
        expect_msg(&c, WSC_TEXT, "party", 5, "frame split between the handshake write and the next");
        wsc_send_close(&c, 1000, NULL);
        expect_close(&c, NULL, 0);
    }
    wsc_free(&c);
}

static void test_long_reason(void) {
    wsc c;
    uint64_t id;
    if (open_client(&c, "/long-reason", NULL, &id) == 0) {
        char reason[124], got[200];
        for (int i = 0; i < 123; i++) reason[i] = (char)('a' + i % 26);
        reason[123] = '\0';
        CHECK_RES(ws_server_disconnect(srv, id, 1008, reason), WS_OK);
        CHECK_INT(expect_close(&c, got, sizeof got), 1008);
        CHECK_STR(got, reason);
        wsc_send_close(&c, 1008, NULL);
        CHECK(ev_wait_closed(id, scaled(5000)), "on_close");
    }
    wsc_free(&c);
}

static void test_disconnect_in_on_open(void) {
    /* ws_server_disconnect is allowed in callbacks, and what on_open queues
     * goes out "right after the handshake response": so the client must get
     * the 101 first, then the close frame. */
    wsc c;
    int status = wsc_open(&c, "127.0.0.1", port, "/open-disconnect", NULL, 0, scaled(2000));
    pthread_mutex_lock(&ev_mu);
    int r = seen.open_disconnect_result;
    uint64_t id = seen.open_disconnect_conn;
    pthread_mutex_unlock(&ev_mu);
    CHECK_RES(r, WS_OK);
    CHECK(status == 101, "disconnect inside on_open: the client still gets its 101 first (got %d: %s; %zu raw bytes "
          "instead, starting %02x %02x)", status, c.why, c.len, c.len > 0 ? c.buf[0] : 0, c.len > 1 ? c.buf[1] : 0);
    if (status == 101) {
        char reason[128];
        CHECK_INT(expect_close(&c, reason, sizeof reason), 4001);
        CHECK_STR(reason, "go away");
        wsc_send_close(&c, 4001, NULL);
        CHECK(ev_wait_closed(id, scaled(5000)), "on_close after disconnect in on_open");
        CHECK_INT(ev_get(id).close_code, 4001);
    }
    wsc_free(&c);
    if (id) ev_wait_closed(id, scaled(8000));
}

static void test_ipv6_peer(void) {
    ws_callbacks cb = ev_callbacks(on_open, on_message);
    ws_server *v6 = ws_server_new(&cb, NULL);
    uint16_t p6 = 0;
    if (ws_server_listen(v6, "::1", 0) != WS_OK) {
        printf("note: no IPv6 loopback; IPv6 peer test skipped\n");
        ws_server_free(v6);
        return;
    }
    ws_server *saved = srv;
    srv = v6;
    ws_server_port(v6, &p6);
    wsc c;
    int status = wsc_open(&c, "::1", p6, "/v6?q=1", NULL, 0, scaled(5000));
    CHECK_INT(status, 101);
    if (status == 101) {
        char expect_peer[64];
        snprintf(expect_peer, sizeof expect_peer, "[::1]:%u", (unsigned)c.local_port);
        pthread_mutex_lock(&ev_mu);
        CHECK_STR(seen.peer, expect_peer);
        CHECK_STR(seen.path, "/v6");
        uint64_t id = seen.conn;
        pthread_mutex_unlock(&ev_mu);
        wsc_frame f;
        wsc_recv(&c, &f, scaled(5000));
        wsc_frame_free(&f);
        wsc_send_text(&c, "over v6");
        expect_msg(&c, WSC_TEXT, "over v6", 7, "echo over IPv6");
        wsc_send_close(&c, 1000, NULL);
        expect_close(&c, NULL, 0);
        ev_wait_closed(id, scaled(5000));
    }
    wsc_free(&c);
    CHECK_RES(ws_server_close(v6, 1000), WS_OK);
    ws_server_free(v6);
    srv = saved;
}

/* Several I/O threads: per-connection order still holds. */
typedef struct {
    int idx;
    int ok;
} mt_arg;

static void *mt_client(void *p) {
    mt_arg *a = p;
    wsc c;
    a->ok = 0;
    if (wsc_open(&c, "127.0.0.1", port, "/mt", NULL, 0, scaled(5000)) == 101) {
        wsc_frame f;
        int good = wsc_recv(&c, &f, scaled(5000)) == WSC_OK; /* welcome */
        wsc_frame_free(&f);
        for (int i = 0; i < 100 && good; i++) {
            char m[32];
            snprintf(m, sizeof m, "%d:%d", a->idx, i);
            wsc_send_text(&c, m);
        }
        for (int i = 0; i < 100 && good; i++) {
            char m[32];
            snprintf(m, sizeof m, "%d:%d", a->idx, i);
            good = wsc_recv(&c, &f, scaled(5000)) == WSC_OK && strcmp((char *)f.data, m) == 0;
            wsc_frame_free(&f);
        }
        wsc_send_close(&c, 1000, NULL);
        good = good && wsc_recv(&c, &f, scaled(5000)) == WSC_OK && f.opcode == WSC_CLOSE;
        wsc_frame_free(&f);
        a->ok = good;
    }
    wsc_free(&c);
    return NULL;
}

static void test_many_threads(void) {
    ws_callbacks cb = ev_callbacks(on_open, on_message);
    events_reset();
    srv = ws_server_new(&cb, NULL);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_THREADS, 4), WS_OK);
    CHECK_RES(ws_server_listen(srv, "127.0.0.1", 0), WS_OK);
    CHECK_RES(ws_server_port(srv, &port), WS_OK);
    enum { K = 8 };
    pthread_t t[K];
    mt_arg a[K];
    for (int i = 0; i < K; i++) {
        a[i].idx = i;
        pthread_create(&t[i], NULL, mt_client, &a[i]);
    }
    int ok = 0;
    for (int i = 0; i < K; i++) {
        pthread_join(t[i], NULL);
        ok += a[i].ok;
    }
    CHECK_INT(ok, K);
    CHECK_RES(ws_server_close(srv, (uint32_t)scaled(2000)), WS_OK);
    events_shutdown();
    pthread_mutex_lock(&ev_mu);
    int late = 0, closes = 0, opens = 0, moved = 0, nthreads = 0;
    pthread_t threads[K];
    for (int i = 1; i < EV_MAX_CONN; i++) {
        late += EV.conn[i].late;
        closes += EV.conn[i].closed;
        opens += EV.conn[i].opened;
        moved += EV.conn[i].moved;
        if (!EV.conn[i].thread_set) continue;
        int known = 0;
        for (int k = 0; k < nthreads; k++) known |= pthread_equal(threads[k], EV.conn[i].thread) != 0;
        if (!known && nthreads < K) threads[nthreads++] = EV.conn[i].thread;
    }
    int wrong = EV.wrong_thread, reused = EV.reused;
    pthread_mutex_unlock(&ev_mu);
    CHECK_INT(opens, K);
    CHECK_INT(closes, K);
    CHECK_INT(late, 0);
    CHECK_INT(reused, 0);
    CHECK_INT(wrong, 0);
    /* WS_OPT_THREADS 4: one connection's callbacks always on the same
     * thread; connections dealt out round-robin, so 8 use all 4. */
    CHECK_INT(moved, 0);
    CHECK(nthreads == 4, "%d connections ran on %d distinct I/O threads (WS_OPT_THREADS 4, round-robin)", K, nthreads);
    ws_server_free(srv);
}

int main(void) {
    /* A SIGPIPE from the library is test_sigpipe's subject; here it would
     * only hide every other result. */
    signal(SIGPIPE, SIG_IGN);
    events_reset();
    ws_callbacks cb = ev_callbacks(on_open, on_message);
    srv = ws_server_new(&cb, NULL);
    CHECK(srv != NULL, "ws_server_new");
    const char *protos[] = {"chat", "superchat"};
    CHECK_RES(ws_server_set_subprotocols(srv, protos, 2), WS_OK);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_MAX_MESSAGE_SIZE, 1 << 20), WS_OK);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_CLOSE_TIMEOUT_MS, (uint64_t)scaled(3000)), WS_OK);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_LOG_LEVEL, WS_LOG_INFO), WS_OK);
    CHECK_RES(ws_server_listen(srv, "127.0.0.1", 0), WS_OK);
    CHECK_RES(ws_server_port(srv, &port), WS_OK);
    CHECK(ev_count_logs(WS_LOG_INFO, "listening") > 0, "on_log got the listening line");

    test_request_and_echo();
    test_no_subprotocol();
    test_refusals_and_log();
    test_threads_send();
    test_callback_disconnect();
    test_broadcast();
    test_ids_never_reused();
    test_frames_with_handshake();
    test_long_reason();
    test_disconnect_in_on_open();
    test_reset();
    test_races();
    ev_check_invariants("traffic");

    CHECK_RES(ws_server_close(srv, (uint32_t)scaled(2000)), WS_OK);
    events_shutdown();
    ws_server_free(srv);

    /* A second server with small message and frame limits, for the size checks. */
    srv = ws_server_new(&cb, NULL);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_MAX_MESSAGE_SIZE, 64 * 1024), WS_OK);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_MAX_FRAME_SIZE, 16 * 1024), WS_OK);
    events_reset();
    CHECK_RES(ws_server_listen(srv, "127.0.0.1", 0), WS_OK);
    CHECK_RES(ws_server_port(srv, &port), WS_OK);
    test_protocol_errors();
    test_frame_size();
    ev_check_invariants("protocol errors");
    CHECK_RES(ws_server_close(srv, (uint32_t)scaled(2000)), WS_OK);
    events_shutdown();
    sleep_ms(50);
    ws_server_free(srv);
    ev_check_invariants("after close");

    events_reset();
    test_ipv6_peer();
    ev_check_invariants("IPv6");
    test_many_threads();
    return check_summary("test_traffic");
}
