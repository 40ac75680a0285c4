/*
 * test_sigpipe: a host that keeps the default SIGPIPE disposition (as the
 * examples do) must survive a client that goes away while the server is
 * writing to it. Scenario (deterministic): the server has megabytes queued
 * for a client that does not read; the client sends a close frame and a
 * FIN (shutdown), then closes its socket with unread data (RST). The
 * server, still flushing, writes to the reset socket.
 *
 * Each scenario runs in a forked child (the server is created after the
 * fork), so that a SIGPIPE kills only the child and is reported here.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "client.h"

static volatile uint64_t opened;
static volatile int closes;

static int on_open(void *ud, uint64_t conn, const ws_request *req) {
    (void)ud;
    (void)req;
    opened = conn;
    return 0;
}

static void on_close(void *ud, uint64_t conn, uint16_t code, const char *reason, size_t len) {
    (void)ud;
    (void)conn;
    (void)code;
    (void)reason;
    (void)len;
    __atomic_add_fetch(&closes, 1, __ATOMIC_SEQ_CST);
}

/* Child: returns 0 when the server survived and reported the close. */
static int scenario(int with_close_frame) {
    signal(SIGPIPE, SIG_DFL);
    ws_callbacks cb = {0};
    cb.on_open = on_open;
    cb.on_close = on_close;
    ws_server *srv = ws_server_new(&cb, NULL);
    ws_server_set_option(srv, WS_OPT_SEND_QUEUE_HARD_LIMIT, 16u << 20);
    if (ws_server_listen(srv, "127.0.0.1", 0) != WS_OK) return 10;
    uint16_t port = 0;
    ws_server_port(srv, &port);
    wsc c;
    if (wsc_open(&c, "127.0.0.1", port, "/", NULL, 4096, scaled(5000)) != 101) return 11;
    int64_t deadline = now_ms() + scaled(5000);
    while (!opened && now_ms() < deadline) sleep_ms(1);
    if (!opened) return 12;
    static unsigned char big[65536];
    for (int k = 0; k < 100; k++) ws_server_send(srv, opened, big, sizeof big, WS_BINARY); /* 6.4 MB */
    sleep_ms(scaled(100));
    if (with_close_frame) wsc_send_close(&c, 1000, NULL);
    shutdown(c.fd, SHUT_WR);
    sleep_ms(scaled(100));
    close(c.fd); /* unread data: the kernel sends a RST */
    c.fd = -1;
    deadline = now_ms() + scaled(5000);
    while (__atomic_load_n(&closes, __ATOMIC_SEQ_CST) == 0 && now_ms() < deadline) sleep_ms(5);
    int ok = __atomic_load_n(&closes, __ATOMIC_SEQ_CST) == 1;
    ws_server_close(srv, 100);
    ws_server_free(srv);
    wsc_free(&c);
    return ok ? 0 : 13;
}

static void run(int with_close_frame, const char *what) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) _exit(scenario(with_close_frame));
    int status = 0;
    int64_t deadline = now_ms() + scaled(30000);
    pid_t r;
    while ((r = waitpid(pid, &status, WNOHANG)) == 0 && now_ms() < deadline) sleep_ms(10);
    if (r == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        CHECK(0, "%s: the server process hung", what);
        return;
    }
    if (WIFSIGNALED(status)) {
        CHECK(0, "%s: the host process was killed by signal %d (%s)%s", what, WTERMSIG(status),
              strsignal(WTERMSIG(status)),
              WTERMSIG(status) == SIGPIPE ? " -- the library wrote to a reset socket without MSG_NOSIGNAL" : "");
        return;
    }
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: the server survived and reported one on_close (child "
          "status %d)", what, WEXITSTATUS(status));
}

int main(void) {
    run(1, "client sends close + FIN, then resets while the server flushes 6 MB");
    run(0, "client sends FIN, then resets while the server flushes 6 MB");
    return check_summary("test_sigpipe");
}
