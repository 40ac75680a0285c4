/*
 * test_send_limit: the send rule of issue 9 — a send is refused only when
 * the connection's queue is already at/over WS_OPT_SEND_QUEUE_LIMIT and the
 * frame would take it past WS_OPT_SEND_QUEUE_HARD_LIMIT; so a message of
 * WS_OPT_MAX_MESSAGE_SIZE can always be echoed.
 *
 * - build/examples/echo_server (a child process on port 0) echoes one
 *   message of exactly 1 MiB (the default maximum), binary and text, whole
 *   and equal; one byte more is refused with close 1009.
 * - In process, default limits, a client that does not read: a 1 MiB send
 *   to an empty queue is WS_OK/WS_BACKPRESSURE; further 1 MiB sends while
 *   over the soft limit are WS_ERR_DROPPED, with exactly one WARN log line
 *   for several of them; after the client reads (on_drain) the next refusal
 *   is logged again.
 * - Small limits (soft 16 KiB, hard 64 KiB): a 1 MiB message to a queue
 *   under the soft limit is taken (the old rule refused it); a 10-byte
 *   message to a queue over the hard limit is refused.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "client.h"
#include "events.h"

enum { MIB = 1 << 20 };

/* Starts echo_server on 127.0.0.1:0; returns its pid and port, or -1. */
static pid_t start_echo(uint16_t *port, FILE **out) {
    int p[2];
    if (pipe(p) != 0) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execl("build/examples/echo_server", "echo_server", "127.0.0.1", "0", (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    *out = fdopen(p[0], "r");
    char line[256] = "";
    unsigned v = 0;
    if (pid < 0 || *out == NULL || fgets(line, sizeof line, *out) == NULL ||
        sscanf(line, "listening on ws://127.0.0.1:%u", &v) != 1) {
        CHECK(0, "echo_server printed its address (\"%s\")", line);
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
        }
        return -1;
    }
    *port = (uint16_t)v;
    return pid;
}

static void test_echo_server_max_message(void) {
    if (access("build/examples/echo_server", X_OK) != 0) {
        CHECK(0, "build/examples/echo_server exists (run make first)");
        return;
    }
    uint16_t port = 0;
    FILE *out = NULL;
    pid_t pid = start_echo(&port, &out);
    if (pid < 0) return;
    wsc c;
    CHECK_INT(wsc_open(&c, "127.0.0.1", port, "/big", NULL, 0, scaled(5000)), 101);
    unsigned char *m = malloc(MIB + 1);
    for (size_t i = 0; i < MIB + 1; i++) m[i] = (unsigned char)(i * 7 + (i >> 11));
    for (int kind = 0; kind < 2; kind++) {
        if (kind == 1)
            for (size_t i = 0; i < MIB; i++) m[i] = (unsigned char)('a' + i % 26);
        int op = kind == 0 ? WSC_BINARY : WSC_TEXT;
        CHECK_INT(wsc_send_frame(&c, op, 1, m, MIB), 0);
        wsc_frame f;
        int r = wsc_recv(&c, &f, scaled(10000));
        CHECK(r == WSC_OK && f.opcode == op && f.len == MIB && memcmp(f.data, m, MIB) == 0,
              "echo_server echoed a %s message of exactly 1 MiB whole and equal (r=%d, len %zu, %s)",
              kind == 0 ? "binary" : "text", r, f.len, c.why);
        wsc_frame_free(&f);
    }
    /* One byte over the limit: close 1009, from the frame header alone (the
     * payload is not sent, so no reset can overtake the close frame). */
    unsigned char hdr[14] = {0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0x10, 0x00, 0x01, 1, 2, 3, 4};
    CHECK_INT(wsc_send_raw(&c, hdr, sizeof hdr), 0);
    CHECK_INT(wsc_recv_close(&c, scaled(10000), NULL, NULL, 0), 1009);
    free(m);
    wsc_free(&c);
    kill(pid, SIGTERM);
    int status = -1;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "echo_server exits 0 on SIGTERM (status %d)", status);
    fclose(out);
}

static int on_open(void *ud, uint64_t conn, const ws_request *req) {
    (void)ud;
    (void)req;
    ev_enter(conn, 1);
    ev_record_open(conn, 1);
    ev_leave();
    return 0;
}

static ws_server *start(uint64_t soft, uint64_t hard, uint16_t *port) {
    ws_callbacks cb = ev_callbacks(on_open, NULL);
    events_reset();
    ws_server *s = ws_server_new(&cb, NULL);
    if (soft) CHECK_RES(ws_server_set_option(s, WS_OPT_SEND_QUEUE_LIMIT, soft), WS_OK);
    if (hard) CHECK_RES(ws_server_set_option(s, WS_OPT_SEND_QUEUE_HARD_LIMIT, hard), WS_OK);
    CHECK_RES(ws_server_listen(s, "127.0.0.1", 0), WS_OK);
    CHECK_RES(ws_server_port(s, port), WS_OK);
    return s;
}

static int drained(void *arg) {
    uint64_t id = *(uint64_t *)arg;
    return EV.conn[id].drains > 0;
}

static int drop_warnings(void) { return ev_count_logs(WS_LOG_WARN, "dropped"); }

/* Sends 4 KiB messages, letting each flush, until one stays queued: the
 * kernel's buffers are then full (the client reads nothing), so what is
 * queued from here on stays queued. Returns the messages sent, or -1 when a
 * send was not taken. */
static int saturate(ws_server *s, uint64_t id) {
    unsigned char m[4096] = {0};
    int64_t deadline = now_ms() + scaled(20000);
    for (int n = 1; now_ms() < deadline; n++) {
        int r = ws_server_send(s, id, m, sizeof m, WS_BINARY);
        if (r != WS_OK && r != WS_BACKPRESSURE) return -1;
        size_t q = 0;
        int64_t until = now_ms() + scaled(50);
        while (ws_server_queued_bytes(s, id, &q) == WS_OK && q > 0 && now_ms() < until) sleep_ms(1);
        if (q > 0) return n;
    }
    return -1;
}

/* Reads `n` messages; returns how many came. */
static int read_any(wsc *c, int n) {
    int got = 0;
    for (int i = 0; i < n; i++) {
        wsc_frame f;
        if (wsc_recv(c, &f, scaled(10000)) != WSC_OK) break;
        if (f.opcode == WSC_BINARY) got++;
        wsc_frame_free(&f);
    }
    return got;
}

/* Reads `n` binary messages of `len` bytes each. */
static int read_n(wsc *c, int n, size_t len) {
    int got = 0;
    for (int i = 0; i < n; i++) {
        wsc_frame f;
        int r = wsc_recv(c, &f, scaled(10000));
        if (r != WSC_OK) break;
        if (f.opcode == WSC_BINARY && f.len == len) got++;
        wsc_frame_free(&f);
    }
    return got;
}

static void test_default_limits(void) {
    uint16_t port;
    ws_server *s = start(0, 0, &port);
    uint64_t soft = 0, hard = 0;
    CHECK_RES(ws_server_get_option(s, WS_OPT_SEND_QUEUE_LIMIT, &soft), WS_OK);
    CHECK_RES(ws_server_get_option(s, WS_OPT_SEND_QUEUE_HARD_LIMIT, &hard), WS_OK);
    CHECK(soft == 64 * 1024 && hard == MIB, "default limits 64 KiB / 1 MiB (%llu / %llu)", (unsigned long long)soft,
          (unsigned long long)hard);
    wsc c;
    uint64_t id = ev_open_client(&c, port, "/slow", 4096);
    if (id == 0) {
        ws_server_free(s);
        return;
    }
    unsigned char *m = calloc(MIB, 1);
    for (int round = 0; round < 2; round++) {
        size_t q = 1;
        CHECK_RES(ws_server_queued_bytes(s, id, &q), WS_OK);
        CHECK(q == 0, "round %d: queue empty (%zu)", round, q);
        int warnings = drop_warnings();
        int drains = ev_get(id).drains;
        int small = saturate(s, id);
        CHECK(small > 0, "round %d: kernel buffers full after %d small messages", round, small);
        CHECK_RES(ws_server_queued_bytes(s, id, &q), WS_OK);
        CHECK(q > 0 && q < soft, "round %d: queue under the soft limit, not empty (%zu)", round, q);
        /* 1 MiB to a queue under the soft limit is taken, although queue +
         * frame pass the hard limit (the old rule refused it). */
        int r = ws_server_send(s, id, m, MIB, WS_BINARY);
        CHECK(r == WS_OK || r == WS_BACKPRESSURE, "round %d: 1 MiB to a queue of %zu bytes is taken: %s", round, q,
              ws_result_name(r));
        int accepted = small + (r == WS_OK || r == WS_BACKPRESSURE);
        CHECK_RES(ws_server_queued_bytes(s, id, &q), WS_OK);
        printf("round %d: %d small messages filled the socket; after 1 MiB: %s, %zu bytes queued\n", round, small,
               ws_result_name(r), q);
        CHECK(q >= soft, "round %d: the queue is over the soft limit (%zu)", round, q);
        CHECK_INT(drop_warnings() - warnings, 0);
        /* The client reads nothing: the queue stays over the soft limit, and
         * each 1 MiB would pass the hard limit: refused, logged once. */
        int dropped = 0;
        for (int i = 0; i < 5; i++) {
            int r2 = ws_server_send(s, id, m, MIB, WS_BINARY);
            if (r2 == WS_ERR_DROPPED) dropped++;
        }
        CHECK_INT(dropped, 5);
        CHECK_INT(drop_warnings() - warnings, 1);
        int64_t deadline = now_ms() + scaled(200);
        while (now_ms() < deadline && drop_warnings() - warnings == 1) sleep_ms(5);
        CHECK_INT(drop_warnings() - warnings, 1);
        /* The client reads what was taken; on_drain comes (the kernel may
         * even have absorbed the queue before), and the next round's
         * refusal is logged again. */
        CHECK_INT(read_any(&c, accepted), accepted);
        int64_t dl = now_ms() + scaled(5000);
        while (ev_get(id).drains <= drains && now_ms() < dl) sleep_ms(2);
        CHECK(ev_get(id).drains > drains, "round %d: on_drain after the backpressure (%d -> %d)", round, drains,
              ev_get(id).drains);
        q = 1;
        int64_t until = now_ms() + scaled(2000);
        while (now_ms() < until && ws_server_queued_bytes(s, id, &q) == WS_OK && q > 0) sleep_ms(2);
    }
    CHECK_INT(drop_warnings(), 2);
    for (int i = 0; i < EV.nlogs; i++)
        if (strstr(EV.logs[i].message, "dropped")) printf("log: [%u] %s\n", EV.logs[i].level, EV.logs[i].message);
    free(m);
    wsc_send_close(&c, 1000, NULL);
    CHECK(ev_wait_closed(id, scaled(5000)), "closed");
    ev_stop_server(s, (uint32_t)scaled(1000), "default limits");
    wsc_free(&c);
}

static void test_small_limits(void) {
    uint16_t port;
    ws_server *s = start(16 * 1024, 64 * 1024, &port);
    wsc c;
    uint64_t id = ev_open_client(&c, port, "/small", 4096);
    if (id == 0) {
        ws_server_free(s);
        return;
    }
    unsigned char *m = calloc(MIB, 1);
    /* Under the soft limit: a message far over the hard limit is taken
     * (the old rule refused it); the kernel may absorb the first ones. */
    int small = saturate(s, id);
    CHECK(small > 0, "kernel buffers full after %d small messages", small);
    size_t q = 0;
    CHECK_RES(ws_server_queued_bytes(s, id, &q), WS_OK);
    CHECK(q > 0 && q < 16 * 1024, "queue under the soft limit (%zu)", q);
    CHECK_RES(ws_server_send(s, id, m, MIB, WS_BINARY), WS_BACKPRESSURE);
    int accepted = small + 1;
    CHECK_RES(ws_server_queued_bytes(s, id, &q), WS_OK);
    CHECK(q > 64 * 1024, "the queue passed the hard limit by one message (%zu)", q);
    /* Over both: even 10 bytes are refused. */
    CHECK_RES(ws_server_send(s, id, m, 10, WS_BINARY), WS_ERR_DROPPED);
    CHECK_INT(drop_warnings(), 1);
    CHECK_INT(read_any(&c, accepted), accepted);
    int64_t until = now_ms() + scaled(2000);
    while (now_ms() < until && ws_server_queued_bytes(s, id, &q) == WS_OK && q > 0) sleep_ms(2);
    CHECK(ev_wait(drained, &id, scaled(5000)), "on_drain");
    /* Under the soft limit but not empty: a 12 KiB message, then 1 MiB: both taken. */
    int r1 = ws_server_send(s, id, m, 12 * 1024, WS_BINARY);
    int r2 = ws_server_send(s, id, m, MIB, WS_BINARY);
    CHECK(r1 == WS_OK, "12 KiB under the soft limit: %s", ws_result_name(r1));
    CHECK(r2 == WS_BACKPRESSURE || r2 == WS_OK, "then 1 MiB (queue under the soft limit): %s", ws_result_name(r2));
    CHECK_INT(read_n(&c, 1, 12 * 1024), 1);
    CHECK_INT(read_n(&c, 1, MIB), 1);
    free(m);
    wsc_send_close(&c, 1000, NULL);
    CHECK(ev_wait_closed(id, scaled(5000)), "closed");
    ev_stop_server(s, (uint32_t)scaled(1000), "small limits");
    wsc_free(&c);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    test_echo_server_max_message();
    test_default_limits();
    test_small_limits();
    return check_summary("test_send_limit");
}
