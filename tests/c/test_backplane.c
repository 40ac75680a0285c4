/*
 * test_backplane: ws_server_set_backplane's arguments and states through
 * the public C ABI, with no broker (tests/backplane runs the real Redis).
 *
 * - NULL server: WS_ERR_NULL; NULL url: WS_OK (no backplane).
 * - Malformed URLs: WS_ERR_INVALID_ARGUMENT, the message naming what is
 *   wrong (scheme, host, port, database, unknown parameter, empty prefix,
 *   ca_file without TLS, a missing ca_file, a fragment); invalid UTF-8:
 *   WS_ERR_INVALID_UTF8. A password never appears in a message.
 * - A broker nobody listens on: ws_server_listen fails with WS_ERR_IO
 *   naming it, and the same server can still be freed cleanly.
 * - After listen: WS_ERR_STATE with a message; the backplane counters of
 *   ws_stats stay 0 on a server without a backplane.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"

/* A loopback port nothing listens on (bound, then closed). */
static uint16_t dead_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t n = sizeof a;
    bind(fd, (struct sockaddr *)&a, sizeof a);
    getsockname(fd, (struct sockaddr *)&a, &n);
    close(fd);
    return ntohs(a.sin_port);
}

static void bad_url(ws_server *srv, const char *url, const char *says) {
    int r = ws_server_set_backplane(srv, url);
    CHECK(r == WS_ERR_INVALID_ARGUMENT && strstr(ws_last_error(), says) != NULL,
          "'%s': WS_ERR_INVALID_ARGUMENT saying '%s' (got %s: %s)", url, says, ws_result_name(r), ws_last_error());
}

int main(void) {
    CHECK_RES(ws_server_set_backplane(NULL, "redis://127.0.0.1:6379"), WS_ERR_NULL);

    ws_server *srv = ws_server_new(NULL, NULL);
    CHECK_RES(ws_server_set_backplane(srv, NULL), WS_OK);
    CHECK_RES(ws_server_set_backplane(srv, "redis://127.0.0.1:6379/0?prefix=app:"), WS_OK);
    CHECK_RES(ws_server_set_backplane(srv, "rediss://user:pw@[::1]:6380"), WS_OK);
    bad_url(srv, "http://127.0.0.1:6379", "redis:// or rediss://");
    bad_url(srv, "127.0.0.1:6379", "redis:// or rediss://");
    bad_url(srv, "redis:///0", "no host");
    bad_url(srv, "redis://127.0.0.1:notaport", "invalid port");
    bad_url(srv, "redis://127.0.0.1:6379/x", "database number");
    bad_url(srv, "redis://127.0.0.1:6379?channel=x", "unknown parameter 'channel'");
    bad_url(srv, "redis://127.0.0.1:6379?prefix=", "prefix must be");
    bad_url(srv, "redis://127.0.0.1:6379?ca_file=/etc/hostname", "needs rediss://");
    bad_url(srv, "rediss://127.0.0.1:6379?ca_file=/nonexistent/ca.pem", "/nonexistent/ca.pem");
    bad_url(srv, "rediss://127.0.0.1:6379#insecure", "fragment");
    int r = ws_server_set_backplane(srv, "redis://:hunter2@127.0.0.1:bad");
    CHECK(r == WS_ERR_INVALID_ARGUMENT && strstr(ws_last_error(), "hunter2") == NULL,
          "a bad URL with a password: the message does not show it (%s)", ws_last_error());
    CHECK_RES(ws_server_set_backplane(srv, "redis://\xff:1"), WS_ERR_INVALID_UTF8);

    char url[64];
    snprintf(url, sizeof url, "redis://:hunter2@127.0.0.1:%u", (unsigned)dead_port());
    CHECK_RES(ws_server_set_backplane(srv, url), WS_OK);
    int64_t t0 = now_ms();
    r = ws_server_listen(srv, "127.0.0.1", 0);
    CHECK(r == WS_ERR_IO && strstr(ws_last_error(), "cannot connect") && strstr(ws_last_error(), "127.0.0.1") &&
              !strstr(ws_last_error(), "hunter2"),
          "listen with no broker there: WS_ERR_IO naming it, not the password (%s: %s)", ws_result_name(r),
          ws_last_error());
    CHECK(now_ms() - t0 < 4000, "...within the connect timeout (%lld ms)", (long long)(now_ms() - t0));
    uint16_t port = 0;
    CHECK_RES(ws_server_port(srv, &port), WS_ERR_STATE);
    ws_server_free(srv);

    srv = ws_server_new(NULL, NULL);
    CHECK_RES(ws_server_listen(srv, "127.0.0.1", 0), WS_OK);
    r = ws_server_set_backplane(srv, "redis://127.0.0.1:6379");
    CHECK(r == WS_ERR_STATE && strstr(ws_last_error(), "before ws_server_listen"),
          "after listen: WS_ERR_STATE (%s)", ws_last_error());
    ws_stats st;
    memset(&st, 0xCD, sizeof st);
    CHECK_RES(ws_server_stats(srv, &st), WS_OK);
    CHECK(st.backplane_connected == 0 && st.backplane_published == 0 && st.backplane_received == 0 &&
              st.backplane_local_only == 0 && st.backplane_reconnects == 0,
          "no backplane: its ws_stats members are 0");
    ws_server_close(srv, 100);
    ws_server_free(srv);
    return check_summary("test_backplane");
}
