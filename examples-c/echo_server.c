/*
 * echo_server [host] [port]: echoes every message back with the same kind.
 * Prints "listening on ws://HOST:PORT" when ready; exits 0 on SIGINT/SIGTERM.
 */
#include <pthread.h>

#include "example_common.h"

static ws_server *server;

/* Runs on the server's I/O thread; the message is only valid during the
 * call, and ws_server_send copies it. */
static void on_message(void *user_data, uint64_t conn, const uint8_t *data, size_t len, ws_kind kind) {
    (void)user_data;
    ws_server_send(server, conn, data, len, kind);
}

int main(int argc, char **argv) {
    const char *host;
    uint16_t port;
    sigset_t signals;
    if (example_args(argc, argv, &host, &port) != 0) return 2;
    example_block_signals(&signals);

    ws_callbacks callbacks = {0};
    callbacks.on_message = on_message;
    callbacks.on_log = example_log;
    server = ws_server_new(&callbacks, NULL);
    /* An echo server is what load tests hit: allow many clients. */
    ws_server_set_option(server, WS_OPT_MAX_CONNECTIONS, 1000000);
    ws_server_set_option(server, WS_OPT_LOG_LEVEL, WS_LOG_WARN);
    return example_serve(server, "echo_server", "ws", host, port, &signals);
}
