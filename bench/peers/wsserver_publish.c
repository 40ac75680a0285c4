/*
 * wsserver_publish [host] [port] [--echo] [--deflate] [backplane-url]: the
 * wsserver-c row's broadcast mode, on topics (pub/sub) through the C API.
 *
 * Every client is subscribed to the topic "all" when it opens
 * (ws_conn_subscribe in on_open); every text message a client sends is
 * published to "all" with ws_server_publish, except to its sender: the
 * frame is encoded once and shared by every subscriber. Binary messages
 * are not relayed. Nothing else is sent (no welcome, no pings, no
 * statistics), so the broadcast workload measures publish alone.
 *
 * --deflate turns permessage-deflate on (WS_OPT_DEFLATE; every other deflate
 * option at its default: no context takeover, level 1, 64 B minimum).
 * --echo sends every message back instead (ws_server_send, as
 * build/examples/echo_server does): the deflate-on echo row, since the
 * example takes no options.
 *
 * A backplane URL (redis://...) joins the server to a Redis backplane
 * (ws_server_set_backplane), for the cross-server row: two of these on one
 * broker, the publisher on one, the receivers split over both.
 *
 * Built by bench/run.sh against target/release/libwsserver.so (rpath set).
 * Prints "listening on ws://HOST:PORT" when ready; exits 0 on SIGINT/SIGTERM.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wsserver.h"

static const char TOPIC[] = "all";
static ws_server *server;
static int echo_mode;

static int on_open(void *user_data, uint64_t conn, const ws_request *request) {
    (void)user_data;
    (void)request;
    if (echo_mode) return 0;
    enum ws_result r = ws_conn_subscribe(server, conn, TOPIC);
    if (r != WS_OK && r != WS_ERR_CLOSED)
        fprintf(stderr, "wsserver_publish: subscribe #%llu: %s\n", (unsigned long long)conn, ws_last_error());
    return 0; /* accept */
}

/* On an I/O thread; ws_server_publish copies the payload. */
static void on_message(void *user_data, uint64_t conn, const uint8_t *data, size_t len, ws_kind kind) {
    (void)user_data;
    if (echo_mode) {
        ws_server_send(server, conn, data, len, kind);
        return;
    }
    if (kind != WS_TEXT) return;
    ws_server_publish(server, TOPIC, data, len, WS_TEXT, conn, NULL);
}

static void on_log(void *user_data, ws_log_level level, const char *message) {
    (void)user_data;
    fprintf(stderr, "[log %u] %s\n", (unsigned)level, message);
}

int main(int argc, char **argv) {
    const char *host = argc > 1 ? argv[1] : "127.0.0.1";
    long port = 8080;
    int deflate = 0;
    const char *backplane = NULL;
    if (argc > 2) {
        char *end = NULL;
        errno = 0;
        port = strtol(argv[2], &end, 10);
        if (errno != 0 || *end != '\0' || port < 0 || port > 65535) {
            fprintf(stderr, "usage: %s [host] [port] [--echo] [--deflate] [backplane-url]\n", argv[0]);
            return 2;
        }
    }
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--echo") == 0) {
            echo_mode = 1;
        } else if (strcmp(argv[i], "--deflate") == 0) {
            deflate = 1;
        } else if (strncmp(argv[i], "--", 2) != 0 && backplane == NULL) {
            backplane = argv[i];
        } else {
            fprintf(stderr, "usage: %s [host] [port] [--echo] [--deflate] [backplane-url]\n", argv[0]);
            return 2;
        }
    }
    /* SIGINT/SIGTERM blocked here and in the I/O threads, taken by sigwait. */
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);

    ws_callbacks callbacks = {0};
    callbacks.on_open = on_open;
    callbacks.on_message = on_message;
    callbacks.on_log = on_log;
    server = ws_server_new(&callbacks, NULL);
    if (server == NULL) {
        fprintf(stderr, "wsserver_publish: %s\n", ws_last_error());
        return 1;
    }
    /* As build/examples/echo_server: load tests open many clients. */
    ws_server_set_option(server, WS_OPT_MAX_CONNECTIONS, 1000000);
    ws_server_set_option(server, WS_OPT_LOG_LEVEL, WS_LOG_WARN);
    ws_server_set_option(server, WS_OPT_DEFLATE, deflate);
    if ((backplane != NULL && ws_server_set_backplane(server, backplane) != WS_OK) ||
        ws_server_listen(server, host, (uint16_t)port) != WS_OK) {
        fprintf(stderr, "wsserver_publish: %s\n", ws_last_error());
        ws_server_free(server);
        return 1;
    }
    uint16_t bound = 0;
    ws_server_port(server, &bound);
    printf("listening on ws://%s:%u\n", host, (unsigned)bound);
    fflush(stdout);
    int sig = 0;
    sigwait(&signals, &sig);
    ws_server_close(server, 1000);
    ws_server_free(server);
    return 0;
}
