/*
 * autobahn_server [host] [port]: the echo server that Autobahn|Testsuite's
 * fuzzingclient tests (tests/autobahn/run.py, `make autobahn`). Every
 * message is echoed back with the same kind, as in echo_server.c, but with
 * limits large enough for the suite's cases: 16 MiB messages and frames
 * (cases 9.1.6, 9.2.6) and send queues that take a 16 MiB echo while the
 * previous one is still being written. Permessage-deflate is on where the
 * library has it. Prints "listening on ws://HOST:PORT" when ready; exits 0
 * on SIGINT/SIGTERM.
 */
#include "example_common.h"

#define MIB (1024ull * 1024ull)

/* Written once by main before ws_server_listen, read by the callback on the
 * I/O thread afterwards (listen starts the thread, so it sees the value). */
static ws_server *server;

/* Runs on the server's I/O thread (WS_OPT_THREADS is 1). `data` is borrowed
 * for the call only; ws_server_send copies it before returning. A refused
 * send (WS_ERR_DROPPED, past the hard limit) is logged by the library. */
static void on_message(void *user_data, uint64_t conn, const uint8_t *data, size_t len, ws_kind kind) {
    (void)user_data;
    ws_server_send(server, conn, data, len, kind);
}

/* Sets one option on `srv` (owned by the caller, not listening yet; main
 * thread only) and prints the library's reason when it is refused.
 * Returns 0, or -1. */
static int set_option(ws_server *srv, ws_option option, uint64_t value, const char *name) {
    if (ws_server_set_option(srv, option, value) == WS_OK) return 0;
    fprintf(stderr, "autobahn_server: %s: %s\n", name, ws_last_error());
    return -1;
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
    /* The suite's largest messages are 16 MiB, in one frame (9.1.6, 9.2.6)
     * or in many (9.3, 9.4). A send is taken while the queue is under the
     * soft limit, so one 16 MiB echo always fits; the hard limit leaves room
     * for a second while the first is written (9.7 and 9.8 send 1000
     * messages without reading). */
    int bad = set_option(server, WS_OPT_MAX_MESSAGE_SIZE, 16 * MIB, "WS_OPT_MAX_MESSAGE_SIZE") |
              set_option(server, WS_OPT_MAX_FRAME_SIZE, 16 * MIB, "WS_OPT_MAX_FRAME_SIZE") |
              set_option(server, WS_OPT_SEND_QUEUE_LIMIT, 32 * MIB, "WS_OPT_SEND_QUEUE_LIMIT") |
              set_option(server, WS_OPT_SEND_QUEUE_HARD_LIMIT, 64 * MIB, "WS_OPT_SEND_QUEUE_HARD_LIMIT") |
              set_option(server, WS_OPT_LOG_LEVEL, WS_LOG_WARN, "WS_OPT_LOG_LEVEL");
    /* permessage-deflate (cases 12 and 13). */
    bad |= set_option(server, WS_OPT_DEFLATE, 1, "WS_OPT_DEFLATE");
    if (bad) {
        ws_server_free(server);
        return 1;
    }
    return example_serve(server, "autobahn_server", "ws", host, port, &signals);
}
