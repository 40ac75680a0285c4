/*
 * test_stats: ws_server_stats (the macro, ws_server_stats_sized) through the
 * public C ABI, with real clients over loopback.
 *
 * - Before listen and right after: every counter 0.
 * - open_connections and handshakes_accepted follow the opens and closes
 *   (after on_close the connection is no longer counted).
 * - handshakes_refused counts a bad request (400), a refusal by on_open
 *   (403), an origin not allowed (403) and a path not configured (404),
 *   one each; none of them changes open_connections or the accepted count.
 * - messages_in/bytes_in: whole messages and their payload bytes (a
 *   fragmented message is one; pings are not messages); messages_out counts
 *   sends, broadcasts and publishes once per recipient (refused sends not);
 *   bytes_out is at least the handshake answers plus the frames read.
 * - queued_bytes > 0 while a client does not read, back to 0 once it has;
 *   topics and subscriptions follow subscribe/unsubscribe/close.
 * - A short struct (the first 3 members, in an exact-size malloc'd block)
 *   gets just those; nothing past stats_size is written (also for a size
 *   larger than the struct); NULLs: WS_ERR_NULL.
 * - A thread calling it every 10 ms while traffic flows: always WS_OK,
 *   counters never go back.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "client.h"
#include "events.h"

static ws_server *srv;
static int echo; /* on_message echoes (under ev_mu) */

static int on_open(void *ud, uint64_t conn, const ws_request *req) {
    (void)ud;
    ev_enter(conn, 1);
    const char *path = ws_request_path(req);
    int refuse = path != NULL && strcmp(path, "/refuse") == 0;
    ev_record_open(conn, !refuse);
    ev_leave();
    return refuse ? 403 : 0;
}

static void on_message(void *ud, uint64_t conn, const uint8_t *data, size_t len, ws_kind kind) {
    (void)ud;
    ev_enter(conn, 0);
    pthread_mutex_lock(&ev_mu);
    int e = echo;
    pthread_mutex_unlock(&ev_mu);
    if (e) ws_server_send(srv, conn, data, len, kind);
    ev_record_message(conn);
    ev_leave();
}

static ws_stats get(void) {
    ws_stats st;
    memset(&st, 0xCD, sizeof st);
    int r = ws_server_stats(srv, &st);
    if (r != WS_OK) CHECK(0, "ws_server_stats returned %s", ws_result_name(r));
    return st;
}

/* Polls until pred(stats) holds (bounded); returns the last snapshot. */
typedef int (*stats_pred)(const ws_stats *, const void *);
static ws_stats wait_stats(stats_pred pred, const void *arg) {
    int64_t deadline = now_ms() + scaled(3000);
    ws_stats st = get();
    while (!pred(&st, arg) && now_ms() < deadline) {
        sleep_ms(2);
        st = get();
    }
    return st;
}
static int p_accepted(const ws_stats *s, const void *a) { return s->handshakes_accepted >= *(const uint64_t *)a; }
static int p_refused(const ws_stats *s, const void *a) { return s->handshakes_refused >= *(const uint64_t *)a; }
static int p_msgs_in(const ws_stats *s, const void *a) { return s->messages_in >= *(const uint64_t *)a; }
static int p_bytes_out(const ws_stats *s, const void *a) { return s->bytes_out >= *(const uint64_t *)a; }
static int p_queued0(const ws_stats *s, const void *a) { (void)a; return s->queued_bytes == 0; }
static int p_open(const ws_stats *s, const void *a) { return s->open_connections == *(const uint64_t *)a; }

static int all_zero(const ws_stats *s) {
    return s->open_connections == 0 && s->handshakes_accepted == 0 && s->handshakes_refused == 0 &&
           s->messages_in == 0 && s->messages_out == 0 && s->bytes_in == 0 && s->bytes_out == 0 &&
           s->queued_bytes == 0 && s->topics == 0 && s->subscriptions == 0 && s->http_requests == 0;
}

/* A raw request; returns the answer's HTTP status (or -1). */
static int raw_status(uint16_t port, const char *request) {
    wsc c;
    wsc_init(&c, wsc_tcp_connect("127.0.0.1", port, 0));
    int status = -1;
    if (c.fd >= 0 && wsc_send_raw(&c, request, strlen(request)) == 0) {
        int64_t deadline = now_ms() + scaled(3000);
        while (now_ms() < deadline) {
            if (c.len > 0 && memmem(c.buf, c.len, "\r\n\r\n", 4)) break;
            if (wsc_read_some(&c, 1, (int)(deadline - now_ms())) != WSC_OK) break;
        }
        if (c.len > 12) sscanf((const char *)c.buf, "HTTP/1.1 %d", &status);
    }
    wsc_free(&c);
    return status;
}

static int expect_message(wsc *c, int opcode, size_t len) {
    wsc_frame f;
    int r = wsc_recv(c, &f, scaled(3000));
    int ok = r == WSC_OK && f.opcode == opcode && f.len == len;
    if (r == WSC_OK) wsc_frame_free(&f);
    return ok;
}

static int msgs_cond(void *arg) {
    uint64_t *a = arg; /* [conn, count] */
    return EV.conn[a[0]].messages >= (int)a[1];
}

/* ---- the concurrent reader ---- */

typedef struct poller {
    int stop;
    int calls, bad_result, went_back, too_many_open;
    pthread_t th;
} poller;

static void *poller_run(void *arg) {
    poller *p = arg;
    ws_stats prev;
    memset(&prev, 0, sizeof prev);
    while (!__atomic_load_n(&p->stop, __ATOMIC_SEQ_CST)) {
        ws_stats st;
        if (ws_server_stats(srv, &st) != WS_OK) {
            p->bad_result++;
        } else {
            if (st.handshakes_accepted < prev.handshakes_accepted || st.handshakes_refused < prev.handshakes_refused ||
                st.messages_in < prev.messages_in || st.messages_out < prev.messages_out ||
                st.bytes_in < prev.bytes_in || st.bytes_out < prev.bytes_out)
                p->went_back++;
            if (st.open_connections > 3) p->too_many_open++;
            prev = st;
        }
        __atomic_add_fetch(&p->calls, 1, __ATOMIC_SEQ_CST);
        sleep_ms(10); /* the cadence under test, not a synchronisation */
    }
    return NULL;
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    events_reset();
    ws_callbacks cb = ev_callbacks(on_open, on_message);
    srv = ws_server_new(&cb, NULL);
    const char *origins[] = {"https://good.example"};
    const char *paths[] = {"/ws", "/refuse"};
    CHECK_RES(ws_server_set_allowed_origins(srv, origins, 1), WS_OK);
    CHECK_RES(ws_server_set_paths(srv, paths, 2), WS_OK);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_CLOSE_TIMEOUT_MS, (uint64_t)scaled(3000)), WS_OK);

    ws_stats st;
    memset(&st, 0xCD, sizeof st);
    CHECK_RES(ws_server_stats(srv, &st), WS_OK);
    CHECK(all_zero(&st), "before listen: every member 0");
    CHECK_RES(ws_server_stats(NULL, &st), WS_ERR_NULL);
    CHECK_RES(ws_server_stats(srv, NULL), WS_ERR_NULL);
    CHECK_RES(ws_server_stats_sized(srv, NULL, 0), WS_ERR_NULL);

    CHECK_RES(ws_server_listen(srv, "127.0.0.1", 0), WS_OK);
    uint16_t port = 0;
    CHECK_RES(ws_server_port(srv, &port), WS_OK);
    st = get();
    CHECK(all_zero(&st), "after listen: every member 0");

    /* ---- opens ---- */
    wsc a, b;
    uint64_t ia = ev_open_client(&a, port, "/ws", 0);
    uint64_t ib = ev_open_client(&b, port, "/ws?x=1", 0);
    if (!ia || !ib) return check_summary("test_stats");
    uint64_t want = 2;
    st = wait_stats(p_accepted, &want);
    CHECK_INT(st.handshakes_accepted, 2);
    CHECK_INT(st.open_connections, 2);
    CHECK_INT(st.handshakes_refused, 0);
    uint64_t heads = strlen(a.head) + strlen(b.head);
    st = wait_stats(p_bytes_out, &heads);
    CHECK(st.bytes_out >= heads, "bytes_out %llu >= the two 101 answers (%llu bytes)",
          (unsigned long long)st.bytes_out, (unsigned long long)heads);
    CHECK_INT(st.messages_in, 0);
    CHECK_INT(st.messages_out, 0);

    /* ---- refusals, one of each ---- */
    const char *no_key = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         "Sec-WebSocket-Version: 13\r\n\r\n";
    CHECK_INT(raw_status(port, no_key), 400);
    uint64_t refused = 1;
    st = wait_stats(p_refused, &refused);
    CHECK_INT(st.handshakes_refused, 1);
    wsc r;
    CHECK_INT(wsc_open(&r, "127.0.0.1", port, "/refuse", NULL, 0, scaled(3000)), 403);
    wsc_free(&r);
    refused = 2;
    st = wait_stats(p_refused, &refused);
    CHECK_INT(st.handshakes_refused, 2);
    CHECK_INT(wsc_open(&r, "127.0.0.1", port, "/ws", "Origin: https://evil.example\r\n", 0, scaled(3000)), 403);
    wsc_free(&r);
    refused = 3;
    st = wait_stats(p_refused, &refused);
    CHECK_INT(st.handshakes_refused, 3);
    CHECK_INT(wsc_open(&r, "127.0.0.1", port, "/elsewhere", NULL, 0, scaled(3000)), 404);
    wsc_free(&r);
    refused = 4;
    st = wait_stats(p_refused, &refused);
    CHECK_INT(st.handshakes_refused, 4);
    CHECK_INT(st.handshakes_accepted, 2);
    CHECK_INT(st.open_connections, 2);

    /* ---- messages in ---- */
    ws_stats base = get();
    unsigned char big[70000];
    for (size_t i = 0; i < sizeof big; i++) big[i] = (unsigned char)('a' + i % 26);
    unsigned char bin[200];
    memset(bin, 0x5A, sizeof bin);
    wsc_send_frame(&a, WSC_PING, 1, "ping-data!", 10);
    wsc_send_text(&a, "hello");
    wsc_send_frame(&a, WSC_BINARY, 1, bin, sizeof bin);
    wsc_send_frame(&a, WSC_TEXT, 0, big, 30000); /* one message in three frames */
    wsc_send_frame(&a, WSC_CONT, 0, big + 30000, 30000);
    wsc_send_frame(&a, WSC_CONT, 1, big + 60000, 10000);
    wsc_send_frame(&b, WSC_TEXT, 1, "", 0);
    uint64_t wa[2] = {ia, 3}, wb[2] = {ib, 1};
    CHECK(ev_wait(msgs_cond, wa, scaled(3000)), "a's 3 messages arrived");
    CHECK(ev_wait(msgs_cond, wb, scaled(3000)), "b's message arrived");
    uint64_t want_in = base.messages_in + 4;
    st = wait_stats(p_msgs_in, &want_in);
    CHECK_INT(st.messages_in - base.messages_in, 4);
    CHECK_INT(st.bytes_in - base.bytes_in, 5 + 200 + 70000);
    CHECK_INT(st.messages_out, base.messages_out);

    /* ---- messages out ---- */
    base = get();
    for (int i = 0; i < 3; i++) CHECK_RES(ws_server_send(srv, ia, (const uint8_t *)"0123456789", 10, WS_BINARY), WS_OK);
    CHECK_RES(ws_server_send(srv, ia, (const uint8_t *)"\xff", 1, WS_TEXT), WS_ERR_INVALID_UTF8);
    CHECK_RES(ws_server_send(srv, 999999, (const uint8_t *)"x", 1, WS_TEXT), WS_ERR_NO_SUCH_CONN);
    size_t q = 0;
    char twenty[21] = "01234567890123456789";
    CHECK_RES(ws_server_broadcast(srv, (const uint8_t *)twenty, 20, WS_TEXT, 0, &q), WS_OK);
    CHECK_INT(q, 2);
    CHECK_RES(ws_conn_subscribe(srv, ia, "t"), WS_OK);
    CHECK_RES(ws_conn_subscribe(srv, ib, "t"), WS_OK);
    char thirty[31] = "012345678901234567890123456789";
    CHECK_RES(ws_server_publish(srv, "t", (const uint8_t *)thirty, 30, WS_TEXT, 0, &q), WS_OK);
    CHECK_INT(q, 2);
    CHECK_RES(ws_server_publish(srv, "nobody", (const uint8_t *)thirty, 30, WS_TEXT, 0, &q), WS_OK);
    CHECK_INT(q, 0);
    st = get();
    CHECK_INT(st.messages_out - base.messages_out, 3 + 2 + 2);
    int got_a = 0, got_b = 0;
    for (int i = 0; i < 3; i++) got_a += expect_message(&a, WSC_BINARY, 10);
    got_a += expect_message(&a, WSC_TEXT, 20);
    got_a += expect_message(&a, WSC_TEXT, 30);
    got_b += expect_message(&b, WSC_TEXT, 20);
    got_b += expect_message(&b, WSC_TEXT, 30);
    CHECK_INT(got_a, 5);
    CHECK_INT(got_b, 2);
    uint64_t want_out = base.bytes_out + 3 * (10 + 2) + 2 * (20 + 2) + 2 * (30 + 2);
    st = wait_stats(p_bytes_out, &want_out);
    CHECK(st.bytes_out >= want_out, "bytes_out grew by at least the 7 frames read (%llu >= %llu)",
          (unsigned long long)(st.bytes_out - base.bytes_out), (unsigned long long)(want_out - base.bytes_out));
    CHECK_INT(st.messages_in, base.messages_in);

    /* ---- topics and subscriptions ---- */
    CHECK_INT(st.topics, 1);
    CHECK_INT(st.subscriptions, 2);
    CHECK_RES(ws_conn_subscribe(srv, ia, "u"), WS_OK);
    CHECK_RES(ws_conn_subscribe(srv, ia, "u"), WS_OK);
    st = get();
    CHECK_INT(st.topics, 2);
    CHECK_INT(st.subscriptions, 3);
    CHECK_RES(ws_conn_unsubscribe(srv, ia, "u"), WS_OK);
    st = get();
    CHECK_INT(st.topics, 1);
    CHECK_INT(st.subscriptions, 2);

    /* ---- queued bytes: a client that does not read ---- */
    wsc c;
    uint64_t ic = ev_open_client(&c, port, "/ws", 4096);
    if (!ic) return check_summary("test_stats");
    static unsigned char chunk[65536];
    memset(chunk, 0x33, sizeof chunk);
    /* Send until the queue is over its hard limit (WS_ERR_DROPPED): the
     * kernel's buffers are full by then, so the queue stays. */
    int sent = 0, dropped = 0;
    size_t conn_q = 0;
    int64_t qdeadline = now_ms() + scaled(5000);
    st = get();
    while (now_ms() < qdeadline && sent < 1000) {
        int res = ws_server_send(srv, ic, chunk, sizeof chunk, WS_BINARY);
        if (res == WS_OK || res == WS_BACKPRESSURE) {
            sent++;
            continue;
        }
        if (!CHECK_RES(res, WS_ERR_DROPPED)) break;
        dropped++;
        CHECK_RES(ws_server_queued_bytes(srv, ic, &conn_q), WS_OK);
        st = get();
        if (conn_q > 0 && st.queued_bytes > 0) break;
        sleep_ms(1);
    }
    CHECK(dropped > 0, "the queue reached its hard limit after %d messages", sent);
    CHECK(st.queued_bytes > 0, "queued_bytes > 0 while c does not read (%llu)", (unsigned long long)st.queued_bytes);
    CHECK(st.queued_bytes <= (uint64_t)sent * (sizeof chunk + 10), "queued_bytes %llu <= what was sent",
          (unsigned long long)st.queued_bytes);
    ws_stats st2 = get();
    CHECK(st2.queued_bytes > 0, "still > 0 a moment later (%llu)", (unsigned long long)st2.queued_bytes);
    CHECK_INT(st2.open_connections, 3);
    int drained = 0;
    for (int i = 0; i < sent; i++) drained += expect_message(&c, WSC_BINARY, sizeof chunk);
    CHECK_INT(drained, sent);
    st = wait_stats(p_queued0, NULL);
    CHECK_INT(st.queued_bytes, 0);

    /* ---- a short struct (an older program's) ---- */
    ws_stats full = get();
    uint64_t *shortst = malloc(3 * sizeof(uint64_t)); /* exact size: valgrind sees any overwrite */
    memset(shortst, 0xEE, 3 * sizeof(uint64_t));
    CHECK_RES(ws_server_stats_sized(srv, (ws_stats *)shortst, 3 * sizeof(uint64_t)), WS_OK);
    CHECK_INT(shortst[0], full.open_connections);
    CHECK_INT(shortst[1], full.handshakes_accepted);
    CHECK_INT(shortst[2], full.handshakes_refused);
    free(shortst);
    /* Canaries: nothing past stats_size is written. */
    ws_stats can;
    memset(&can, 0xAB, sizeof can);
    uint64_t canary;
    memset(&canary, 0xAB, sizeof canary);
    CHECK_RES(ws_server_stats_sized(srv, &can, 3 * sizeof(uint64_t)), WS_OK);
    CHECK(can.open_connections == full.open_connections && can.handshakes_refused == full.handshakes_refused,
          "the first three members filled");
    CHECK(can.messages_in == canary && can.bytes_out == canary && can.http_requests == canary,
          "members past the size untouched");
    memset(&can, 0xAB, sizeof can);
    CHECK_RES(ws_server_stats_sized(srv, &can, 0), WS_OK);
    CHECK(can.open_connections == canary, "size 0 writes nothing");
    /* A larger struct (a newer program's): the tail past ws_stats untouched. */
    unsigned char *bigger = malloc(sizeof(ws_stats) + 16);
    memset(bigger, 0xAB, sizeof(ws_stats) + 16);
    CHECK_RES(ws_server_stats_sized(srv, (ws_stats *)bigger, sizeof(ws_stats) + 16), WS_OK);
    int tail_ok = 1;
    for (size_t i = sizeof(ws_stats); i < sizeof(ws_stats) + 16; i++) tail_ok &= bigger[i] == 0xAB;
    CHECK(tail_ok, "bytes past sizeof(ws_stats) untouched");
    ws_stats known;
    memcpy(&known, bigger, sizeof known);
    CHECK(known.handshakes_accepted == full.handshakes_accepted && known.subscriptions == full.subscriptions,
          "the known members filled");
    free(bigger);

    /* ---- close: open_connections and subscriptions drop ---- */
    wsc_send_close(&b, 1000, NULL);
    CHECK_INT(wsc_recv_close(&b, scaled(3000), NULL, NULL, 0), 1000);
    CHECK(ev_wait_closed(ib, scaled(3000)), "b's on_close ran");
    st = get();
    CHECK_INT(st.open_connections, 2);
    CHECK_INT(st.topics, 1);
    CHECK_INT(st.subscriptions, 1);
    CHECK_INT(st.handshakes_accepted, 3);

    /* ---- from another thread every 10 ms while traffic flows ---- */
    base = get();
    poller pl;
    memset(&pl, 0, sizeof pl);
    pthread_create(&pl.th, NULL, poller_run, &pl);
    pthread_mutex_lock(&ev_mu);
    echo = 1;
    pthread_mutex_unlock(&ev_mu);
    int n = scaled(1) > 1 ? 60 : 400, i = 0, echoed = 0;
    int64_t deadline = now_ms() + scaled(10000);
    while ((i < n || __atomic_load_n(&pl.calls, __ATOMIC_SEQ_CST) < 10) && now_ms() < deadline) {
        char msg[32];
        snprintf(msg, sizeof msg, "traffic-%d", i);
        wsc_send_text(&a, msg);
        echoed += expect_message(&a, WSC_TEXT, strlen(msg));
        int sr = ws_server_send(srv, ic, (const uint8_t *)msg, strlen(msg), WS_TEXT);
        if (sr < 0) CHECK(0, "send to c: %s", ws_result_name(sr));
        i++;
    }
    __atomic_store_n(&pl.stop, 1, __ATOMIC_SEQ_CST);
    pthread_join(pl.th, NULL);
    pthread_mutex_lock(&ev_mu);
    echo = 0;
    pthread_mutex_unlock(&ev_mu);
    CHECK_INT(echoed, i);
    CHECK(pl.calls >= 10, "the poller ran (%d calls)", pl.calls);
    CHECK_INT(pl.bad_result, 0);
    CHECK_INT(pl.went_back, 0);
    CHECK_INT(pl.too_many_open, 0);
    st = get();
    CHECK_INT(st.messages_in - base.messages_in, i);
    CHECK_INT(st.messages_out - base.messages_out, 2 * i);
    printf("traffic: %d round trips with %d stats calls from another thread\n", i, pl.calls);
    int cmsgs = 0;
    for (int k = 0; k < i; k++) {
        char msg[32];
        cmsgs += expect_message(&c, WSC_TEXT, (size_t)snprintf(msg, sizeof msg, "traffic-%d", k));
    }
    CHECK_INT(cmsgs, i);

    /* ---- the end ---- */
    wsc_free(&c); /* TCP gone without a close frame */
    CHECK(ev_wait_closed(ic, scaled(3000)), "c's on_close ran");
    want = 1;
    st = wait_stats(p_open, &want);
    CHECK_INT(st.open_connections, 1);
    CHECK_RES(ws_server_close(srv, (uint32_t)scaled(2000)), WS_OK);
    events_shutdown();
    st = get();
    CHECK_INT(st.open_connections, 0);
    CHECK_INT(st.subscriptions, 0);
    CHECK_INT(st.queued_bytes, 0);
    CHECK_INT(st.handshakes_accepted, 3);
    CHECK_INT(st.handshakes_refused, 4);
    ev_check_invariants("stats");
    ws_server_free(srv);
    wsc_free(&a);
    wsc_free(&b);
    return check_summary("test_stats");
}
