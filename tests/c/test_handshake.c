/*
 * test_handshake: the host's control over the opening handshake, through
 * the public C ABI, with real clients over loopback.
 *
 * Callback mode (on_open dispatches on the path):
 * - /defer: on_open returns WS_OPEN_DEFER; the test thread sends a message,
 *   then calls ws_conn_accept 100 ms later: the client gets its 101 only
 *   then, and the message right after it; answering again: WS_ERR_STATE.
 * - /forever: deferred and never answered: 503 after
 *   WS_OPT_HANDSHAKE_TIMEOUT_MS, on_close 1006, then WS_ERR_CLOSED.
 * - /cookie: ws_conn_add_header in on_open: the 101 carries Set-Cookie;
 *   bad headers (name not a token, CR/LF/NUL in the value, headers the
 *   server sets itself) WS_ERR_INVALID_ARGUMENT, bad UTF-8, NULLs.
 * - /chat: ws_conn_accept(conn, "chat") in on_open chooses the offered
 *   subprotocol over the server's own choice; one not offered:
 *   WS_ERR_INVALID_ARGUMENT; headers and answers after it: WS_ERR_STATE.
 * - /login, /login-defer, /login-json: ws_conn_refuse_with_body(401) in
 *   on_open (returning 0 or WS_OPEN_DEFER): the body, Content-Length and
 *   a text/plain Content-Type unless the host added one; a 65 KiB body and
 *   bad statuses: WS_ERR_INVALID_ARGUMENT.
 * - /hdrs: ws_request_header_count / ws_request_header_at list every
 *   header line in the client's order (repeats included); past the end
 *   WS_ERR_INVALID_ARGUMENT; NULLs.
 * Event mode: the same answers after WS_EVENT_OPEN (add_header + accept,
 * add_header + refuse_with_body), headers of the event's request.
 * Origins and paths: allowed, 403, 404, case-insensitive origins, no
 * Origin passes, the query is not part of the path; bad arguments; both
 * setters after listen: WS_ERR_STATE.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "check.h"
#include "client.h"
#include "events.h"
#include "evq.h"

static ws_server *srv;

/* What on_open saw and got back (under ev_mu). */
#define NRES 32
static struct {
    uint64_t defer_id, forever_id, chat_id, cookie_id, defer_refuse_id;
    int cookie_res[NRES];
    int chat_res[NRES];
    int login_res[NRES];
    int hdr_count;
    char hdr_names[16][64];
    char hdr_values[16][128];
    int hdr_past_end, hdr_null_req, hdr_null_out;
    size_t hdr_null_count;
    int hdr_untouched;
    int hdr_lookup_ok;
} G;

static const char *S(const char *s) { return s ? s : "(NULL)"; }

/* Copies every header of `req` into G (callback or event mode). */
static void record_headers(const ws_request *req) {
    size_t n = ws_request_header_count(req);
    G.hdr_count = (int)n;
    for (size_t i = 0; i < n && i < 16; i++) {
        const char *name = NULL, *value = NULL;
        if (ws_request_header_at(req, i, &name, &value) == WS_OK) {
            snprintf(G.hdr_names[i], sizeof G.hdr_names[i], "%s", S(name));
            snprintf(G.hdr_values[i], sizeof G.hdr_values[i], "%s", S(value));
        }
    }
    const char *name = "untouched", *value = "untouched";
    G.hdr_past_end = ws_request_header_at(req, n, &name, &value);
    G.hdr_untouched = strcmp(name, "untouched") == 0 && strcmp(value, "untouched") == 0;
    G.hdr_past_end = G.hdr_past_end == WS_ERR_INVALID_ARGUMENT &&
                     ws_request_header_at(req, n + 1000, &name, &value) == WS_ERR_INVALID_ARGUMENT &&
                     ws_request_header_at(req, (size_t)-1, &name, &value) == WS_ERR_INVALID_ARGUMENT;
    G.hdr_null_req = ws_request_header_at(NULL, 0, &name, &value);
    G.hdr_null_out = ws_request_header_at(req, 0, NULL, &value) == WS_ERR_NULL &&
                     ws_request_header_at(req, 0, &name, NULL) == WS_ERR_NULL;
    G.hdr_null_count = ws_request_header_count(NULL);
    const char *x2 = ws_request_header(req, "x-TWO");
    G.hdr_lookup_ok = x2 != NULL && strcmp(x2, "two") == 0;
}

static void bad_headers(ws_server *s, uint64_t conn, int *res) {
    int k = 0;
    res[k++] = ws_conn_add_header(s, conn, "Bad Name", "v");
    res[k++] = ws_conn_add_header(s, conn, "", "v");
    res[k++] = ws_conn_add_header(s, conn, "X:Colon", "v");
    res[k++] = ws_conn_add_header(s, conn, "X-Ok", "a\r\nInjected: 1");
    res[k++] = ws_conn_add_header(s, conn, "X-Ok", "a\nb");
    res[k++] = ws_conn_add_header(s, conn, "X-Ok", "a\rb");
    res[k++] = ws_conn_add_header(s, conn, "Content-Length", "5");
    res[k++] = ws_conn_add_header(s, conn, "content-length", "5");
    res[k++] = ws_conn_add_header(s, conn, "Transfer-Encoding", "chunked");
    res[k++] = ws_conn_add_header(s, conn, "Connection", "close");
    res[k++] = ws_conn_add_header(s, conn, "Upgrade", "h2c");
    res[k++] = ws_conn_add_header(s, conn, "Sec-WebSocket-Accept", "x");
    res[k++] = ws_conn_add_header(s, conn, "Sec-WebSocket-Extensions", "x");
    /* k == 13: the rest have other results */
    res[k++] = ws_conn_add_header(s, conn, NULL, "v");
    res[k++] = ws_conn_add_header(s, conn, "X-Ok", NULL);
    res[k++] = ws_conn_add_header(NULL, conn, "X-Ok", "v");
    res[k++] = ws_conn_add_header(s, conn, "X-Ok", "caf\xff");
    res[k++] = ws_conn_add_header(s, 999999, "X-Ok", "v");
}
#define NBAD_INVALID 13

static void check_bad_headers(const int *res, const char *when) {
    int invalid = 0;
    for (int i = 0; i < NBAD_INVALID; i++) {
        if (res[i] == WS_ERR_INVALID_ARGUMENT) invalid++;
        else CHECK(0, "%s: bad header %d refused with WS_ERR_INVALID_ARGUMENT, got %s", when, i, ws_result_name(res[i]));
    }
    CHECK_INT(invalid, NBAD_INVALID);
    CHECK_RES(res[NBAD_INVALID], WS_ERR_NULL);
    CHECK_RES(res[NBAD_INVALID + 1], WS_ERR_NULL);
    CHECK_RES(res[NBAD_INVALID + 2], WS_ERR_NULL);
    CHECK_RES(res[NBAD_INVALID + 3], WS_ERR_INVALID_UTF8);
    CHECK_RES(res[NBAD_INVALID + 4], WS_ERR_NO_SUCH_CONN);
}

static int on_open(void *ud, uint64_t conn, const ws_request *req) {
    (void)ud;
    ev_enter(conn, 1);
    const char *path = S(ws_request_path(req));
    int ret = 0, accepted = 1;
    pthread_mutex_lock(&ev_mu);
    if (strcmp(path, "/defer") == 0) {
        G.defer_id = conn;
        ret = WS_OPEN_DEFER;
    } else if (strcmp(path, "/defer-refuse") == 0) {
        G.defer_refuse_id = conn;
        ret = WS_OPEN_DEFER;
        accepted = 0; /* refused later: no on_close may follow */
    } else if (strcmp(path, "/forever") == 0) {
        G.forever_id = conn;
        ret = WS_OPEN_DEFER;
    } else if (strcmp(path, "/cookie") == 0) {
        G.cookie_id = conn;
        G.cookie_res[0] = ws_conn_add_header(srv, conn, "Set-Cookie", "sid=1; Path=/");
        G.cookie_res[1] = ws_conn_add_header(srv, conn, "X-Extra", "");
        bad_headers(srv, conn, G.cookie_res + 2);
    } else if (strcmp(path, "/chat") == 0) {
        G.chat_id = conn;
        int k = 0;
        G.chat_res[k++] = ws_conn_accept(srv, conn, "nope");      /* not offered */
        G.chat_res[k++] = ws_conn_accept(srv, conn, "Chat");      /* case matters */
        G.chat_res[k++] = ws_conn_add_header(srv, conn, "X-Before", "1");
        G.chat_res[k++] = ws_conn_accept(srv, conn, "chat");
        G.chat_res[k++] = ws_conn_add_header(srv, conn, "X-After", "1");
        G.chat_res[k++] = ws_conn_accept(srv, conn, "chat");
        G.chat_res[k++] = ws_conn_accept(srv, conn, NULL);
        G.chat_res[k++] = ws_conn_refuse(srv, conn, 403);
        G.chat_res[k++] = ws_conn_refuse_with_body(srv, conn, 403, (const uint8_t *)"x", 1);
    } else if (strncmp(path, "/login", 6) == 0) {
        int k = 0;
        static uint8_t huge[65 * 1024 + 1];
        G.login_res[k++] = ws_conn_refuse_with_body(srv, conn, 401, huge, 65 * 1024);
        G.login_res[k++] = ws_conn_refuse_with_body(srv, conn, 399, (const uint8_t *)"x", 1);
        G.login_res[k++] = ws_conn_refuse_with_body(srv, conn, 600, (const uint8_t *)"x", 1);
        G.login_res[k++] = ws_conn_refuse_with_body(srv, conn, 401, NULL, 3);
        G.login_res[k++] = ws_conn_add_header(srv, conn, "WWW-Authenticate", "Basic realm=\"t\"");
        if (strcmp(path, "/login-json") == 0)
            G.login_res[k++] = ws_conn_add_header(srv, conn, "Content-Type", "application/json");
        else
            G.login_res[k++] = WS_OK;
        if (strcmp(path, "/login-json") == 0)
            G.login_res[k++] = ws_conn_refuse_with_body(srv, conn, 401, (const uint8_t *)"{\"e\":1}", 7);
        else
            G.login_res[k++] = ws_conn_refuse_with_body(srv, conn, 401, (const uint8_t *)"login first", 11);
        G.login_res[k++] = ws_conn_add_header(srv, conn, "X-Late", "1");
        G.login_res[k++] = ws_conn_accept(srv, conn, NULL);
        G.login_res[k++] = ws_conn_refuse(srv, conn, 403);
        ret = strcmp(path, "/login-defer") == 0 ? WS_OPEN_DEFER : 0;
        accepted = 0;
    } else if (strcmp(path, "/hdrs") == 0) {
        record_headers(req);
    }
    pthread_mutex_unlock(&ev_mu);
    ev_record_open(conn, accepted);
    ev_leave();
    return ret;
}

static void on_message(void *ud, uint64_t conn, const uint8_t *data, size_t len, ws_kind kind) {
    (void)ud;
    (void)data;
    (void)len;
    (void)kind;
    ev_enter(conn, 0);
    ev_record_message(conn);
    ev_leave();
}

static uint64_t get_id(uint64_t *field) {
    int64_t deadline = now_ms() + scaled(5000);
    for (;;) {
        pthread_mutex_lock(&ev_mu);
        uint64_t id = *field;
        pthread_mutex_unlock(&ev_mu);
        if (id != 0 || now_ms() > deadline) return id;
        sleep_ms(1);
    }
}

static const char *hdr(wsc *c, const char *name, char *buf, size_t cap) {
    const char *v = wsc_answer_header(c, name, buf, cap);
    return v ? v : "(none)";
}

static int count_header(const wsc *c, const char *name) {
    int n = 0;
    size_t nl = strlen(name);
    for (const char *p = strstr(c->head, "\r\n"); p != NULL; p = strstr(p + 2, "\r\n"))
        if (strncasecmp(p + 2, name, nl) == 0 && p[2 + nl] == ':') n++;
    return n;
}

/* Reads a refusal's body (Content-Length bytes) into out. */
static int read_body(wsc *c, char *out, size_t cap) {
    char cl[32];
    if (!wsc_answer_header(c, "Content-Length", cl, sizeof cl)) return -1;
    size_t want = (size_t)atol(cl);
    if (c->len < want) wsc_read_some(c, want - c->len, scaled(3000));
    if (c->len < want || want >= cap) return -1;
    memcpy(out, c->buf, want);
    out[want] = '\0';
    return (int)want;
}

static void check_login(uint16_t port, const char *path, const char *want_type, const char *want_body) {
    wsc c;
    ev_forget_open();
    int st = wsc_open(&c, "127.0.0.1", port, path, NULL, 0, scaled(5000));
    CHECK(st == 401, "%s: 401 (got %d) %s", path, st, c.why);
    char buf[256], body[256];
    const char *ct = hdr(&c, "Content-Type", buf, sizeof buf);
    CHECK(strncmp(ct, want_type, strlen(want_type)) == 0, "%s: Content-Type \"%s\" (want %s...)", path, ct,
          want_type);
    CHECK_INT(count_header(&c, "Content-Type"), 1);
    CHECK_STR(hdr(&c, "WWW-Authenticate", buf, sizeof buf), "Basic realm=\"t\"");
    CHECK_INT(count_header(&c, "X-Late"), 0);
    int n = read_body(&c, body, sizeof body);
    CHECK(n == (int)strlen(want_body) && strcmp(body, want_body) == 0, "%s: body \"%s\" (got %d: \"%s\")", path,
          want_body, n, n >= 0 ? body : "");
    CHECK(wsc_wait_eof(&c, scaled(3000)), "%s: closed after the refusal", path);
    wsc_free(&c);
    pthread_mutex_lock(&ev_mu);
    int *r = G.login_res;
    CHECK_RES(r[0], WS_ERR_INVALID_ARGUMENT); /* 65 KiB */
    CHECK_RES(r[1], WS_ERR_INVALID_ARGUMENT); /* 399 */
    CHECK_RES(r[2], WS_ERR_INVALID_ARGUMENT); /* 600 */
    CHECK_RES(r[3], WS_ERR_NULL);             /* NULL body with a length */
    CHECK_RES(r[4], WS_OK);
    CHECK_RES(r[5], WS_OK);
    CHECK_RES(r[6], WS_OK);
    CHECK_RES(r[7], WS_ERR_STATE); /* header after the answer */
    CHECK_RES(r[8], WS_ERR_STATE);
    CHECK_RES(r[9], WS_ERR_STATE);
    memset(G.login_res, 0x55, sizeof G.login_res);
    pthread_mutex_unlock(&ev_mu);
}

static void test_callback_mode(void) {
    events_reset();
    ws_callbacks cb = ev_callbacks(on_open, on_message);
    srv = ws_server_new(&cb, NULL);
    const char *protos[] = {"superchat", "chat"};
    CHECK_RES(ws_server_set_subprotocols(srv, protos, 2), WS_OK);
    int hs_timeout = scaled(1500);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_HANDSHAKE_TIMEOUT_MS, (uint64_t)hs_timeout), WS_OK);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_CLOSE_TIMEOUT_MS, (uint64_t)scaled(3000)), WS_OK);
    CHECK_RES(ws_server_listen(srv, "127.0.0.1", 0), WS_OK);
    uint16_t port;
    CHECK_RES(ws_server_port(srv, &port), WS_OK);

    /* ---- deferred, answered from this thread 100 ms later ---- */
    opener o = {0};
    opener_start(&o, port, "/defer", NULL);
    uint64_t id = get_id(&G.defer_id);
    if (CHECK(id != 0, "on_open for /defer")) {
        CHECK_RES(ws_server_send(srv, id, (const uint8_t *)"early", 5, WS_TEXT), WS_OK);
        int64_t t0 = now_ms();
        sleep_ms(100); /* the host takes its time: the stimulus, not a synchronisation */
        CHECK(pthread_tryjoin_np(o.th, NULL) == EBUSY, "no answer for the client before ws_conn_accept");
        CHECK_RES(ws_conn_accept(srv, id, NULL), WS_OK);
        int st = opener_join(&o);
        int64_t dt = now_ms() - t0;
        CHECK(st == 101, "/defer: 101 after ws_conn_accept (%d) %s", st, o.c.why);
        CHECK(dt >= 100, "the 101 came after the answer (%lld ms)", (long long)dt);
        char buf[64];
        CHECK_STR(hdr(&o.c, "Sec-WebSocket-Protocol", buf, sizeof buf), "(none)");
        wsc_frame f;
        int r = wsc_recv(&o.c, &f, scaled(3000));
        CHECK(r == WSC_OK && f.opcode == WSC_TEXT && f.len == 5 && memcmp(f.data, "early", 5) == 0,
              "the message sent before the answer arrives after the 101");
        if (r == WSC_OK) wsc_frame_free(&f);
        CHECK_RES(ws_conn_accept(srv, id, NULL), WS_ERR_STATE);
        CHECK_RES(ws_conn_refuse(srv, id, 403), WS_ERR_STATE);
        CHECK_RES(ws_conn_add_header(srv, id, "X-Late", "1"), WS_ERR_STATE);
        wsc_send_text(&o.c, "after");
        CHECK_INT(wsc_send_close(&o.c, 1000, NULL), 0);
        CHECK_INT(wsc_recv_close(&o.c, scaled(3000), NULL, NULL, 0), 1000);
        CHECK(ev_wait_closed(id, scaled(3000)), "/defer closed");
        CHECK_INT(ev_get(id).messages, 1);
    } else {
        opener_join(&o);
    }
    wsc_free(&o.c);

    /* ---- deferred, refused later with a body (exactly 64 KiB) from this thread ---- */
    opener_start(&o, port, "/defer-refuse", NULL);
    uint64_t rid = get_id(&G.defer_refuse_id);
    if (CHECK(rid != 0, "on_open for /defer-refuse")) {
        static uint8_t body64[64 * 1024];
        for (size_t i = 0; i < sizeof body64; i++) body64[i] = (uint8_t)('A' + i % 26);
        CHECK_RES(ws_conn_add_header(srv, rid, "Content-Type", "application/octet-stream"), WS_OK);
        CHECK_RES(ws_conn_refuse_with_body(srv, rid, 403, body64, sizeof body64), WS_OK);
        int st = opener_join(&o);
        CHECK(st == 403, "/defer-refuse: 403 (%d) %s", st, o.c.why);
        char buf[64];
        CHECK_STR(hdr(&o.c, "Content-Type", buf, sizeof buf), "application/octet-stream");
        CHECK_STR(hdr(&o.c, "Content-Length", buf, sizeof buf), "65536");
        if (o.c.len < sizeof body64) wsc_read_some(&o.c, sizeof body64 - o.c.len, scaled(3000));
        CHECK(o.c.len == sizeof body64 && memcmp(o.c.buf, body64, sizeof body64) == 0, "the 64 KiB body arrives whole (%zu bytes)",
              o.c.len);
        CHECK(wsc_wait_eof(&o.c, scaled(3000)), "closed after the refusal");
        int r = ws_conn_accept(srv, rid, NULL);
        CHECK(r == WS_ERR_STATE || r == WS_ERR_CLOSED, "accept after the refusal: %s", ws_result_name(r));
    } else {
        opener_join(&o);
    }
    wsc_free(&o.c);

    /* ---- deferred and never answered: 503 at the handshake timeout ---- */
    opener_start(&o, port, "/forever", NULL);
    int64_t t0 = now_ms();
    uint64_t fid = get_id(&G.forever_id);
    CHECK(fid != 0, "on_open for /forever");
    int st = opener_join(&o);
    int64_t dt = now_ms() - t0;
    CHECK(st == 503, "/forever: 503 (got %d) %s", st, o.c.why);
    CHECK(dt >= hs_timeout - 100 && dt < hs_timeout + scaled(2000), "503 after about the handshake timeout (%lld ms, timeout %d)",
          (long long)dt, hs_timeout);
    wsc_free(&o.c);
    if (fid) {
        CHECK(ev_wait_closed(fid, scaled(3000)), "/forever: on_close after the timeout");
        CHECK_INT(ev_get(fid).close_code, 1006);
        CHECK_RES(ws_conn_accept(srv, fid, NULL), WS_ERR_CLOSED);
        CHECK_RES(ws_conn_add_header(srv, fid, "X-A", "1"), WS_ERR_CLOSED);
    }

    /* ---- extra headers in the 101 ---- */
    wsc c;
    uint64_t cid = ev_open_client(&c, port, "/cookie", 0);
    if (cid) {
        char buf[128];
        CHECK_STR(hdr(&c, "Set-Cookie", buf, sizeof buf), "sid=1; Path=/");
        CHECK_INT(count_header(&c, "X-Extra"), 1);
        CHECK_INT(count_header(&c, "Injected"), 0);
        CHECK_INT(count_header(&c, "Content-Length"), 0);
        CHECK_INT(count_header(&c, "Upgrade"), 1);
        CHECK_INT(count_header(&c, "Connection"), 1);
        CHECK_STR(hdr(&c, "Sec-WebSocket-Protocol", buf, sizeof buf), "(none)");
        pthread_mutex_lock(&ev_mu);
        CHECK_RES(G.cookie_res[0], WS_OK);
        CHECK_RES(G.cookie_res[1], WS_OK);
        check_bad_headers(G.cookie_res + 2, "on_open");
        pthread_mutex_unlock(&ev_mu);
        CHECK_RES(ws_conn_add_header(srv, cid, "X-Open", "1"), WS_ERR_STATE); /* open already */
        CHECK_RES(ws_conn_accept(srv, cid, NULL), WS_ERR_STATE);
        wsc_send_close(&c, 1000, NULL);
        CHECK_INT(wsc_recv_close(&c, scaled(3000), NULL, NULL, 0), 1000);
        CHECK(ev_wait_closed(cid, scaled(3000)), "/cookie closed");
        CHECK_RES(ws_conn_add_header(srv, cid, "X-Closed", "1"), WS_ERR_CLOSED);
    }
    wsc_free(&c);

    /* ---- the subprotocol chosen in on_open ---- */
    ev_forget_open();
    st = wsc_open(&c, "127.0.0.1", port, "/chat", "Sec-WebSocket-Protocol: superchat, chat\r\n", 0, scaled(5000));
    CHECK(st == 101, "/chat: 101 (%d) %s", st, c.why);
    if (st == 101) {
        char buf[64];
        CHECK_STR(hdr(&c, "Sec-WebSocket-Protocol", buf, sizeof buf), "chat");
        CHECK_INT(count_header(&c, "Sec-WebSocket-Protocol"), 1);
        CHECK_INT(count_header(&c, "X-Before"), 1);
        CHECK_INT(count_header(&c, "X-After"), 0);
        uint64_t chid = ev_wait_open(scaled(3000));
        pthread_mutex_lock(&ev_mu);
        int *r = G.chat_res;
        CHECK_RES(r[0], WS_ERR_INVALID_ARGUMENT);
        CHECK_RES(r[1], WS_ERR_INVALID_ARGUMENT);
        CHECK_RES(r[2], WS_OK);
        CHECK_RES(r[3], WS_OK);
        CHECK_RES(r[4], WS_ERR_STATE);
        CHECK_RES(r[5], WS_ERR_STATE);
        CHECK_RES(r[6], WS_ERR_STATE);
        CHECK_RES(r[7], WS_ERR_STATE);
        CHECK_RES(r[8], WS_ERR_STATE);
        pthread_mutex_unlock(&ev_mu);
        wsc_send_close(&c, 1000, NULL);
        CHECK_INT(wsc_recv_close(&c, scaled(3000), NULL, NULL, 0), 1000);
        CHECK(ev_wait_closed(chid, scaled(3000)), "/chat closed");
    }
    wsc_free(&c);
    /* Without the host's choice: the server's own (its first preference). */
    uint64_t sid = 0;
    ev_forget_open();
    st = wsc_open(&c, "127.0.0.1", port, "/plain", "Sec-WebSocket-Protocol: chat, superchat\r\n", 0, scaled(5000));
    CHECK_INT(st, 101);
    if (st == 101) {
        char buf[64];
        CHECK_STR(hdr(&c, "Sec-WebSocket-Protocol", buf, sizeof buf), "superchat");
        sid = ev_wait_open(scaled(3000));
        wsc_send_close(&c, 1000, NULL);
        CHECK_INT(wsc_recv_close(&c, scaled(3000), NULL, NULL, 0), 1000);
        CHECK(ev_wait_closed(sid, scaled(3000)), "/plain closed");
    }
    wsc_free(&c);

    /* ---- refusals with a body ---- */
    check_login(port, "/login", "text/plain", "login first");
    check_login(port, "/login-defer", "text/plain", "login first");
    check_login(port, "/login-json", "application/json", "{\"e\":1}");

    /* ---- every request header, in order ---- */
    uint64_t hid = 0;
    ev_forget_open();
    st = wsc_open(&c, "127.0.0.1", port, "/hdrs?q=1", "X-One: 1\r\nX-Two: two\r\nX-One: again\r\n", 0, scaled(5000));
    CHECK_INT(st, 101);
    if (st == 101) {
        hid = ev_wait_open(scaled(3000));
        pthread_mutex_lock(&ev_mu);
        const char *names[] = {"Host", "Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version",
                               "X-One", "X-Two", "X-One"};
        CHECK_INT(G.hdr_count, 8);
        int ok = G.hdr_count == 8;
        for (int i = 0; ok && i < 8; i++) ok = strcasecmp(G.hdr_names[i], names[i]) == 0;
        CHECK(ok, "header names in the client's order (%s, %s, %s, %s, %s, %s, %s, %s)", G.hdr_names[0],
              G.hdr_names[1], G.hdr_names[2], G.hdr_names[3], G.hdr_names[4], G.hdr_names[5], G.hdr_names[6],
              G.hdr_names[7]);
        char hostv[64];
        snprintf(hostv, sizeof hostv, "127.0.0.1:%u", (unsigned)port);
        CHECK_STR(G.hdr_values[0], hostv);
        CHECK_STR(G.hdr_values[1], "websocket");
        CHECK_STR(G.hdr_values[4], "13");
        CHECK_STR(G.hdr_values[5], "1");
        CHECK_STR(G.hdr_values[6], "two");
        CHECK_STR(G.hdr_values[7], "again");
        CHECK(G.hdr_past_end, "index past the end: WS_ERR_INVALID_ARGUMENT");
        CHECK(G.hdr_untouched, "outputs untouched past the end");
        CHECK_RES(G.hdr_null_req, WS_ERR_NULL);
        CHECK(G.hdr_null_out, "NULL out pointers: WS_ERR_NULL");
        CHECK_INT(G.hdr_null_count, 0);
        CHECK(G.hdr_lookup_ok, "ws_request_header(\"x-TWO\") is \"two\"");
        memset(G.hdr_names, 0, sizeof G.hdr_names);
        pthread_mutex_unlock(&ev_mu);
        wsc_send_close(&c, 1000, NULL);
        CHECK_INT(wsc_recv_close(&c, scaled(3000), NULL, NULL, 0), 1000);
        CHECK(ev_wait_closed(hid, scaled(3000)), "/hdrs closed");
    }
    wsc_free(&c);

    ev_stop_server(srv, (uint32_t)scaled(2000), "handshake (callbacks)");
}

/* ---- event mode ---- */

static void test_event_mode(void) {
    evq_reset();
    uint16_t port;
    ws_server *s = evq_server(0, &port);

    /* add_header + accept (with a subprotocol), headers of the event's request */
    opener o = {0};
    opener_start(&o, port, "/ev?x=1", "Sec-WebSocket-Protocol: a, chat\r\nX-One: 1\r\nX-Two: two\r\nX-One: again\r\n");
    ws_event *ev = evq_wait(s, WS_EVENT_OPEN, 0, scaled(5000));
    uint64_t id = 0;
    if (CHECK(ev != NULL, "WS_EVENT_OPEN")) {
        id = ev->conn;
        memset(&G, 0, sizeof G);
        record_headers(ev->request);
        CHECK_INT(G.hdr_count, 9);
        const char *names[] = {"Host", "Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version",
                               "Sec-WebSocket-Protocol", "X-One", "X-Two", "X-One"};
        int ok = G.hdr_count == 9;
        for (int i = 0; ok && i < 9; i++) ok = strcasecmp(G.hdr_names[i], names[i]) == 0;
        CHECK(ok, "event request: header names in order");
        CHECK_STR(G.hdr_values[5], "a, chat");
        CHECK_STR(G.hdr_values[8], "again");
        CHECK(G.hdr_past_end && G.hdr_untouched, "event request: past the end WS_ERR_INVALID_ARGUMENT");
        CHECK(G.hdr_null_out, "event request: NULL outs");
        int bad[NRES];
        bad_headers(s, id, bad);
        check_bad_headers(bad, "event mode");
        CHECK_RES(ws_conn_add_header(s, id, "Set-Cookie", "sid=2; Path=/"), WS_OK);
        CHECK_RES(ws_conn_accept(s, id, "b"), WS_ERR_INVALID_ARGUMENT);
        CHECK_RES(ws_server_send(s, id, (const uint8_t *)"first", 5, WS_TEXT), WS_OK);
        CHECK_RES(ws_conn_accept(s, id, "chat"), WS_OK);
        CHECK_RES(ws_conn_add_header(s, id, "X-Late", "1"), WS_ERR_STATE);
        CHECK_RES(ws_conn_accept(s, id, NULL), WS_ERR_STATE);
        /* The request stays readable until ws_event_free. */
        const char *n = NULL, *v = NULL;
        CHECK_RES(ws_request_header_at(ev->request, 7, &n, &v), WS_OK);
        CHECK_STR(n, "X-Two");
        ws_event_free(ev);
    }
    int st = opener_join(&o);
    CHECK(st == 101, "event mode: 101 (%d) %s", st, o.c.why);
    if (st == 101) {
        char buf[64];
        CHECK_STR(hdr(&o.c, "Set-Cookie", buf, sizeof buf), "sid=2; Path=/");
        CHECK_STR(hdr(&o.c, "Sec-WebSocket-Protocol", buf, sizeof buf), "chat");
        CHECK_INT(count_header(&o.c, "X-Late"), 0);
        wsc_frame f;
        int r = wsc_recv(&o.c, &f, scaled(3000));
        CHECK(r == WSC_OK && f.len == 5 && memcmp(f.data, "first", 5) == 0, "event mode: message after the 101");
        if (r == WSC_OK) wsc_frame_free(&f);
    }
    wsc_free(&o.c);
    ev = evq_wait(s, WS_EVENT_CLOSE, id, scaled(5000));
    CHECK(ev != NULL, "event mode: close after the client left");
    ws_event_free(ev);

    /* add_header + refuse_with_body */
    const char *bodies[2] = {"login first", "{\"e\":2}"};
    for (int k = 0; k < 2; k++) {
        opener_start(&o, port, "/ev-login", NULL);
        ev = evq_wait(s, WS_EVENT_OPEN, 0, scaled(5000));
        if (CHECK(ev != NULL, "WS_EVENT_OPEN (login %d)", k)) {
            uint64_t lid = ev->conn;
            static uint8_t huge[65 * 1024];
            CHECK_RES(ws_conn_refuse_with_body(s, lid, 401, huge, sizeof huge), WS_ERR_INVALID_ARGUMENT);
            CHECK_RES(ws_conn_refuse_with_body(s, lid, 200, (const uint8_t *)"x", 1), WS_ERR_INVALID_ARGUMENT);
            CHECK_RES(ws_conn_add_header(s, lid, "WWW-Authenticate", "Basic realm=\"t\""), WS_OK);
            if (k == 1) CHECK_RES(ws_conn_add_header(s, lid, "Content-Type", "application/json"), WS_OK);
            int r = ws_conn_refuse_with_body(s, lid, 401, (const uint8_t *)bodies[k], strlen(bodies[k]));
            CHECK_RES(r, WS_OK);
            if (r == WS_OK) EQ.conn[lid].refused = 1;
            /* Answered: WS_ERR_STATE, or WS_ERR_CLOSED once the I/O thread
             * has sent the refusal and forgotten the connection (a race). */
            r = ws_conn_add_header(s, lid, "X-Late", "1");
            CHECK(r == WS_ERR_STATE || r == WS_ERR_CLOSED, "header after the refusal: %s", ws_result_name(r));
            r = ws_conn_accept(s, lid, NULL);
            CHECK(r == WS_ERR_STATE || r == WS_ERR_CLOSED, "accept after the refusal: %s", ws_result_name(r));
            ws_event_free(ev);
        }
        st = opener_join(&o);
        CHECK(st == 401, "event mode: 401 (%d) %s", st, o.c.why);
        char buf[128], body[128];
        const char *ct = hdr(&o.c, "Content-Type", buf, sizeof buf);
        const char *want_ct = k == 0 ? "text/plain" : "application/json";
        CHECK(strncmp(ct, want_ct, strlen(want_ct)) == 0, "event mode: Content-Type %s (want %s...)", ct, want_ct);
        CHECK_INT(count_header(&o.c, "Content-Type"), 1);
        CHECK_STR(hdr(&o.c, "WWW-Authenticate", buf, sizeof buf), "Basic realm=\"t\"");
        int n = read_body(&o.c, body, sizeof body);
        CHECK(n >= 0 && strcmp(body, bodies[k]) == 0, "event mode: body \"%s\" (got \"%s\")", bodies[k],
              n >= 0 ? body : "");
        wsc_free(&o.c);
    }
    CHECK_RES(ws_server_close(s, (uint32_t)scaled(2000)), WS_OK);
    evq_drain(s);
    evq_check_invariants("handshake (events)");
    ws_server_free(s);
}

/* ---- allowed origins and paths ---- */

static int plain_open(void *ud, uint64_t conn, const ws_request *req) {
    (void)ud;
    (void)req;
    ev_enter(conn, 1);
    ev_record_open(conn, 1);
    ev_leave();
    return 0;
}

static void test_origins_paths(void) {
    events_reset();
    ws_callbacks cb = ev_callbacks(plain_open, on_message);
    ws_server *s = ws_server_new(&cb, NULL);
    const char *bad_path[] = {"chat"};
    const char *empty[] = {""};
    const char *origins[] = {"https://good.example", "http://other.example:8080"};
    const char *paths[] = {"/chat", "/chat2"};
    CHECK_RES(ws_server_set_paths(s, bad_path, 1), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_server_set_paths(s, empty, 1), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_server_set_paths(s, NULL, 1), WS_ERR_NULL);
    CHECK_RES(ws_server_set_paths(NULL, paths, 1), WS_ERR_NULL);
    CHECK_RES(ws_server_set_paths(s, NULL, 0), WS_OK);
    CHECK_RES(ws_server_set_allowed_origins(s, empty, 1), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_server_set_allowed_origins(s, NULL, 1), WS_ERR_NULL);
    CHECK_RES(ws_server_set_allowed_origins(NULL, origins, 1), WS_ERR_NULL);
    CHECK_RES(ws_server_set_allowed_origins(s, NULL, 0), WS_OK);
    CHECK_RES(ws_server_set_paths(s, paths, 2), WS_OK);
    CHECK_RES(ws_server_set_allowed_origins(s, origins, 2), WS_OK);
    CHECK_RES(ws_server_set_option(s, WS_OPT_CLOSE_TIMEOUT_MS, (uint64_t)scaled(3000)), WS_OK);
    CHECK_RES(ws_server_listen(s, "127.0.0.1", 0), WS_OK);
    CHECK_RES(ws_server_set_paths(s, paths, 1), WS_ERR_STATE);
    CHECK_RES(ws_server_set_allowed_origins(s, origins, 1), WS_ERR_STATE);
    CHECK_RES(ws_server_set_paths(s, NULL, 0), WS_ERR_STATE);
    uint16_t port;
    CHECK_RES(ws_server_port(s, &port), WS_OK);

    struct {
        const char *target, *extra;
        int want;
    } cases[] = {
        {"/chat", NULL, 101},
        {"/chat", "Origin: https://good.example\r\n", 101},
        {"/chat", "Origin: HTTPS://Good.Example\r\n", 101},
        {"/chat2?room=1", "Origin: http://other.example:8080\r\n", 101},
        {"/chat", "Origin: https://evil.example\r\n", 403},
        {"/chat", "Origin: https://good.example.evil\r\n", 403},
        {"/chat", "Origin: http://good.example\r\n", 403},
        {"/chat", "Origin: null\r\n", 403},
        {"/other", NULL, 404},
        {"/chat/", NULL, 404},
        {"/Chat", NULL, 404},
        {"/", NULL, 404},
        {"/other", "Origin: https://good.example\r\n", 404},
    };
    int n = (int)(sizeof cases / sizeof cases[0]);
    int accepted = 0;
    for (int i = 0; i < n; i++) {
        wsc c;
        ev_forget_open();
        int st = wsc_open(&c, "127.0.0.1", port, cases[i].target, cases[i].extra, 0, scaled(5000));
        CHECK(st == cases[i].want, "%s with %s: %d (got %d) %s", cases[i].target,
              cases[i].extra ? cases[i].extra : "no Origin ", cases[i].want, st, c.why);
        if (st == 101) {
            accepted++;
            uint64_t id = ev_wait_open(scaled(3000));
            wsc_send_close(&c, 1000, NULL);
            CHECK_INT(wsc_recv_close(&c, scaled(3000), NULL, NULL, 0), 1000);
            CHECK(ev_wait_closed(id, scaled(3000)), "closed");
        } else if (st > 0) {
            CHECK(wsc_wait_eof(&c, scaled(3000)), "%s: connection closed after the refusal", cases[i].target);
        }
        wsc_free(&c);
    }
    int opens = 0;
    for (uint64_t id = 1; id < EV_MAX_CONN; id++) opens += ev_get(id).opened;
    CHECK_INT(opens, accepted);
    ws_stats stt;
    CHECK_RES(ws_server_stats(s, &stt), WS_OK);
    CHECK_INT(stt.handshakes_refused, n - accepted);
    ev_stop_server(s, (uint32_t)scaled(2000), "origins and paths");
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    int64_t t0 = now_ms();
    test_callback_mode();
    int64_t t1 = now_ms();
    test_event_mode();
    int64_t t2 = now_ms();
    test_origins_paths();
    printf("callback mode %lld ms, event mode %lld ms, origins/paths %lld ms\n", (long long)(t1 - t0),
           (long long)(t2 - t1), (long long)(now_ms() - t2));
    return check_summary("test_handshake");
}
