/*
 * bp_server HOST PORT [BACKPLANE_URL]: the test server of tests/backplane,
 * on the public C ABI only. One process per server; the Python driver
 * (test_backplane.py) starts two or three on one Redis backplane and talks
 * to them with real WebSocket clients.
 *
 * - A client of "/T" is subscribed to topic T when it opens ("/" to none).
 * - Text commands from any client:
 *     "!pub T MSG"   ws_server_publish(T, MSG), to every subscriber
 *     "!sub T", "!unsub T"   (un)subscribe this client; answers "ok"
 *     "!stats"       answers one line of JSON: this server's ws_stats
 *   Any other text is published to topic "all".
 * - Prints "listening on ws://HOST:PORT" when ready, every on_log line on
 *   stderr ("log LEVEL: message"); SIGINT/SIGTERM close it and exit 0.
 *   When ws_server_set_backplane or ws_server_listen fails it prints
 *   "error: NAME: message" on stderr and exits 1.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "example_common.h"

static ws_server *srv;

static int on_open(void *ud, uint64_t conn, const ws_request *req) {
    (void)ud;
    const char *path = ws_request_path(req);
    if (path[0] == '/' && path[1] != '\0' && ws_conn_subscribe(srv, conn, path + 1) != WS_OK)
        fprintf(stderr, "subscribe %s: %s\n", path + 1, ws_last_error());
    return 0;
}

static void reply(uint64_t conn, const char *text) {
    ws_server_send(srv, conn, (const uint8_t *)text, strlen(text), WS_TEXT);
}

static void send_stats(uint64_t conn) {
    ws_stats st;
    char line[1024];
    if (ws_server_stats(srv, &st) != WS_OK) {
        reply(conn, ws_last_error());
        return;
    }
    snprintf(line, sizeof line,
             "{\"open_connections\":%llu,\"messages_out\":%llu,\"topics\":%llu,\"subscriptions\":%llu,"
             "\"backplane_connected\":%llu,\"backplane_published\":%llu,\"backplane_received\":%llu,"
             "\"backplane_local_only\":%llu,\"backplane_reconnects\":%llu}",
             (unsigned long long)st.open_connections, (unsigned long long)st.messages_out,
             (unsigned long long)st.topics, (unsigned long long)st.subscriptions,
             (unsigned long long)st.backplane_connected, (unsigned long long)st.backplane_published,
             (unsigned long long)st.backplane_received, (unsigned long long)st.backplane_local_only,
             (unsigned long long)st.backplane_reconnects);
    reply(conn, line);
}

static void on_message(void *ud, uint64_t conn, const uint8_t *data, size_t len, ws_kind kind) {
    (void)ud;
    if (kind != WS_TEXT)
        return;
    char *text = malloc(len + 1);
    if (!text)
        return;
    memcpy(text, data, len);
    text[len] = '\0';
    if (strcmp(text, "!stats") == 0) {
        send_stats(conn);
    } else if (strncmp(text, "!pub ", 5) == 0) {
        char *topic = text + 5, *msg = strchr(topic, ' ');
        if (msg) {
            *msg++ = '\0';
            if (ws_server_publish(srv, topic, (const uint8_t *)msg, strlen(msg), WS_TEXT, 0, NULL) != WS_OK)
                reply(conn, ws_last_error());
        }
    } else if (strncmp(text, "!sub ", 5) == 0 || strncmp(text, "!unsub ", 7) == 0) {
        int sub = text[1] == 's';
        const char *topic = text + (sub ? 5 : 7);
        int r = sub ? ws_conn_subscribe(srv, conn, topic) : ws_conn_unsubscribe(srv, conn, topic);
        reply(conn, r == WS_OK ? "ok" : ws_last_error());
    } else {
        ws_server_publish(srv, "all", data, len, WS_TEXT, 0, NULL);
    }
    free(text);
}

static void on_log(void *ud, ws_log_level level, const char *message) {
    (void)ud;
    fprintf(stderr, "log %u: %s\n", (unsigned)level, message);
    fflush(stderr);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s HOST PORT [BACKPLANE_URL]\n", argv[0]);
        return 2;
    }
    const char *host;
    uint16_t port;
    if (example_args(argc, argv, &host, &port) != 0)
        return 2;
    sigset_t signals;
    example_block_signals(&signals);
    ws_callbacks cb = {0};
    cb.on_open = on_open;
    cb.on_message = on_message;
    cb.on_log = on_log;
    srv = ws_server_new(&cb, NULL);
    ws_server_set_option(srv, WS_OPT_LOG_LEVEL, WS_LOG_DEBUG);
    int r = argc > 3 ? ws_server_set_backplane(srv, argv[3]) : WS_OK;
    if (r == WS_OK)
        r = ws_server_listen(srv, host, port);
    if (r != WS_OK) {
        fprintf(stderr, "error: %s: %s\n", ws_result_name(r), ws_last_error());
        ws_server_free(srv);
        return 1;
    }
    example_print_listening(srv, "ws", host);
    example_wait_for_signal(&signals);
    ws_server_close(srv, 1000);
    ws_server_free(srv);
    return 0;
}
