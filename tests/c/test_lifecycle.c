/*
 * test_lifecycle: how servers end and the limits in time and number.
 * ws_server_close from another thread (1001 to every client after what is
 * queued, grace for the close handshakes, 1006 for the rest, no callback
 * after it returns), ws_server_close and ws_server_free from inside a
 * callback (no deadlock), ws_server_free with open connections,
 * WS_OPT_LOG_LEVEL filtering (every level), WS_OPT_MAX_CONNECTIONS (503),
 * WS_OPT_PING_INTERVAL_MS / WS_OPT_IDLE_TIMEOUT_MS (and 0 for each) /
 * handshake timeout. From inside on_message, for the connection being
 * called back: replies larger than the send cork, and ws_server_disconnect
 * (both wait for the end of the callback, with no wake-up of their own).
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

static struct {
    int close_result;
    int64_t close_ms;
    int send_after_close;
    int freed;
    int64_t free_ms;
    int big_sends[3];
    int disconnect_result;
} incb;

enum { BIG = 20000 }; /* three of them pass the 32 KiB cork */

static int on_open(void *ud, uint64_t conn, const ws_request *req) {
    (void)ud;
    ev_enter(conn, 1);
    const char *path = ws_request_path(req);
    if (path && strcmp(path, "/close-server") == 0) {
        int64_t t0 = now_ms();
        int r = ws_server_close(srv, (uint32_t)scaled(10000));
        int64_t dt = now_ms() - t0;
        pthread_mutex_lock(&ev_mu);
        incb.close_result = r;
        incb.close_ms = dt;
        pthread_mutex_unlock(&ev_mu);
    }
    ev_record_open(conn, 1);
    ev_leave();
    return 0;
}

static void on_message(void *ud, uint64_t conn, const uint8_t *data, size_t len, ws_kind kind) {
    (void)ud;
    ev_enter(conn, 0);
    ev_record_message(conn);
    if (kind == WS_TEXT && len == 16 && memcmp(data, "cmd:close-server", 16) == 0) {
        int64_t t0 = now_ms();
        int r = ws_server_close(srv, (uint32_t)scaled(10000));
        int64_t dt = now_ms() - t0;
        int s = ws_server_send(srv, conn, (const uint8_t *)"x", 1, WS_TEXT);
        pthread_mutex_lock(&ev_mu);
        incb.close_result = r;
        incb.close_ms = dt;
        incb.send_after_close = s;
        pthread_mutex_unlock(&ev_mu);
    } else if (kind == WS_TEXT && len == 8 && memcmp(data, "cmd:free", 8) == 0) {
        int64_t t0 = now_ms();
        ws_server *s = srv;
        srv = NULL;
        ws_server_free(s);
        int64_t dt = now_ms() - t0;
        pthread_mutex_lock(&ev_mu);
        incb.freed = 1;
        incb.free_ms = dt;
        pthread_mutex_unlock(&ev_mu);
    } else if (kind == WS_TEXT && len == 13 && memcmp(data, "cmd:three-big", 13) == 0) {
        static uint8_t big[BIG];
        for (int i = 0; i < 3; i++) {
            memset(big, 'a' + i, sizeof big);
            int r = ws_server_send(srv, conn, big, sizeof big, WS_BINARY);
            pthread_mutex_lock(&ev_mu);
            incb.big_sends[i] = r;
            pthread_mutex_unlock(&ev_mu);
        }
    } else if (kind == WS_TEXT && len == 17 && memcmp(data, "cmd:disconnect-me", 17) == 0) {
        int r = ws_server_disconnect(srv, conn, 4000, "asked");
        pthread_mutex_lock(&ev_mu);
        incb.disconnect_result = r;
        pthread_mutex_unlock(&ev_mu);
    } else if (srv != NULL) {
        ws_server_send(srv, conn, data, len, kind);
    }
    ev_leave();
}

static ws_callbacks callbacks(void) {
    return ev_callbacks(on_open, on_message);
}

static ws_server *start_with(const uint64_t *opts) {
    events_reset();
    memset(&incb, 0, sizeof incb);
    ws_callbacks cb = callbacks();
    ws_server *s = ws_server_new(&cb, NULL);
    for (; opts && opts[0]; opts += 2) CHECK_RES(ws_server_set_option(s, (ws_option)opts[0], opts[1]), WS_OK);
    CHECK_RES(ws_server_listen(s, "127.0.0.1", 0), WS_OK);
    CHECK_RES(ws_server_port(s, &port), WS_OK);
    return s;
}

static uint64_t open_client(wsc *c) { return ev_open_client(c, port, "/", 0); }

/* Reads until a close frame; returns its code, or -1. Counts data messages. */
static int read_to_close(wsc *c, int *messages) { return wsc_recv_close(c, scaled(5000), messages, NULL, 0); }

typedef struct {
    uint32_t grace;
    int64_t elapsed;
    int result;
} closer_arg;

static void *closer(void *p) {
    closer_arg *a = p;
    int64_t t0 = now_ms();
    a->result = ws_server_close(srv, a->grace);
    events_shutdown();
    a->elapsed = now_ms() - t0;
    return NULL;
}

static void test_close_from_thread(void) {
    uint64_t opts[] = {WS_OPT_CLOSE_TIMEOUT_MS, (uint64_t)scaled(30000), 0};
    srv = start_with(opts);
    wsc a, b, h;
    uint64_t ida = open_client(&a), idb = open_client(&b);
    /* h: a TCP connection still in its handshake. */
    wsc_init(&h, wsc_tcp_connect("127.0.0.1", port, 0));
    for (int i = 0; i < 3; i++) CHECK_RES(ws_server_send(srv, ida, (const uint8_t *)"queued", 6, WS_TEXT), WS_OK);
    closer_arg arg = {(uint32_t)scaled(1500), 0, 99};
    pthread_t t;
    pthread_create(&t, NULL, closer, &arg);
    int msgs = 0;
    CHECK_INT(read_to_close(&a, &msgs), 1001);
    CHECK_INT(msgs, 3); /* what was queued went out before the close */
    wsc_send_close(&a, 1001, NULL);
    CHECK_INT(read_to_close(&b, NULL), 1001); /* b never answers */
    CHECK(ev_wait_closed(ida, scaled(5000)), "on_close for the client that answered");
    CHECK_INT(ev_get(ida).close_code, 1001);
    CHECK(ev_get(idb).closed == 0, "the silent client is still waited for during the grace");
    pthread_join(t, NULL);
    CHECK_RES(arg.result, WS_OK);
    printf("ws_server_close(grace %u ms) took %lld ms\n", arg.grace, (long long)arg.elapsed);
    CHECK(arg.elapsed >= (int64_t)arg.grace * 8 / 10, "close waited for the grace (%lld ms)", (long long)arg.elapsed);
    CHECK(arg.elapsed < (int64_t)arg.grace + scaled(3000), "close returned soon after the grace (%lld ms)",
          (long long)arg.elapsed);
    ev_conn eb = ev_get(idb);
    CHECK_INT(eb.closed, 1);
    CHECK_INT(eb.close_code, 1006);
    CHECK(wsc_wait_eof(&b, scaled(5000)), "the silent client's TCP connection is closed");
    CHECK(wsc_wait_eof(&h, scaled(5000)), "the half-open handshake's TCP connection is closed");
    sleep_ms(scaled(200));
    ev_check_invariants("close from a thread");
    /* Afterwards: nothing listens, ids are closed, closing again is fine. */
    int fd = wsc_tcp_connect("127.0.0.1", port, 0);
    CHECK(fd < 0, "no new connections after ws_server_close");
    if (fd >= 0) close(fd);
    CHECK_RES(ws_server_send(srv, ida, (const uint8_t *)"x", 1, WS_TEXT), WS_ERR_CLOSED);
    size_t n = 5;
    CHECK_RES(ws_server_broadcast(srv, (const uint8_t *)"x", 1, WS_TEXT, 0, &n), WS_OK);
    CHECK_INT(n, 0);
    int64_t t0 = now_ms();
    CHECK_RES(ws_server_close(srv, 5000), WS_OK);
    CHECK(now_ms() - t0 < scaled(500), "a second ws_server_close returns at once");
    ws_server_free(srv);
    srv = NULL;
    wsc_free(&a);
    wsc_free(&b);
    wsc_free(&h);
}

static void test_close_in_callback(void) {
    srv = start_with(NULL);
    wsc a, b;
    uint64_t ida = open_client(&a), idb = open_client(&b);
    wsc_send_text(&a, "cmd:close-server");
    CHECK_INT(read_to_close(&a, NULL), 1001);
    CHECK_INT(read_to_close(&b, NULL), 1001);
    wsc_send_close(&a, 1001, NULL);
    wsc_send_close(&b, 1000, NULL);
    CHECK(ev_wait_closed(ida, scaled(5000)) && ev_wait_closed(idb, scaled(5000)), "both on_close after close in a callback");
    CHECK_INT(ev_get(ida).close_code, 1001);
    CHECK_INT(ev_get(idb).close_code, 1000);
    pthread_mutex_lock(&ev_mu);
    int r = incb.close_result, s = incb.send_after_close;
    int64_t ms = incb.close_ms;
    pthread_mutex_unlock(&ev_mu);
    CHECK_RES(r, WS_OK);
    CHECK(ms < scaled(1000), "ws_server_close inside a callback returned at once (%lld ms)", (long long)ms);
    CHECK_RES(s, WS_ERR_CLOSED);
    int64_t t0 = now_ms();
    CHECK_RES(ws_server_close(srv, (uint32_t)scaled(5000)), WS_OK);
    events_shutdown();
    CHECK(now_ms() - t0 < scaled(3000), "the outer ws_server_close finished quickly (%lld ms)", (long long)(now_ms() - t0));
    ws_server_free(srv);
    srv = NULL;
    sleep_ms(scaled(100));
    ev_check_invariants("close in a callback");
    wsc_free(&a);
    wsc_free(&b);
}

/* What a callback asks for its own connection happens once it returns,
 * without the client sending anything more: the connection goes on with
 * its round (its queue, its commands) before it waits for input. */
static void test_own_connection_from_its_callback(void) {
    srv = start_with(NULL);
    wsc a;
    uint64_t ida = open_client(&a);
    wsc_send_text(&a, "cmd:three-big");
    for (int i = 0; i < 3; i++) {
        wsc_frame f;
        int r = wsc_recv(&a, &f, scaled(5000));
        CHECK(r == WSC_OK, "big reply %d arrived (%s)", i, a.why);
        if (r != WSC_OK) break;
        CHECK_INT(f.opcode, WSC_BINARY);
        CHECK_INT((int)f.len, BIG);
        CHECK(f.len == BIG && f.data[0] == 'a' + i && f.data[BIG - 1] == 'a' + i, "big reply %d in order", i);
        wsc_frame_free(&f);
    }
    pthread_mutex_lock(&ev_mu);
    int s0 = incb.big_sends[0], s2 = incb.big_sends[2];
    pthread_mutex_unlock(&ev_mu);
    CHECK(s0 == WS_OK && s2 >= WS_OK, "the sends were taken (%d, %d)", s0, s2);
    wsc_send_text(&a, "cmd:disconnect-me");
    char reason[64] = "";
    CHECK_INT(wsc_recv_close(&a, scaled(5000), NULL, reason, sizeof reason), 4000);
    CHECK_STR(reason, "asked");
    wsc_send_close(&a, 4000, NULL);
    CHECK(ev_wait_closed(ida, scaled(5000)), "on_close after a disconnect from its own callback");
    pthread_mutex_lock(&ev_mu);
    int d = incb.disconnect_result;
    pthread_mutex_unlock(&ev_mu);
    CHECK_RES(d, WS_OK);
    events_shutdown();
    ws_server_free(srv);
    srv = NULL;
    wsc_free(&a);
}

static int freed_cond(void *arg) {
    (void)arg;
    return incb.freed;
}

static void test_free_in_callback(void) {
    srv = start_with(NULL);
    wsc a, b;
    uint64_t ida = open_client(&a), idb = open_client(&b);
    wsc_send_text(&a, "cmd:free");
    CHECK(ev_wait(freed_cond, NULL, scaled(5000)), "ws_server_free inside a callback returned");
    CHECK_INT(read_to_close(&a, NULL), 1001);
    CHECK_INT(read_to_close(&b, NULL), 1001);
    wsc_send_close(&a, 1001, NULL);
    wsc_send_close(&b, 1001, NULL);
    CHECK(ev_wait_closed(ida, scaled(5000)) && ev_wait_closed(idb, scaled(5000)),
          "the remaining on_close events arrive after ws_server_free in a callback");
    pthread_mutex_lock(&ev_mu);
    int64_t ms = incb.free_ms;
    pthread_mutex_unlock(&ev_mu);
    CHECK(ms < scaled(1000), "ws_server_free inside a callback returned at once (%lld ms)", (long long)ms);
    CHECK(wsc_wait_eof(&a, scaled(5000)) && wsc_wait_eof(&b, scaled(5000)), "TCP connections closed");
    /* Let the background close finish its work before the next test. */
    sleep_ms(scaled(1500));
    ev_check_invariants("free in a callback");
    wsc_free(&a);
    wsc_free(&b);
}

static void test_free_with_open_connection(void) {
    srv = start_with(NULL);
    wsc a;
    uint64_t ida = open_client(&a);
    int64_t t0 = now_ms();
    ws_server_free(srv); /* closes with a 1000 ms grace; the client never answers */
    srv = NULL;
    int64_t dt = now_ms() - t0;
    events_shutdown();
    CHECK(dt >= 800 && dt < scaled(4000), "ws_server_free waited about the 1000 ms grace (%lld ms)", (long long)dt);
    ev_conn e = ev_get(ida);
    CHECK_INT(e.closed, 1);
    CHECK_INT(e.close_code, 1006);
    CHECK_INT(read_to_close(&a, NULL), 1001);
    CHECK(wsc_wait_eof(&a, scaled(5000)), "TCP connection closed by ws_server_free");
    sleep_ms(scaled(100));
    ev_check_invariants("free with an open connection");
    wsc_free(&a);
}

static void bad_handshake(void) {
    wsc c;
    wsc_init(&c, wsc_tcp_connect("127.0.0.1", port, 0));
    const char *req = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    wsc_send_raw(&c, req, strlen(req));
    wsc_read_some(&c, 12, scaled(5000));
    CHECK(c.len >= 12 && memcmp(c.buf, "HTTP/1.1 426", 12) == 0, "version 8 gets HTTP 426");
    wsc_wait_eof(&c, scaled(5000));
    wsc_free(&c);
}

/* A client that connects, sends half a request and goes away: the server
 * logs the lost handshake at WS_LOG_DEBUG. */
static void lost_handshake(void) {
    wsc c;
    wsc_init(&c, wsc_tcp_connect("127.0.0.1", port, 0));
    const char *half = "GET / HTTP/1.1\r\nHost: x\r\n";
    wsc_send_raw(&c, half, strlen(half));
    sleep_ms(scaled(20));
    wsc_free(&c);
}

/* Log lines at exactly WS_LOG_DEBUG received so far. */
static int debug_lines(void) { return ev_count_logs(WS_LOG_DEBUG, NULL) - ev_count_logs(WS_LOG_INFO, NULL); }

static void test_log_levels(void) {
    uint64_t quiet[] = {WS_OPT_LOG_LEVEL, WS_LOG_ERROR, 0};
    srv = start_with(quiet);
    bad_handshake();
    sleep_ms(scaled(100));
    CHECK_INT(ev_count_logs(WS_LOG_DEBUG, NULL), 0);
    ws_server_free(srv);
    uint64_t warn[] = {WS_OPT_LOG_LEVEL, WS_LOG_WARN, 0};
    srv = start_with(warn);
    CHECK_INT(ev_count_logs(WS_LOG_DEBUG, "listening"), 0); /* info, filtered out */
    bad_handshake();
    int64_t deadline = now_ms() + scaled(2000);
    while (ev_count_logs(WS_LOG_WARN, "426") == 0 && now_ms() < deadline) sleep_ms(5);
    CHECK(ev_count_logs(WS_LOG_WARN, "426") == 1, "at WS_LOG_WARN the failed handshake is logged once");
    CHECK_INT(ev_count_logs(WS_LOG_DEBUG, NULL), ev_count_logs(WS_LOG_WARN, NULL));
    ws_server_free(srv);
    /* WS_LOG_INFO (the default) holds debug lines back; WS_LOG_DEBUG delivers them. */
    uint64_t info[] = {WS_OPT_LOG_LEVEL, WS_LOG_INFO, 0};
    srv = start_with(info);
    lost_handshake();
    sleep_ms(scaled(300));
    CHECK(ev_count_logs(WS_LOG_INFO, "listening") == 1, "at WS_LOG_INFO the listening line is logged");
    CHECK_INT(debug_lines(), 0);
    ws_server_free(srv);
    uint64_t debug[] = {WS_OPT_LOG_LEVEL, WS_LOG_DEBUG, 0};
    srv = start_with(debug);
    lost_handshake();
    deadline = now_ms() + scaled(2000);
    while (debug_lines() == 0 && now_ms() < deadline) sleep_ms(5);
    CHECK(debug_lines() > 0, "at WS_LOG_DEBUG the lost handshake is logged at WS_LOG_DEBUG (%d debug lines)",
          debug_lines());
    ws_server_free(srv);
    srv = NULL;
}

/* Opens and closes clients (up to 50 tries) until one gets its 101. */
static int accepted_within_50_tries(void) {
    int ok = 0;
    for (int i = 0; i < 50 && !ok; i++) {
        wsc c;
        ok = wsc_open(&c, "127.0.0.1", port, "/", NULL, 0, scaled(5000)) == 101;
        wsc_free(&c);
        if (!ok) sleep_ms(scaled(50));
    }
    return ok;
}

static void test_max_connections(void) {
    uint64_t opts[] = {WS_OPT_MAX_CONNECTIONS, 2, 0};
    srv = start_with(opts);
    wsc a, b, c;
    uint64_t ida = open_client(&a);
    open_client(&b);
    int status = wsc_open(&c, "127.0.0.1", port, "/", NULL, 0, scaled(5000));
    CHECK_INT(status, 503);
    wsc_free(&c);
    /* A slot frees up once a connection is over. */
    wsc_send_close(&a, 1000, NULL);
    read_to_close(&a, NULL);
    ev_wait_closed(ida, scaled(5000));
    wsc_free(&a);
    int ok = accepted_within_50_tries();
    CHECK(ok, "a new client is accepted once a slot is free");
    CHECK(ev_count_logs(WS_LOG_WARN, "503") > 0, "the 503 refusal was logged");
    ws_server_free(srv);
    srv = NULL;
    wsc_free(&b);
}

/* WS_OPT_MAX_CONNECTIONS counts connections still in their handshake. */
static void test_max_connections_counts_handshakes(void) {
    uint64_t opts[] = {WS_OPT_MAX_CONNECTIONS, 2, 0};
    srv = start_with(opts);
    wsc a, h, c;
    uint64_t ida = open_client(&a);
    wsc_init(&h, wsc_tcp_connect("127.0.0.1", port, 0)); /* never sends its request */
    sleep_ms(scaled(100));
    int status = wsc_open(&c, "127.0.0.1", port, "/", NULL, 0, scaled(5000));
    CHECK(status == 503, "one open connection and one pending handshake fill 2 slots: HTTP 503 (got %d)", status);
    wsc_free(&c);
    /* The pending handshake's slot frees up once it goes away. */
    wsc_free(&h);
    int ok = accepted_within_50_tries();
    CHECK(ok, "a new client is accepted once the pending handshake is gone");
    wsc_send_close(&a, 1000, NULL);
    CHECK_INT(read_to_close(&a, NULL), 1000);
    CHECK(ev_wait_closed(ida, scaled(5000)), "on_close for the open client");
    ev_stop_server(srv, 1000, "max connections with a pending handshake");
    srv = NULL;
    wsc_free(&a);
}

static void test_timeouts(void) {
    uint64_t opts[] = {WS_OPT_PING_INTERVAL_MS, (uint64_t)scaled(100), WS_OPT_IDLE_TIMEOUT_MS, (uint64_t)scaled(600),
                       WS_OPT_HANDSHAKE_TIMEOUT_MS, (uint64_t)scaled(300), 0};
    srv = start_with(opts);
    wsc live, silent, h;
    uint64_t idl = open_client(&live), ids = open_client(&silent);
    wsc_init(&h, wsc_tcp_connect("127.0.0.1", port, 0)); /* never sends its request */
    int64_t t0 = now_ms();
    /* live answers every ping for 3 idle timeouts. */
    int pings = 0, bad = 0;
    while (now_ms() - t0 < scaled(1800)) {
        wsc_frame f;
        int r = wsc_read_frame(&live, &f, scaled(50));
        if (r == WSC_OK && f.opcode == WSC_PING) {
            pings++;
            wsc_send_frame(&live, WSC_PONG, 1, f.data, f.len);
        } else if (r != WSC_TIMEOUT) {
            bad++;
        }
        wsc_frame_free(&f);
        if (r != WSC_OK && r != WSC_TIMEOUT) break;
    }
    CHECK(pings >= 2, "the quiet client was pinged (%d pings)", pings);
    CHECK_INT(bad, 0);
    CHECK_INT(ev_get(idl).closed, 0);
    /* silent never answered: dropped with on_error WS_ERR_TIMEOUT and 1006. */
    CHECK(ev_wait_closed(ids, scaled(3000)), "the silent client was dropped");
    ev_conn e = ev_get(ids);
    CHECK_INT(e.close_code, 1006);
    CHECK_RES(e.last_error, WS_ERR_TIMEOUT);
    CHECK(wsc_wait_eof(&silent, scaled(3000)), "its TCP connection is closed");
    CHECK(wsc_wait_eof(&h, scaled(3000)), "the connection that never sent its handshake was closed");
    CHECK(ev_count_logs(WS_LOG_INFO, "handshake timed out") > 0, "the handshake timeout was logged");
    wsc_send_close(&live, 1000, NULL);
    CHECK_INT(read_to_close(&live, NULL), 1000);
    CHECK(ev_wait_closed(idl, scaled(3000)), "on_close for the live client");
    CHECK_INT(ev_get(idl).close_code, 1000);
    ev_stop_server(srv, 1000, "timeouts");
    srv = NULL;
    wsc_free(&live);
    wsc_free(&silent);
    wsc_free(&h);
}

/* "0 disables" for WS_OPT_PING_INTERVAL_MS and for WS_OPT_IDLE_TIMEOUT_MS. */
static void test_timeouts_disabled(void) {
    /* No pings: a silent client is never pinged, and the idle timeout drops it. */
    uint64_t no_ping[] = {WS_OPT_PING_INTERVAL_MS, 0, WS_OPT_IDLE_TIMEOUT_MS, (uint64_t)scaled(500), 0};
    srv = start_with(no_ping);
    wsc a;
    uint64_t ida = open_client(&a);
    int pings = 0, other = 0, eof = 0;
    int64_t t0 = now_ms();
    while (now_ms() - t0 < scaled(3000)) {
        wsc_frame f;
        int r = wsc_read_frame(&a, &f, scaled(50));
        if (r == WSC_OK && f.opcode == WSC_PING) pings++;
        else if (r == WSC_EOF) eof = 1;
        else if (r != WSC_TIMEOUT) other++;
        wsc_frame_free(&f);
        if (r != WSC_OK && r != WSC_TIMEOUT) break;
    }
    CHECK_INT(pings, 0);
    CHECK_INT(other, 0);
    CHECK(eof, "WS_OPT_PING_INTERVAL_MS 0: the silent client was dropped by the idle timeout alone");
    CHECK(ev_wait_closed(ida, scaled(3000)), "on_close for the idle client");
    CHECK_INT(ev_get(ida).close_code, 1006);
    CHECK_RES(ev_get(ida).last_error, WS_ERR_TIMEOUT);
    ev_stop_server(srv, 1000, "ping interval 0");
    srv = NULL;
    wsc_free(&a);

    /* No idle timeout: a client that never answers the pings stays connected. */
    uint64_t no_idle[] = {WS_OPT_PING_INTERVAL_MS, (uint64_t)scaled(100), WS_OPT_IDLE_TIMEOUT_MS, 0, 0};
    srv = start_with(no_idle);
    uint64_t idb = open_client(&a);
    pings = 0;
    other = 0;
    t0 = now_ms();
    while (now_ms() - t0 < scaled(1500)) {
        wsc_frame f;
        int r = wsc_read_frame(&a, &f, scaled(50)); /* pings are read, never answered */
        if (r == WSC_OK && f.opcode == WSC_PING) pings++;
        else if (r != WSC_TIMEOUT) other++;
        wsc_frame_free(&f);
        if (r != WSC_OK && r != WSC_TIMEOUT) break;
    }
    CHECK(pings >= 3, "WS_OPT_IDLE_TIMEOUT_MS 0: pings keep coming (%d)", pings);
    CHECK_INT(other, 0);
    CHECK_INT(ev_get(idb).closed, 0);
    wsc_send_close(&a, 1000, NULL);
    CHECK_INT(read_to_close(&a, NULL), 1000);
    CHECK(ev_wait_closed(idb, scaled(3000)), "on_close for the client that never answered a ping");
    CHECK_INT(ev_get(idb).close_code, 1000);
    CHECK_INT(ev_get(idb).errors, 0);
    ev_stop_server(srv, 1000, "idle timeout 0");
    srv = NULL;
    wsc_free(&a);
}

static void test_close_timeout(void) {
    uint64_t opts[] = {WS_OPT_CLOSE_TIMEOUT_MS, (uint64_t)scaled(300), 0};
    srv = start_with(opts);
    wsc a;
    uint64_t id = open_client(&a);
    int64_t t0 = now_ms();
    CHECK_RES(ws_server_disconnect(srv, id, 1000, "bye"), WS_OK);
    CHECK_INT(read_to_close(&a, NULL), 1000); /* and never answer it */
    CHECK(ev_wait_closed(id, scaled(3000)), "on_close after the close timeout");
    int64_t dt = now_ms() - t0;
    CHECK(dt >= 250, "on_close waited for WS_OPT_CLOSE_TIMEOUT_MS (%lld ms)", (long long)dt);
    ev_conn e = ev_get(id);
    CHECK_INT(e.close_code, 1006);
    /* The header: WS_ERR_TIMEOUT is "A handshake, idle or close timeout
     * expired (on_error)", and on_error covers "timeout". */
    CHECK(e.errors == 1 && e.last_error == WS_ERR_TIMEOUT,
          "a close timeout is reported by on_error(WS_ERR_TIMEOUT) before on_close (on_error calls: %d, last %s)",
          e.errors, e.errors ? ws_result_name(e.last_error) : "none");
    CHECK(wsc_wait_eof(&a, scaled(3000)), "TCP closed after the close timeout");
    ev_stop_server(srv, 1000, "close timeout");
    srv = NULL;
    wsc_free(&a);
}

static void test_close_in_on_open(void) {
    srv = start_with(NULL);
    wsc a, b;
    uint64_t ida = open_client(&a);
    /* b's on_open closes the server: b was accepted (on_open returned 0),
     * so it should get its 101, then the 1001 like everyone else. */
    int status = wsc_open(&b, "127.0.0.1", port, "/close-server", NULL, 0, scaled(2000));
    CHECK(status == 101, "ws_server_close inside on_open: the accepted client still gets its 101 (got %d: %s; %zu raw "
          "bytes instead, starting %02x %02x)", status, b.why, b.len, b.len > 0 ? b.buf[0] : 0, b.len > 1 ? b.buf[1] : 0);
    if (status == 101) {
        CHECK_INT(read_to_close(&b, NULL), 1001);
        wsc_send_close(&b, 1001, NULL);
    }
    CHECK_INT(read_to_close(&a, NULL), 1001);
    wsc_send_close(&a, 1001, NULL);
    CHECK(ev_wait_closed(ida, scaled(5000)), "on_close for the other client");
    pthread_mutex_lock(&ev_mu);
    int r = incb.close_result;
    int64_t ms = incb.close_ms;
    pthread_mutex_unlock(&ev_mu);
    CHECK_RES(r, WS_OK);
    CHECK(ms < scaled(1000), "ws_server_close inside on_open returned at once (%lld ms)", (long long)ms);
    wsc_free(&b);
    ev_stop_server(srv, (uint32_t)scaled(2000), "close in on_open");
    srv = NULL;
    wsc_free(&a);
}

static void on_alarm(int sig) {
    (void)sig;
    static const char m[] = "test_lifecycle: TIMEOUT (deadlock?)\n0 passed, 1 failed\n";
    if (write(2, m, sizeof m - 1) < 0) _exit(3);
    _exit(3);
}

/* Clients that send part of a frame and are gone at once (a FIN, then a
 * reset): their bytes and their end reach the server together, and no
 * other readiness follows. Each must still get its on_close, 1006: a
 * server that stopped reading at the short read (the socket looked empty)
 * would hold these connections for ever. */
static void test_gone_mid_frame(void) {
    srv = start_with(NULL);
    unsigned char part[3000];
    memset(part, 5, sizeof part);
    /* FIN, binary; masked, 16-bit length 4000; mask; 2,992 of its 4,000 bytes. */
    const unsigned char head[8] = {0x82, 0x80 | 126, 0x0f, 0xa0, 1, 2, 3, 4};
    memcpy(part, head, sizeof head);
    for (int reset = 0; reset <= 1; reset++) {
        uint64_t ids[10];
        for (int i = 0; i < 10; i++) {
            wsc c;
            ids[i] = open_client(&c);
            sleep_ms(10); /* idle in the server, waiting for its socket */
            if (reset) {
                struct linger lg = {.l_onoff = 1, .l_linger = 0}; /* close sends RST */
                CHECK(setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0, "SO_LINGER");
            }
            wsc_send_raw(&c, part, sizeof part);
            if (!reset) shutdown(c.fd, SHUT_WR);
            wsc_free(&c);
        }
        for (int i = 0; i < 10; i++) {
            CHECK(ev_wait_closed(ids[i], scaled(3000)), "on_close for client %d gone mid-frame by %s", i,
                  reset ? "reset" : "FIN");
            CHECK_INT(ev_get(ids[i]).close_code, 1006);
        }
    }
    ev_check_invariants("clients gone mid-frame");
    ev_stop_server(srv, (uint32_t)scaled(2000), "gone mid-frame");
    srv = NULL;
}

int main(void) {
    /* A SIGPIPE from the library is test_sigpipe's subject; here it would
     * only hide every other result. */
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, on_alarm);
    alarm((unsigned)scaled(120));
    test_close_from_thread();
    test_close_in_callback();
    test_own_connection_from_its_callback();
    test_free_in_callback();
    test_free_with_open_connection();
    test_log_levels();
    test_max_connections();
    test_max_connections_counts_handshakes();
    test_timeouts();
    test_timeouts_disabled();
    test_close_timeout();
    test_close_in_on_open();
    test_gone_mid_frame();
    return check_summary("test_lifecycle");
}
