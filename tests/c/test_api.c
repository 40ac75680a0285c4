/*
 * test_api: every exported function's argument checking and state rules,
 * without message traffic: versions and names, ws_last_error (per thread),
 * NULL pointers, bad options, bad hosts, ports in use, IPv4/IPv6/localhost,
 * listen twice, options after listen, close before listen, send/broadcast/
 * disconnect/queued_bytes argument errors.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "client.h"

#ifndef EXPECTED_VERSION
#define EXPECTED_VERSION NULL
#endif

static void test_names_and_version(void) {
    const char *v = ws_version();
    CHECK(v != NULL && v[0] != '\0', "ws_version() is non-empty");
    if (v) {
        unsigned a, b, c;
        char tail;
        CHECK(sscanf(v, "%u.%u.%u%c", &a, &b, &c, &tail) == 3, "ws_version() \"%s\" is MAJOR.MINOR.PATCH", v);
        if (EXPECTED_VERSION != NULL) CHECK_STR(v, EXPECTED_VERSION);
        CHECK(ws_version() == v, "ws_version() is a static string (same pointer twice)");
    }
    struct { int code; const char *name; } names[] = {
        {WS_OK, "WS_OK"},
        {WS_BACKPRESSURE, "WS_BACKPRESSURE"},
        {WS_ERR_NULL, "WS_ERR_NULL"},
        {WS_ERR_INVALID_ARGUMENT, "WS_ERR_INVALID_ARGUMENT"},
        {WS_ERR_STATE, "WS_ERR_STATE"},
        {WS_ERR_BAD_HOST, "WS_ERR_BAD_HOST"},
        {WS_ERR_ADDR_IN_USE, "WS_ERR_ADDR_IN_USE"},
        {WS_ERR_IO, "WS_ERR_IO"},
        {WS_ERR_NO_SUCH_CONN, "WS_ERR_NO_SUCH_CONN"},
        {WS_ERR_CLOSED, "WS_ERR_CLOSED"},
        {WS_ERR_DROPPED, "WS_ERR_DROPPED"},
        {WS_ERR_INVALID_UTF8, "WS_ERR_INVALID_UTF8"},
        {WS_ERR_BAD_CLOSE_CODE, "WS_ERR_BAD_CLOSE_CODE"},
        {WS_ERR_REASON_TOO_LONG, "WS_ERR_REASON_TOO_LONG"},
        {WS_ERR_PROTOCOL, "WS_ERR_PROTOCOL"},
        {WS_ERR_TOO_BIG, "WS_ERR_TOO_BIG"},
        {WS_ERR_TIMEOUT, "WS_ERR_TIMEOUT"},
        {WS_ERR_TLS, "WS_ERR_TLS"},
        {WS_ERR_PANIC, "WS_ERR_PANIC"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        CHECK_STR(ws_result_name(names[i].code), names[i].name);
    }
    /* The numbers are part of the ABI. */
    CHECK_INT(WS_ERR_PANIC, -17);
    CHECK_INT(WS_ERR_DROPPED, -9);
    int unknown[] = {2, 3, 100, -18, -100, INT_MIN, INT_MAX};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        CHECK_STR(ws_result_name(unknown[i]), "WS_UNKNOWN");
    }
}

/* ws_last_error is per thread: a fresh thread has "" even after a failure here. */
static void *fresh_thread(void *arg) {
    const char **out = arg;
    const char *e = ws_last_error();
    out[0] = e != NULL && e[0] == '\0' ? "empty" : "not empty";
    /* Fail here, and check this thread's message. */
    ws_server_send(NULL, 1, (const uint8_t *)"x", 1, WS_TEXT);
    e = ws_last_error();
    out[1] = e != NULL && e[0] != '\0' ? "set" : "unset";
    return NULL;
}

static void test_last_error_threads(void) {
    CHECK_RES(ws_server_listen(NULL, "127.0.0.1", 0), WS_ERR_NULL);
    char mine[512];
    snprintf(mine, sizeof mine, "%s", ws_last_error());
    const char *out[2] = {NULL, NULL};
    pthread_t t;
    pthread_create(&t, NULL, fresh_thread, out);
    pthread_join(t, NULL);
    CHECK_STR(out[0], "empty");
    CHECK_STR(out[1], "set");
    CHECK_STR(ws_last_error(), mine);
    CHECK(ws_last_error() != NULL, "ws_last_error() is never NULL");
}

static void test_nulls(void) {
    uint16_t port = 1;
    size_t n = 7;
    const uint8_t d[1] = {'x'};
    CHECK_RES(ws_server_set_option(NULL, WS_OPT_THREADS, 1), WS_ERR_NULL);
    CHECK_RES(ws_server_set_subprotocols(NULL, NULL, 0), WS_ERR_NULL);
    CHECK_RES(ws_server_listen(NULL, "127.0.0.1", 0), WS_ERR_NULL);
    CHECK_RES(ws_server_port(NULL, &port), WS_ERR_NULL);
    CHECK_INT(port, 1);
    CHECK_RES(ws_server_send(NULL, 1, d, 1, WS_TEXT), WS_ERR_NULL);
    CHECK_RES(ws_server_broadcast(NULL, d, 1, WS_TEXT, 0, &n), WS_ERR_NULL);
    CHECK_INT(n, 7);
    CHECK_RES(ws_server_disconnect(NULL, 1, 1000, NULL), WS_ERR_NULL);
    CHECK_RES(ws_server_queued_bytes(NULL, 1, &n), WS_ERR_NULL);
    CHECK_RES(ws_server_close(NULL, 0), WS_ERR_NULL);
    ws_server_free(NULL); /* ignored: a crash here fails the run (no summary line) */

    CHECK(ws_request_path(NULL) == NULL, "ws_request_path(NULL) == NULL");
    CHECK(ws_request_query(NULL) == NULL, "ws_request_query(NULL) == NULL");
    CHECK(ws_request_header(NULL, "Host") == NULL, "ws_request_header(NULL, ...) == NULL");
    CHECK(ws_request_header(NULL, NULL) == NULL, "ws_request_header(NULL, NULL) == NULL");
    CHECK(ws_request_peer(NULL) == NULL, "ws_request_peer(NULL) == NULL");
    CHECK(ws_request_subprotocol(NULL) == NULL, "ws_request_subprotocol(NULL) == NULL");

    ws_server *srv = ws_server_new(NULL, NULL); /* NULL callbacks are allowed */
    CHECK(srv != NULL, "ws_server_new(NULL, NULL) works");
    if (!srv) return;
    CHECK_RES(ws_server_listen(srv, NULL, 0), WS_ERR_NULL);
    CHECK_RES(ws_server_port(srv, NULL), WS_ERR_NULL);
    CHECK_RES(ws_server_send(srv, 1, NULL, 5, WS_TEXT), WS_ERR_NULL);
    CHECK_RES(ws_server_send(srv, 1, NULL, 5, WS_BINARY), WS_ERR_NULL);
    CHECK_RES(ws_server_broadcast(srv, NULL, 5, WS_TEXT, 0, NULL), WS_ERR_NULL);
    CHECK_RES(ws_server_queued_bytes(srv, 1, NULL), WS_ERR_NULL);
    const char *names[] = {"chat", NULL};
    CHECK_RES(ws_server_set_subprotocols(srv, NULL, 2), WS_ERR_NULL);
    CHECK_RES(ws_server_set_subprotocols(srv, names, 2), WS_ERR_NULL);
    CHECK_RES(ws_server_set_subprotocols(srv, NULL, 0), WS_OK);
    /* NULL data with len 0 is not an error: the next check is the id. */
    CHECK_RES(ws_server_send(srv, 1, NULL, 0, WS_TEXT), WS_ERR_NO_SUCH_CONN);
    n = 99;
    CHECK_RES(ws_server_broadcast(srv, NULL, 0, WS_BINARY, 0, &n), WS_OK);
    CHECK_INT(n, 0);
    ws_server_free(srv);
}

static void test_options(void) {
    ws_server *srv = ws_server_new(NULL, NULL);
    CHECK(srv != NULL, "ws_server_new");
    if (!srv) return;
    /* Every option accepts a sensible value. */
    CHECK_RES(ws_server_set_option(srv, WS_OPT_MAX_MESSAGE_SIZE, 1 << 16), WS_OK);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_MAX_FRAME_SIZE, 1 << 16), WS_OK);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_MAX_CONNECTIONS, 100), WS_OK);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_HANDSHAKE_TIMEOUT_MS, 5000), WS_OK);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_PING_INTERVAL_MS, 0), WS_OK);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_PING_INTERVAL_MS, 20000), WS_OK);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_IDLE_TIMEOUT_MS, 0), WS_OK);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_IDLE_TIMEOUT_MS, 60000), WS_OK);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_CLOSE_TIMEOUT_MS, 2000), WS_OK);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_SEND_QUEUE_LIMIT, 1 << 14), WS_OK);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_SEND_QUEUE_HARD_LIMIT, 1 << 18), WS_OK);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_OVERFLOW_POLICY, 0), WS_OK);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_OVERFLOW_POLICY, 1008), WS_OK);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_OVERFLOW_POLICY, 1013), WS_OK);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_THREADS, 256), WS_OK);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_THREADS, 1), WS_OK);
    for (uint64_t l = WS_LOG_ERROR; l <= WS_LOG_DEBUG; l++) {
        CHECK_RES(ws_server_set_option(srv, WS_OPT_LOG_LEVEL, l), WS_OK);
    }
    /* Unknown options. */
    CHECK_RES(ws_server_set_option(srv, 0, 1), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_server_set_option(srv, 26, 1), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_server_set_option(srv, 9999, 1), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_server_set_option(srv, UINT32_MAX, 1), WS_ERR_INVALID_ARGUMENT);
    /* Values out of range. */
    CHECK_RES(ws_server_set_option(srv, WS_OPT_MAX_MESSAGE_SIZE, 0), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_MAX_FRAME_SIZE, 0), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_MAX_CONNECTIONS, 0), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_SEND_QUEUE_LIMIT, 0), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_SEND_QUEUE_HARD_LIMIT, 0), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_HANDSHAKE_TIMEOUT_MS, 0), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_CLOSE_TIMEOUT_MS, 0), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_OVERFLOW_POLICY, 1), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_OVERFLOW_POLICY, 1000), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_OVERFLOW_POLICY, 1001), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_OVERFLOW_POLICY, 1013 + 65536), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_THREADS, 0), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_THREADS, 257), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_THREADS, UINT64_MAX), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_LOG_LEVEL, 0), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_LOG_LEVEL, 5), WS_ERR_INVALID_ARGUMENT);
    /* Subprotocol names must be HTTP tokens. */
    const char *good[] = {"chat", "v2.json", "a-b_c~"};
    const char *space[] = {"chat", "bad name"};
    const char *empty[] = {""};
    const char *comma[] = {"a,b"};
    const char *notutf8[] = {"\xff\xfe"};
    CHECK_RES(ws_server_set_subprotocols(srv, good, 3), WS_OK);
    CHECK_RES(ws_server_set_subprotocols(srv, space, 2), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_server_set_subprotocols(srv, empty, 1), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_server_set_subprotocols(srv, comma, 1), WS_ERR_INVALID_ARGUMENT);
    int r = ws_server_set_subprotocols(srv, notutf8, 1);
    CHECK(r == WS_ERR_INVALID_ARGUMENT || r == WS_ERR_INVALID_UTF8,
          "a non-UTF-8 subprotocol name is refused (%s)", ws_result_name(r));
    /* Options that contradict each other fail at listen, which can then be retried. */
    CHECK_RES(ws_server_set_option(srv, WS_OPT_SEND_QUEUE_LIMIT, 1 << 20), WS_OK);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_SEND_QUEUE_HARD_LIMIT, 1 << 10), WS_OK);
    uint16_t port = 0;
    CHECK_RES(ws_server_listen(srv, "127.0.0.1", 0), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_server_port(srv, &port), WS_ERR_STATE);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_SEND_QUEUE_HARD_LIMIT, 1 << 21), WS_OK);
    CHECK_RES(ws_server_listen(srv, "127.0.0.1", 0), WS_OK);
    CHECK_RES(ws_server_port(srv, &port), WS_OK);
    CHECK(port != 0, "port %u is not 0", (unsigned)port);
    /* After listen: every option and the subprotocols are fixed; listen twice fails. */
    CHECK_RES(ws_server_set_option(srv, WS_OPT_MAX_MESSAGE_SIZE, 100), WS_ERR_STATE);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_LOG_LEVEL, WS_LOG_DEBUG), WS_ERR_STATE);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_THREADS, 2), WS_ERR_STATE);
    CHECK_RES(ws_server_set_subprotocols(srv, good, 1), WS_ERR_STATE);
    CHECK_RES(ws_server_set_subprotocols(srv, NULL, 0), WS_ERR_STATE);
    CHECK_RES(ws_server_listen(srv, "127.0.0.1", 0), WS_ERR_STATE);
    CHECK_RES(ws_server_listen(srv, "127.0.0.1", port), WS_ERR_STATE);
    CHECK_RES(ws_server_close(srv, 100), WS_OK);
    CHECK_RES(ws_server_close(srv, 100), WS_OK); /* twice is fine */
    CHECK_RES(ws_server_listen(srv, "127.0.0.1", 0), WS_ERR_STATE);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_THREADS, 2), WS_ERR_STATE);
    int fd = wsc_tcp_connect("127.0.0.1", port, 0);
    CHECK(fd < 0, "nothing accepts on port %u after ws_server_close", (unsigned)port);
    if (fd >= 0) close(fd);
    ws_server_free(srv);

    /* Close before listen: fine, and listen is refused afterwards. */
    srv = ws_server_new(NULL, NULL);
    CHECK_RES(ws_server_close(srv, 0), WS_OK);
    CHECK_RES(ws_server_close(srv, 0), WS_OK);
    CHECK_RES(ws_server_listen(srv, "127.0.0.1", 0), WS_ERR_STATE);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_THREADS, 1), WS_ERR_STATE);
    CHECK_RES(ws_server_port(srv, &port), WS_ERR_STATE);
    ws_server_free(srv);

    /* Free without close or listen. */
    srv = ws_server_new(NULL, NULL);
    CHECK(srv != NULL, "ws_server_new");
    ws_server_free(srv);
}

static int ipv6_available(void) {
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    if (fd < 0) return 0;
    struct sockaddr_in6 a;
    memset(&a, 0, sizeof a);
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    int ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

/* Listens on `host`, checks a WebSocket handshake works via `connect_host`. */
static void listen_and_connect(const char *host, const char *connect_host) {
    ws_server *srv = ws_server_new(NULL, NULL);
    CHECK_RES(ws_server_listen(srv, host, 0), WS_OK);
    uint16_t port = 0;
    CHECK_RES(ws_server_port(srv, &port), WS_OK);
    if (port != 0) {
        wsc c;
        int status = wsc_open(&c, connect_host, port, "/", NULL, 0, scaled(5000));
        CHECK(status == 101, "handshake with a server on \"%s\" via %s: %d %s", host, connect_host, status, c.why);
        if (status == 101) {
            CHECK(wsc_send_close(&c, 1000, "") == 0, "close sent");
            wsc_frame f;
            int r = wsc_recv(&c, &f, scaled(5000));
            CHECK(r == WSC_OK && f.opcode == WSC_CLOSE && wsc_close_code(&f, NULL, 0) == 1000,
                  "server on \"%s\" answers the close (r=%d op=%d)", host, r, f.opcode);
            wsc_frame_free(&f);
        }
        wsc_free(&c);
    }
    CHECK_RES(ws_server_close(srv, 1000), WS_OK);
    ws_server_free(srv);
}

static void test_hosts(void) {
    const char *bad[] = {"", "example.com", "not a host", "127.0.0.1:80", "256.1.1.1", "[::1", "::1]",
                         "localhost.", "1.2.3", "[127.0.0.1]x", " 127.0.0.1"};
    ws_server *srv = ws_server_new(NULL, NULL);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int r = ws_server_listen(srv, bad[i], 0);
        CHECK(r == WS_ERR_BAD_HOST && ws_last_error()[0] != '\0', "listen(\"%s\") -> %s (expected WS_ERR_BAD_HOST)",
              bad[i], ws_result_name(r));
    }
    /* A host that is not even UTF-8 must be refused too (not listen). */
    int r = ws_server_listen(srv, "\xff\xfe", 0);
    CHECK(r == WS_ERR_BAD_HOST || r == WS_ERR_INVALID_UTF8, "listen(non-UTF-8 host) -> %s", ws_result_name(r));
    /* Failed listens leave the server usable. */
    CHECK_RES(ws_server_listen(srv, "127.0.0.1", 0), WS_OK);
    uint16_t port = 0;
    CHECK_RES(ws_server_port(srv, &port), WS_OK);

    /* The same port again: another wsserver gets WS_ERR_ADDR_IN_USE. */
    ws_server *other = ws_server_new(NULL, NULL);
    CHECK_RES(ws_server_listen(other, "127.0.0.1", port), WS_ERR_ADDR_IN_USE);
    CHECK_RES(ws_server_listen(other, "localhost", port), WS_ERR_ADDR_IN_USE);
    ws_server_free(other);
    ws_server_free(srv);

    /* A port held by a plain listening socket. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && listen(fd, 4) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &al) == 0) {
        srv = ws_server_new(NULL, NULL);
        CHECK_RES(ws_server_listen(srv, "127.0.0.1", ntohs(a.sin_port)), WS_ERR_ADDR_IN_USE);
        CHECK_RES(ws_server_port(srv, &port), WS_ERR_STATE);
        ws_server_free(srv);
    } else {
        CHECK(0, "could not set up a listening socket");
    }
    if (fd >= 0) close(fd);

    listen_and_connect("127.0.0.1", "127.0.0.1");
    listen_and_connect("localhost", "127.0.0.1");
    listen_and_connect("LOCALHOST", "127.0.0.1");
    listen_and_connect("0.0.0.0", "127.0.0.1"); /* the header's wildcard examples */
    if (ipv6_available()) {
        listen_and_connect("::1", "::1");
        listen_and_connect("[::1]", "::1");
        listen_and_connect("::", "::1");
    } else {
        printf("note: no IPv6 loopback here; IPv6 listen skipped\n");
    }
}

static void test_send_args(void) {
    ws_server *srv = ws_server_new(NULL, NULL);
    const uint8_t txt[] = "hello";
    size_t n = 5;
    /* Before listening nothing exists: ids are unknown. */
    CHECK_RES(ws_server_send(srv, 1, txt, 5, WS_TEXT), WS_ERR_NO_SUCH_CONN);
    CHECK_RES(ws_server_send(srv, 0, txt, 5, WS_TEXT), WS_ERR_NO_SUCH_CONN);
    CHECK_RES(ws_server_send(srv, UINT64_MAX, txt, 5, WS_BINARY), WS_ERR_NO_SUCH_CONN);
    CHECK_RES(ws_server_queued_bytes(srv, 1, &n), WS_ERR_NO_SUCH_CONN);
    CHECK_INT(n, 5);
    CHECK_RES(ws_server_disconnect(srv, 1, 1000, NULL), WS_ERR_NO_SUCH_CONN);
    CHECK_RES(ws_server_disconnect(srv, 0, 1000, "x"), WS_ERR_NO_SUCH_CONN);
    /* Bad kinds. */
    CHECK_RES(ws_server_send(srv, 1, txt, 5, 0), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_server_send(srv, 1, txt, 5, 3), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_server_send(srv, 1, txt, 5, 0x81), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_server_broadcast(srv, txt, 5, 0, 0, NULL), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_server_broadcast(srv, txt, 5, 9, 0, NULL), WS_ERR_INVALID_ARGUMENT);
    /* Text that is not UTF-8 (checked before the connection id). */
    const char *bad_utf8[] = {"\xff", "abc\x80", "\xc0\x80", "\xed\xa0\x80", "\xe2\x82", "\xf4\x90\x80\x80",
                              "\xf8\x88\x80\x80\x80"};
    for (size_t i = 0; i < sizeof bad_utf8 / sizeof bad_utf8[0]; i++) {
        const uint8_t *p = (const uint8_t *)bad_utf8[i];
        size_t len = strlen(bad_utf8[i]);
        CHECK_RES(ws_server_send(srv, 1, p, len, WS_TEXT), WS_ERR_INVALID_UTF8);
        CHECK_RES(ws_server_broadcast(srv, p, len, WS_TEXT, 0, NULL), WS_ERR_INVALID_UTF8);
        /* The same bytes are fine as binary. */
        CHECK_RES(ws_server_send(srv, 1, p, len, WS_BINARY), WS_ERR_NO_SUCH_CONN);
    }
    /* Embedded NUL and 4-byte characters are valid UTF-8. */
    CHECK_RES(ws_server_send(srv, 1, (const uint8_t *)"a\0b\xf0\x9f\x98\x80", 7, WS_TEXT), WS_ERR_NO_SUCH_CONN);
    n = 42;
    CHECK_RES(ws_server_broadcast(srv, (const uint8_t *)"\xf0\x9f\x98\x80", 4, WS_TEXT, 0, &n), WS_OK);
    CHECK_INT(n, 0);
    /* Close codes an endpoint may not send, checked before the id. */
    int bad_codes[] = {0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535};
    for (size_t i = 0; i < sizeof bad_codes / sizeof bad_codes[0]; i++) {
        CHECK_RES(ws_server_disconnect(srv, 1, (uint16_t)bad_codes[i], NULL), WS_ERR_BAD_CLOSE_CODE);
    }
    int good_codes[] = {1000, 1001, 1002, 1003, 1007, 1008, 1011, 1013, 1014, 3000, 4000, 4999};
    for (size_t i = 0; i < sizeof good_codes / sizeof good_codes[0]; i++) {
        CHECK_RES(ws_server_disconnect(srv, 1, (uint16_t)good_codes[i], NULL), WS_ERR_NO_SUCH_CONN);
    }
    char reason[200];
    memset(reason, 'r', sizeof reason);
    reason[124] = '\0';
    CHECK_RES(ws_server_disconnect(srv, 1, 1000, reason), WS_ERR_REASON_TOO_LONG);
    reason[123] = '\0';
    CHECK_RES(ws_server_disconnect(srv, 1, 1000, reason), WS_ERR_NO_SUCH_CONN);
    /* 123 bytes, but counted in bytes: 62 two-byte characters = 124 bytes. */
    char wide[200] = "";
    for (int i = 0; i < 62; i++) strcat(wide, "\xc3\xa9");
    CHECK_RES(ws_server_disconnect(srv, 1, 1000, wide), WS_ERR_REASON_TOO_LONG);
    CHECK_RES(ws_server_disconnect(srv, 1, 1000, "\xff bad"), WS_ERR_INVALID_UTF8);
    /* Output pointers are written only on success. */
    n = 42;
    CHECK_RES(ws_server_broadcast(srv, (const uint8_t *)"\xff", 1, WS_TEXT, 0, &n), WS_ERR_INVALID_UTF8);
    CHECK_INT(n, 42);
    CHECK_RES(ws_server_broadcast(srv, (const uint8_t *)"x", 1, 7, 0, &n), WS_ERR_INVALID_ARGUMENT);
    CHECK_INT(n, 42);
    ws_server_free(srv);
}

int main(void) {
    test_names_and_version();
    test_last_error_threads();
    test_nulls();
    test_options();
    test_hosts();
    test_send_args();
    return check_summary("test_api");
}
