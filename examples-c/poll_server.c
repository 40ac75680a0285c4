/*
 * poll_server [host] [port]: the echo server of echo_server.c on the
 * program's own thread. Event-queue mode (WS_OPT_EVENT_QUEUE): no callback
 * runs; one poll() waits on the server's event fd and on a signalfd for
 * SIGINT/SIGTERM, and every event is taken with ws_server_poll. Nothing
 * here needs a lock: this thread is the only one that sees the events.
 * Prints "listening on ws://HOST:PORT" when ready; exits 0 on SIGINT/SIGTERM.
 */
#include <poll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "example_common.h"

/* One event: echo messages, print log lines. The event is freed by the
 * caller; its data is valid until then. */
static void handle(ws_server *srv, const ws_event *ev) {
    switch (ev->type) {
    case WS_EVENT_MESSAGE:
        /* Copies the data. A refused send (the client's queue is full,
         * WS_ERR_DROPPED) is logged by the library as WS_EVENT_LOG. */
        ws_server_send(srv, ev->conn, ev->data, ev->len, ev->kind);
        break;
    case WS_EVENT_LOG: /* conn 0, code = level, data = NUL-terminated message */
        example_log(NULL, (ws_log_level)ev->code, (const char *)ev->data);
        break;
    default: /* WS_EVENT_OPEN: accepted already (WS_OPT_AUTO_ACCEPT); CLOSE, ERROR, DRAIN: nothing to do */
        break;
    }
}

/* Takes and handles the events waiting now, at most `max` of them, and
 * returns the last ws_server_poll result: WS_ERR_TIMEOUT when the queue is
 * empty, WS_ERR_CLOSED when the server is closed and every event has been
 * taken, WS_OK when `max` was reached with events left (the event fd is
 * level-triggered: it stays readable, so the next poll() returns at once). */
static ws_result drain(ws_server *srv, int timeout_ms, long max) {
    ws_event *ev = NULL;
    ws_result r = WS_OK;
    for (long n = 0; n < max && (r = ws_server_poll(srv, timeout_ms, &ev)) == WS_OK; n++) {
        handle(srv, ev);
        ws_event_free(ev);
    }
    return r;
}

int main(int argc, char **argv) {
    const char *host;
    uint16_t port;
    sigset_t signals;
    if (example_args(argc, argv, &host, &port) != 0) return 2;
    /* Blocked before the server starts its threads, so that SIGINT and
     * SIGTERM stay pending for the signalfd instead of killing the process. */
    example_block_signals(&signals);
    int sig_fd = signalfd(-1, &signals, SFD_CLOEXEC);
    if (sig_fd < 0) {
        perror("poll_server: signalfd");
        return 1;
    }

    ws_server *srv = ws_server_new(NULL, NULL); /* event mode: no callbacks */
    ws_server_set_option(srv, WS_OPT_EVENT_QUEUE, 1);
    ws_server_set_option(srv, WS_OPT_AUTO_ACCEPT, 1); /* every handshake accepted; WS_EVENT_OPEN is news */
    /* An echo server is what load tests hit: allow many clients. */
    ws_server_set_option(srv, WS_OPT_MAX_CONNECTIONS, 1000000);
    ws_server_set_option(srv, WS_OPT_LOG_LEVEL, WS_LOG_WARN);
    int event_fd = -1;
    if (ws_server_listen(srv, host, port) != WS_OK || ws_server_event_fd(srv, &event_fd) != WS_OK) {
        fprintf(stderr, "poll_server: %s\n", ws_last_error());
        ws_server_free(srv);
        close(sig_fd);
        return 1;
    }
    example_print_listening(srv, "ws", host);

    /* The whole program: one poll() set, this thread. A batch is bounded so
     * that a flood of messages cannot keep a signal waiting for long. */
    struct pollfd fds[2] = {{.fd = event_fd, .events = POLLIN}, {.fd = sig_fd, .events = POLLIN}};
    int status = 0;
    for (;;) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            perror("poll_server: poll");
            status = 1;
            break;
        }
        if (fds[1].revents & POLLIN) break; /* SIGINT or SIGTERM (left unread: we exit) */
        if (fds[0].revents & POLLIN) {
            ws_result r = drain(srv, 0, 4096);
            if (r != WS_OK && r != WS_ERR_TIMEOUT) {
                fprintf(stderr, "poll_server: ws_server_poll: %s\n", ws_result_name(r));
                status = 1;
                break;
            }
        }
    }

    /* Close (1001 to every client, up to 1000 ms for their answers), then
     * take the remaining events (the last WS_EVENT_CLOSEs) until
     * ws_server_poll says the server is closed and drained. */
    ws_server_close(srv, 1000);
    ws_result r;
    while ((r = drain(srv, -1, 4096)) == WS_OK) {
    }
    if (r != WS_ERR_CLOSED) {
        fprintf(stderr, "poll_server: ws_server_poll after close: %s\n", ws_result_name(r));
        status = 1;
    }
    ws_server_free(srv);
    close(sig_fd);
    return status;
}
