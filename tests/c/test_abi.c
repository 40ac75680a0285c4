/*
 * test_abi: the parts of the C ABI that are meant to grow without breaking
 * programs built against an older header.
 *
 * - WS_VERSION_MAJOR/MINOR/PATCH and WS_VERSION_STRING agree with each
 *   other, with ws_version() and with Cargo.toml (EXPECTED_VERSION).
 * - A program written against the first header (a callback table with only
 *   the six original members) calls the real symbol (ws_server_new)(...) and
 *   works end to end with a real client; the table sits at the end of a
 *   malloc'd block of exactly its size, so the valgrind pass catches an
 *   over-read.
 * - ws_server_new_sized with a table of only 3 members (likewise at the end
 *   of an exact-size block) works; the missing on_error/on_drain/on_log are
 *   NULL (a bad-UTF-8 client makes the server want all three).
 * - ws_callbacks cb = {0}; ws_server_new(&cb, NULL) (the macro) works.
 * - ws_option_info for every WS_OPT_*: name = the macro's name, default =
 *   ws_server_get_option on a fresh server, min <= default <= max, a reason;
 *   min and max are accepted; out of range is refused and changes nothing;
 *   unknown options are refused.
 * - Per-connection user data in callback mode: set in on_open, read back in
 *   on_message and on_close and from another thread; WS_ERR_CLOSED after.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "client.h"
#include "events.h"

/* ---- versions ---- */

#define STR2(x) #x
#define STR(x) STR2(x)

static void test_version(void) {
    char composed[64];
    snprintf(composed, sizeof composed, "%d.%d.%d", WS_VERSION_MAJOR, WS_VERSION_MINOR, WS_VERSION_PATCH);
    CHECK_STR(composed, WS_VERSION_STRING);
    CHECK_STR(ws_version(), WS_VERSION_STRING);
    CHECK_STR(ws_version(), EXPECTED_VERSION);
    CHECK_STR(STR(WS_VERSION_MAJOR) "." STR(WS_VERSION_MINOR) "." STR(WS_VERSION_PATCH), EXPECTED_VERSION);
#if WS_VERSION_MAJOR < 0 || WS_VERSION_MINOR < 0 || WS_VERSION_PATCH < 0
#error "version macros must be usable in #if"
#endif
}

/* ---- a program built against the first header ---- */

/* The ws_callbacks of the first header: exactly these six members. */
typedef struct old_callbacks {
    int (*on_open)(void *user_data, uint64_t conn, const ws_request *request);
    void (*on_message)(void *user_data, uint64_t conn, const uint8_t *data, size_t len, ws_kind kind);
    void (*on_close)(void *user_data, uint64_t conn, uint16_t code, const char *reason, size_t reason_len);
    void (*on_error)(void *user_data, uint64_t conn, ws_result error, const char *message);
    void (*on_drain)(void *user_data, uint64_t conn);
    void (*on_log)(void *user_data, ws_log_level level, const char *message);
} old_callbacks;

typedef struct counts {
    int opens, messages, closes, errors, logs;
    int bad_ud;
    uint64_t last_conn;
    int close_code;
    char path[64];
} counts;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static ws_server *cur; /* the server the callbacks below belong to */

static int c_open(void *ud, uint64_t conn, const ws_request *req) {
    counts *k = ud;
    pthread_mutex_lock(&mu);
    k->opens++;
    k->last_conn = conn;
    snprintf(k->path, sizeof k->path, "%s", ws_request_path(req));
    pthread_mutex_unlock(&mu);
    return 0;
}

static void c_message(void *ud, uint64_t conn, const uint8_t *data, size_t len, ws_kind kind) {
    counts *k = ud;
    pthread_mutex_lock(&mu);
    k->messages++;
    pthread_mutex_unlock(&mu);
    ws_server_send(cur, conn, data, len, kind);
}

static void c_close(void *ud, uint64_t conn, uint16_t code, const char *reason, size_t reason_len) {
    (void)conn;
    (void)reason;
    (void)reason_len;
    counts *k = ud;
    pthread_mutex_lock(&mu);
    k->closes++;
    k->close_code = code;
    pthread_mutex_unlock(&mu);
}

static void c_error(void *ud, uint64_t conn, ws_result error, const char *message) {
    (void)conn;
    (void)error;
    (void)message;
    counts *k = ud;
    pthread_mutex_lock(&mu);
    k->errors++;
    pthread_mutex_unlock(&mu);
}

static void c_log(void *ud, ws_log_level level, const char *message) {
    (void)level;
    (void)message;
    counts *k = ud;
    pthread_mutex_lock(&mu);
    k->logs++;
    pthread_mutex_unlock(&mu);
}

static counts get_counts(counts *k) {
    pthread_mutex_lock(&mu);
    counts c = *k;
    pthread_mutex_unlock(&mu);
    return c;
}

static int wait_closes(counts *k, int n, int timeout_ms) {
    int64_t deadline = now_ms() + timeout_ms;
    while (get_counts(k).closes < n) {
        if (now_ms() > deadline) return 0;
        sleep_ms(2);
    }
    return 1;
}

/* Connects a client to `path`, echoes one message, closes with 1000.
 * Returns 1 when all of it worked. */
static int echo_once(uint16_t port, const char *path, const char *text) {
    wsc c;
    int st = wsc_open(&c, "127.0.0.1", port, path, NULL, 0, scaled(5000));
    int ok = CHECK(st == 101, "%s: handshake %d %s", path, st, c.why);
    if (ok) {
        wsc_send_text(&c, text);
        wsc_frame f;
        int r = wsc_recv(&c, &f, scaled(5000));
        ok = CHECK(r == WSC_OK && f.opcode == WSC_TEXT && f.len == strlen(text) && memcmp(f.data, text, f.len) == 0,
                   "%s: echo of \"%s\" (r=%d %s)", path, text, r, c.why);
        wsc_frame_free(&f);
        wsc_send_close(&c, 1000, "bye");
        int code = wsc_recv_close(&c, scaled(5000), NULL, NULL, 0);
        ok &= CHECK_INT(code, 1000);
    }
    wsc_free(&c);
    return ok;
}

static void test_old_header_program(void) {
    counts k = {0};
    /* Exactly the old table's size, at the end of its block. */
    old_callbacks *old = malloc(sizeof *old);
    CHECK_INT(sizeof *old, 6 * sizeof(void (*)(void)));
    old->on_open = c_open;
    old->on_message = c_message;
    old->on_close = c_close;
    old->on_error = c_error;
    old->on_drain = NULL;
    old->on_log = c_log;
    /* The parenthesised name is the real symbol, not the macro. */
    ws_server *srv = (ws_server_new)((const ws_callbacks *)old, &k);
    free(old); /* the table was copied */
    if (!CHECK(srv != NULL, "(ws_server_new)(old table) gives a server")) return;
    cur = srv;
    uint16_t port = 0;
    CHECK_RES(ws_server_listen(srv, "127.0.0.1", 0), WS_OK);
    CHECK_RES(ws_server_port(srv, &port), WS_OK);
    echo_once(port, "/old", "hello from 2024");
    CHECK(wait_closes(&k, 1, scaled(5000)), "old program: on_close fired");
    /* A client that breaks the protocol: on_error fires through the old table. */
    wsc c;
    int st = wsc_open(&c, "127.0.0.1", port, "/old-bad", NULL, 0, scaled(5000));
    CHECK_INT(st, 101);
    const unsigned char bad[] = {0xff, 0xfe};
    wsc_send_frame(&c, WSC_TEXT, 1, bad, sizeof bad);
    CHECK_INT(wsc_recv_close(&c, scaled(5000), NULL, NULL, 0), 1007);
    wsc_send_close(&c, 1007, NULL);
    CHECK(wait_closes(&k, 2, scaled(5000)), "old program: second on_close fired");
    wsc_free(&c);
    CHECK_RES(ws_server_close(srv, (uint32_t)scaled(1000)), WS_OK);
    counts got = get_counts(&k);
    CHECK_INT(got.opens, 2);
    CHECK_INT(got.messages, 1);
    CHECK_INT(got.closes, 2);
    CHECK_INT(got.errors, 1);
    CHECK_STR(got.path, "/old-bad");
    ws_server_free(srv);
    cur = NULL;
}

/* A table that ends after on_close: what a header with only three members would declare. */
typedef struct three_callbacks {
    int (*on_open)(void *user_data, uint64_t conn, const ws_request *request);
    void (*on_message)(void *user_data, uint64_t conn, const uint8_t *data, size_t len, ws_kind kind);
    void (*on_close)(void *user_data, uint64_t conn, uint16_t code, const char *reason, size_t reason_len);
} three_callbacks;

static void test_sized_short_table(void) {
    counts k = {0};
    three_callbacks *t = malloc(sizeof *t);
    CHECK_INT(sizeof *t, 3 * sizeof(void (*)(void)));
    t->on_open = c_open;
    t->on_message = c_message;
    t->on_close = c_close;
    ws_server *srv = ws_server_new_sized((const ws_callbacks *)t, sizeof *t, &k);
    free(t);
    if (!CHECK(srv != NULL, "ws_server_new_sized(3 members) gives a server")) return;
    cur = srv;
    /* Every log line would go to on_log if the library had read garbage there. */
    CHECK_RES(ws_server_set_option(srv, WS_OPT_LOG_LEVEL, WS_LOG_DEBUG), WS_OK);
    uint16_t port = 0;
    CHECK_RES(ws_server_listen(srv, "127.0.0.1", 0), WS_OK);
    CHECK_RES(ws_server_port(srv, &port), WS_OK);
    echo_once(port, "/three", "short table");
    /* on_error would fire here (and a log line): both are missing, so NULL. */
    wsc c;
    int st = wsc_open(&c, "127.0.0.1", port, "/three-bad", NULL, 0, scaled(5000));
    CHECK_INT(st, 101);
    const unsigned char bad[] = {0xc3, 0x28};
    wsc_send_frame(&c, WSC_TEXT, 1, bad, sizeof bad);
    CHECK_INT(wsc_recv_close(&c, scaled(5000), NULL, NULL, 0), 1007);
    wsc_send_close(&c, 1007, NULL);
    CHECK(wait_closes(&k, 2, scaled(5000)), "short table: both connections closed");
    wsc_free(&c);
    /* A refused handshake (bad request): a WARN log line with on_log missing. */
    int fd = wsc_tcp_connect("127.0.0.1", port, 0);
    wsc raw;
    wsc_init(&raw, fd);
    const char *junk = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    wsc_send_raw(&raw, junk, strlen(junk));
    CHECK(wsc_read_some(&raw, 12, scaled(5000)) == WSC_OK && memcmp(raw.buf, "HTTP/1.1 4", 10) == 0,
          "a non-upgrade request gets a 4xx answer");
    wsc_free(&raw);
    CHECK_RES(ws_server_close(srv, (uint32_t)scaled(1000)), WS_OK);
    counts got = get_counts(&k);
    CHECK_INT(got.opens, 2);
    CHECK_INT(got.messages, 1);
    CHECK_INT(got.closes, 2);
    CHECK_INT(got.close_code, 1007);
    CHECK_INT(got.errors, 0);
    CHECK_INT(got.logs, 0);
    ws_server_free(srv);
    cur = NULL;

    /* Size 0 and NULL tables: no callbacks at all, still a working server. */
    ws_server *s0 = ws_server_new_sized(NULL, 0, NULL);
    CHECK(s0 != NULL, "ws_server_new_sized(NULL, 0) gives a server");
    CHECK_RES(ws_server_listen(s0, "127.0.0.1", 0), WS_OK);
    CHECK_RES(ws_server_port(s0, &port), WS_OK);
    st = wsc_open(&c, "127.0.0.1", port, "/none", NULL, 0, scaled(5000));
    CHECK_INT(st, 101);
    wsc_send_text(&c, "into the void");
    wsc_send_close(&c, 1000, NULL);
    CHECK_INT(wsc_recv_close(&c, scaled(5000), NULL, NULL, 0), 1000);
    wsc_free(&c);
    ws_server_free(s0);
}

static void test_zero_initialised_macro(void) {
    ws_callbacks cb = {0};
    ws_server *srv = ws_server_new(&cb, NULL);
    if (!CHECK(srv != NULL, "ws_server_new(&(ws_callbacks){0}, NULL) (the macro)")) return;
    uint16_t port = 0;
    CHECK_RES(ws_server_listen(srv, "127.0.0.1", 0), WS_OK);
    CHECK_RES(ws_server_port(srv, &port), WS_OK);
    wsc c;
    CHECK_INT(wsc_open(&c, "127.0.0.1", port, "/zero", NULL, 0, scaled(5000)), 101);
    wsc_send_text(&c, "x");
    wsc_send_close(&c, 1000, NULL);
    CHECK_INT(wsc_recv_close(&c, scaled(5000), NULL, NULL, 0), 1000);
    wsc_free(&c);
    CHECK_RES(ws_server_close(srv, (uint32_t)scaled(1000)), WS_OK);
    ws_server_free(srv);
    /* A full table through the macro, including a member set to a real function. */
    ws_callbacks full = ev_callbacks(NULL, NULL);
    srv = ws_server_new(&full, NULL);
    CHECK(srv != NULL, "ws_server_new(full table)");
    ws_server_free(srv);
}

/* ---- options ---- */

static const struct {
    ws_option id;
    const char *name;
} OPTIONS[] = {
#define OPT(x) {x, #x}
    OPT(WS_OPT_MAX_MESSAGE_SIZE),   OPT(WS_OPT_MAX_FRAME_SIZE),     OPT(WS_OPT_MAX_CONNECTIONS),
    OPT(WS_OPT_HANDSHAKE_TIMEOUT_MS), OPT(WS_OPT_PING_INTERVAL_MS), OPT(WS_OPT_IDLE_TIMEOUT_MS),
    OPT(WS_OPT_CLOSE_TIMEOUT_MS),   OPT(WS_OPT_SEND_QUEUE_LIMIT),   OPT(WS_OPT_SEND_QUEUE_HARD_LIMIT),
    OPT(WS_OPT_OVERFLOW_POLICY),    OPT(WS_OPT_THREADS),            OPT(WS_OPT_LOG_LEVEL),
    OPT(WS_OPT_EVENT_QUEUE),        OPT(WS_OPT_EVENT_QUEUE_BYTES),  OPT(WS_OPT_EVENT_QUEUE_EVENTS),
    OPT(WS_OPT_AUTO_ACCEPT),        OPT(WS_OPT_HTTP_HANDLER),       OPT(WS_OPT_HTTP_MAX_REQUESTS),
    OPT(WS_OPT_HTTP_IDLE_TIMEOUT_MS), OPT(WS_OPT_HTTP_MAX_BODY),  OPT(WS_OPT_DEFLATE),
    OPT(WS_OPT_DEFLATE_CONTEXT),    OPT(WS_OPT_DEFLATE_LEVEL),      OPT(WS_OPT_DEFLATE_MIN_SIZE),
    OPT(WS_OPT_MEMORY_BUDGET),
#undef OPT
};
enum { NOPTIONS = sizeof OPTIONS / sizeof OPTIONS[0] };

static void test_option_info(void) {
    CHECK_INT(NOPTIONS, 25);
    ws_server *fresh = ws_server_new(NULL, NULL);
    for (int i = 0; i < NOPTIONS; i++) {
        ws_option id = OPTIONS[i].id;
        CHECK_INT(id, i + 1);
        const char *name = NULL, *why = NULL;
        uint64_t def = 0, mn = 0, mx = 0, cur_v = 0;
        if (!CHECK_RES(ws_option_info(id, &name, &def, &mn, &mx, &why), WS_OK)) continue;
        CHECK_STR(name, OPTIONS[i].name);
        CHECK(why != NULL && strlen(why) > 10, "%s: a reason for the default (\"%s\")", OPTIONS[i].name,
              why ? why : "(NULL)");
        CHECK(mn <= def && def <= mx, "%s: min %llu <= default %llu <= max %llu", OPTIONS[i].name,
              (unsigned long long)mn, (unsigned long long)def, (unsigned long long)mx);
        CHECK_RES(ws_server_get_option(fresh, id, &cur_v), WS_OK);
        CHECK(cur_v == def, "%s: ws_server_get_option on a fresh server %llu == default %llu", OPTIONS[i].name,
              (unsigned long long)cur_v, (unsigned long long)def);
        /* Every out pointer may be NULL. */
        CHECK_RES(ws_option_info(id, NULL, NULL, NULL, NULL, NULL), WS_OK);
        uint64_t def2 = 0;
        CHECK_RES(ws_option_info(id, NULL, &def2, NULL, NULL, NULL), WS_OK);
        CHECK(def2 == def, "%s: default alone", OPTIONS[i].name);

        /* min and max are accepted and read back; out of range is refused and changes nothing. */
        ws_server *s = ws_server_new(NULL, NULL);
        uint64_t v = 0;
        CHECK_RES(ws_server_set_option(s, id, mn), WS_OK);
        CHECK_RES(ws_server_get_option(s, id, &v), WS_OK);
        CHECK(v == mn, "%s: min %llu reads back (%llu)", OPTIONS[i].name, (unsigned long long)mn,
              (unsigned long long)v);
        CHECK_RES(ws_server_set_option(s, id, mx), WS_OK);
        CHECK_RES(ws_server_get_option(s, id, &v), WS_OK);
        CHECK(v == mx, "%s: max %llu reads back (%llu)", OPTIONS[i].name, (unsigned long long)mx,
              (unsigned long long)v);
        CHECK_RES(ws_server_set_option(s, id, def), WS_OK);
        if (mx < UINT64_MAX) {
            CHECK_RES(ws_server_set_option(s, id, mx + 1), WS_ERR_INVALID_ARGUMENT);
            CHECK_RES(ws_server_get_option(s, id, &v), WS_OK);
            CHECK(v == def, "%s: max+1 refused, value unchanged (%llu)", OPTIONS[i].name, (unsigned long long)v);
        }
        if (mn > 0) {
            CHECK_RES(ws_server_set_option(s, id, mn - 1), WS_ERR_INVALID_ARGUMENT);
            CHECK_RES(ws_server_get_option(s, id, &v), WS_OK);
            CHECK(v == def, "%s: min-1 refused, value unchanged (%llu)", OPTIONS[i].name, (unsigned long long)v);
        }
        CHECK_RES(ws_server_set_option(s, id, UINT64_MAX), mx == UINT64_MAX ? WS_OK : WS_ERR_INVALID_ARGUMENT);
        ws_server_free(s);
    }
    /* The overflow policy's range has holes. */
    uint64_t v = 0;
    CHECK_RES(ws_server_set_option(fresh, WS_OPT_OVERFLOW_POLICY, 1009), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_server_get_option(fresh, WS_OPT_OVERFLOW_POLICY, &v), WS_OK);
    CHECK_INT(v, 0);
    /* Unknown options. */
    const char *name = "untouched";
    uint64_t def = 12345;
    CHECK_RES(ws_option_info(0, &name, &def, NULL, NULL, NULL), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_option_info(NOPTIONS + 1, &name, &def, NULL, NULL, NULL), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_option_info(UINT32_MAX, NULL, NULL, NULL, NULL, NULL), WS_ERR_INVALID_ARGUMENT);
    CHECK_STR(name, "untouched");
    CHECK_INT(def, 12345);
    v = 777;
    CHECK_RES(ws_server_get_option(fresh, 0, &v), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_server_get_option(fresh, NOPTIONS + 1, &v), WS_ERR_INVALID_ARGUMENT);
    CHECK_INT(v, 777);
    CHECK_RES(ws_server_get_option(fresh, WS_OPT_THREADS, NULL), WS_ERR_NULL);
    CHECK_RES(ws_server_get_option(NULL, WS_OPT_THREADS, &v), WS_ERR_NULL);
    /* A staged value reads back before listen, and stays in force after. */
    CHECK_RES(ws_server_set_option(fresh, WS_OPT_MAX_MESSAGE_SIZE, 4096), WS_OK);
    CHECK_RES(ws_server_get_option(fresh, WS_OPT_MAX_MESSAGE_SIZE, &v), WS_OK);
    CHECK_INT(v, 4096);
    CHECK_RES(ws_server_listen(fresh, "127.0.0.1", 0), WS_OK);
    CHECK_RES(ws_server_get_option(fresh, WS_OPT_MAX_MESSAGE_SIZE, &v), WS_OK);
    CHECK_INT(v, 4096);
    CHECK_RES(ws_server_set_option(fresh, WS_OPT_MAX_MESSAGE_SIZE, 8192), WS_ERR_STATE);
    CHECK_RES(ws_server_get_option(fresh, WS_OPT_MAX_MESSAGE_SIZE, &v), WS_OK);
    CHECK_INT(v, 4096);
    ws_server_free(fresh);
}

/* ---- per-connection user data, callback mode ---- */

typedef struct tag {
    uint64_t conn;
    char name[16];
} tag;

static ws_server *ud_srv;
static tag tags[8];
static int ntags;
static int ud_in_message_ok, ud_in_message_bad, ud_in_close_ok, ud_in_close_bad, ud_set_fail;

static int ud_open(void *ud, uint64_t conn, const ws_request *req) {
    (void)ud;
    (void)req;
    ev_enter(conn, 1);
    pthread_mutex_lock(&mu);
    void *before = (void *)1;
    int r0 = ws_conn_user_data(ud_srv, conn, &before);
    if (r0 != WS_OK || before != NULL) ud_set_fail++;
    tag *t = ntags < 8 ? &tags[ntags++] : NULL;
    if (t) {
        t->conn = conn;
        snprintf(t->name, sizeof t->name, "conn-%llu", (unsigned long long)conn);
        if (ws_conn_set_user_data(ud_srv, conn, t) != WS_OK) ud_set_fail++;
    }
    pthread_mutex_unlock(&mu);
    ev_record_open(conn, 1);
    ev_leave();
    return 0;
}

static void ud_message(void *ud, uint64_t conn, const uint8_t *data, size_t len, ws_kind kind) {
    (void)ud;
    ev_enter(conn, 0);
    ev_record_message(conn);
    void *p = NULL;
    int r = ws_conn_user_data(ud_srv, conn, &p);
    pthread_mutex_lock(&mu);
    if (r == WS_OK && p != NULL && ((tag *)p)->conn == conn)
        ud_in_message_ok++;
    else
        ud_in_message_bad++;
    pthread_mutex_unlock(&mu);
    ws_server_send(ud_srv, conn, data, len, kind);
    ev_leave();
}

static void ud_close(void *ud, uint64_t conn, uint16_t code, const char *reason, size_t reason_len) {
    void *p = NULL;
    int r = ws_conn_user_data(ud_srv, conn, &p);
    pthread_mutex_lock(&mu);
    if (r == WS_OK && p != NULL && ((tag *)p)->conn == conn)
        ud_in_close_ok++;
    else
        ud_in_close_bad++;
    pthread_mutex_unlock(&mu);
    ev_on_close(ud, conn, code, reason, reason_len);
}

static void test_user_data_callbacks(void) {
    events_reset();
    ws_callbacks cb = ev_callbacks(ud_open, ud_message);
    cb.on_close = ud_close;
    ud_srv = ws_server_new(&cb, NULL);
    uint16_t port = 0;
    void *p = NULL;
    /* Before listen: no connection exists. */
    CHECK_RES(ws_conn_user_data(ud_srv, 1, &p), WS_ERR_NO_SUCH_CONN);
    CHECK_RES(ws_server_listen(ud_srv, "127.0.0.1", 0), WS_OK);
    CHECK_RES(ws_server_port(ud_srv, &port), WS_OK);
    wsc a, b;
    uint64_t ia = ev_open_client(&a, port, "/a", 0);
    uint64_t ib = ev_open_client(&b, port, "/b", 0);
    if (ia && ib) {
        /* From this (non-I/O) thread. */
        CHECK_RES(ws_conn_user_data(ud_srv, ia, &p), WS_OK);
        CHECK(p == &tags[0] && tags[0].conn == ia, "user data of a from the test thread");
        CHECK_RES(ws_conn_user_data(ud_srv, ib, &p), WS_OK);
        CHECK(p == &tags[1] && tags[1].conn == ib, "user data of b from the test thread");
        for (int i = 0; i < 3; i++) {
            wsc_send_text(&a, "m");
            wsc_frame f;
            CHECK(wsc_recv(&a, &f, scaled(5000)) == WSC_OK && f.len == 1, "echo %d", i);
            wsc_frame_free(&f);
        }
        /* Replaced from another thread; the next callback sees the new value. */
        static tag other = {0, "other"};
        CHECK_RES(ws_conn_set_user_data(ud_srv, ib, &tags[1]), WS_OK);
        CHECK_RES(ws_conn_set_user_data(ud_srv, ia, &other), WS_OK);
        CHECK_RES(ws_conn_user_data(ud_srv, ia, &p), WS_OK);
        CHECK(p == &other, "replaced user data reads back");
        CHECK_RES(ws_conn_set_user_data(ud_srv, ia, &tags[0]), WS_OK);
        CHECK_RES(ws_conn_set_user_data(ud_srv, 0, &other), WS_ERR_NO_SUCH_CONN);
        CHECK_RES(ws_conn_set_user_data(ud_srv, 1000, &other), WS_ERR_NO_SUCH_CONN);
        CHECK_RES(ws_conn_user_data(ud_srv, ia, NULL), WS_ERR_NULL);
        CHECK_RES(ws_conn_user_data(NULL, ia, &p), WS_ERR_NULL);
        CHECK_RES(ws_conn_set_user_data(NULL, ia, &other), WS_ERR_NULL);
        wsc_send_close(&a, 1000, NULL);
        CHECK_INT(wsc_recv_close(&a, scaled(5000), NULL, NULL, 0), 1000);
        CHECK(ev_wait_closed(ia, scaled(5000)), "a closed");
        p = (void *)0x1;
        CHECK_RES(ws_conn_user_data(ud_srv, ia, &p), WS_ERR_CLOSED);
        CHECK(p == (void *)0x1, "output untouched on error");
        CHECK_RES(ws_conn_set_user_data(ud_srv, ia, &other), WS_ERR_CLOSED);
        /* b still has its own. */
        CHECK_RES(ws_conn_user_data(ud_srv, ib, &p), WS_OK);
        CHECK(p == &tags[1], "b keeps its user data after a closed");
        wsc_send_close(&b, 1000, NULL);
        CHECK_INT(wsc_recv_close(&b, scaled(5000), NULL, NULL, 0), 1000);
        CHECK(ev_wait_closed(ib, scaled(5000)), "b closed");
        CHECK_RES(ws_conn_user_data(ud_srv, ib, &p), WS_ERR_CLOSED);
    }
    ev_stop_server(ud_srv, (uint32_t)scaled(2000), "user data");
    pthread_mutex_lock(&mu);
    CHECK_INT(ud_set_fail, 0);
    CHECK_INT(ud_in_message_ok, 3);
    CHECK_INT(ud_in_message_bad, 0);
    CHECK_INT(ud_in_close_ok, 2);
    CHECK_INT(ud_in_close_bad, 0);
    pthread_mutex_unlock(&mu);
    wsc_free(&a);
    wsc_free(&b);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    test_version();
    test_old_header_program();
    test_sized_short_table();
    test_zero_initialised_macro();
    test_option_info();
    test_user_data_callbacks();
    return check_summary("test_abi");
}
