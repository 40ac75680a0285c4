/*
 * chat_server [host] [port]: a chat room. Each new client gets a welcome
 * message; every text message is relayed to all clients (the sender too);
 * clients are pinged every 5 s and dropped after 15 s of silence.
 * Prints "listening on ws://HOST:PORT" when ready; exits 0 on SIGINT/SIGTERM.
 */
#include <pthread.h>

#include "example_common.h"

static ws_server *server;

static int on_open(void *user_data, uint64_t conn, const ws_request *request) {
    (void)user_data;
    static const char welcome[] = "Welcome to the wsserver chat!";
    ws_server_send(server, conn, (const uint8_t *)welcome, sizeof welcome - 1, WS_TEXT);
    fprintf(stderr, "#%llu joined from %s (%s)\n", (unsigned long long)conn, ws_request_peer(request),
            ws_request_path(request));
    return 0; /* accept */
}

static void on_message(void *user_data, uint64_t conn, const uint8_t *data, size_t len, ws_kind kind) {
    (void)user_data;
    (void)conn;
    if (kind == WS_TEXT) ws_server_broadcast(server, data, len, WS_TEXT, 0, NULL);
}

static void on_close(void *user_data, uint64_t conn, uint16_t code, const char *reason, size_t reason_len) {
    (void)user_data;
    fprintf(stderr, "#%llu left (%u %.*s)\n", (unsigned long long)conn, (unsigned)code, (int)reason_len, reason);
}

int main(int argc, char **argv) {
    const char *host;
    uint16_t port;
    sigset_t signals;
    if (example_args(argc, argv, &host, &port) != 0) return 2;
    example_block_signals(&signals);

    ws_callbacks callbacks = {0};
    callbacks.on_open = on_open;
    callbacks.on_message = on_message;
    callbacks.on_close = on_close;
    callbacks.on_log = example_log;
    server = ws_server_new(&callbacks, NULL);
    ws_server_set_option(server, WS_OPT_PING_INTERVAL_MS, 5000);
    ws_server_set_option(server, WS_OPT_IDLE_TIMEOUT_MS, 15000);
    ws_server_set_option(server, WS_OPT_MAX_CONNECTIONS, 100000);
    return example_serve(server, "chat_server", "ws", host, port, &signals);
}
