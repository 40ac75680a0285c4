/*
 * What every wsserver example does besides its callbacks: read
 * "[host] [port]" from the command line, print the one "listening on" line
 * once ready, and wait for SIGINT/SIGTERM. Copy it along with an example
 * (static inline: an example that does not use a helper is not warned).
 */
#ifndef WSSERVER_EXAMPLE_COMMON_H
#define WSSERVER_EXAMPLE_COMMON_H

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wsserver.h"

/* Parses "[host] [port]" (defaults 127.0.0.1 8080). Returns 0, or prints
 * usage and returns -1. */
static inline int example_args(int argc, char **argv, const char **host, uint16_t *port) {
    *host = argc > 1 ? argv[1] : "127.0.0.1";
    *port = 8080;
    if (argc > 2) {
        char *end = NULL;
        errno = 0;
        long p = strtol(argv[2], &end, 10);
        if (errno != 0 || *end != '\0' || p < 0 || p > 65535) {
            fprintf(stderr, "usage: %s [host] [port]   (port 0-65535, not '%s')\n", argv[0], argv[2]);
            return -1;
        }
        *port = (uint16_t)p;
    }
    return 0;
}

/* Blocks SIGINT and SIGTERM in this thread and every thread it starts
 * (the server's I/O threads included), so that example_wait_for_signal
 * receives them. Call before ws_server_listen. */
static inline void example_block_signals(sigset_t *set) {
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, set, NULL);
}

/* Prints "listening on SCHEME://HOST:PORT" with the bound port, flushed. */
static inline void example_print_listening(ws_server *srv, const char *scheme, const char *host) {
    uint16_t port = 0;
    ws_server_port(srv, &port);
    int v6 = strchr(host, ':') != NULL && host[0] != '[';
    printf("listening on %s://%s%s%s:%u\n", scheme, v6 ? "[" : "", host, v6 ? "]" : "", (unsigned)port);
    fflush(stdout);
}

/* Waits for SIGINT or SIGTERM (blocked by example_block_signals). */
static inline int example_wait_for_signal(const sigset_t *set) {
    int sig = 0;
    sigwait(set, &sig);
    return sig;
}

/* Log lines from the library go to stderr, prefixed by their level. */
static inline void example_log(void *user_data, ws_log_level level, const char *message) {
    static const char *names[] = {"?", "error", "warn", "info", "debug"};
    (void)user_data;
    fprintf(stderr, "[%s] %s\n", names[level <= 4 ? level : 0], message);
}

/* Listens on host:port, prints the "listening on" line, waits for SIGINT or
 * SIGTERM, then closes (1 s grace) and frees the server. Returns the exit
 * status: 0, or 1 when listen failed (the reason goes to stderr). */
static inline int example_serve(ws_server *srv, const char *name, const char *scheme, const char *host, uint16_t port,
                         const sigset_t *signals) {
    if (ws_server_listen(srv, host, port) != WS_OK) {
        fprintf(stderr, "%s: %s\n", name, ws_last_error());
        ws_server_free(srv);
        return 1;
    }
    example_print_listening(srv, scheme, host);
    example_wait_for_signal(signals);
    ws_server_close(srv, 1000);
    ws_server_free(srv);
    return 0;
}

#endif
