/*
 * test_event_backpressure: the event queue is bounded. 100 clients send
 * numbered 4 KiB messages as fast as TCP lets them (one client thread,
 * non-blocking sockets) while the host does not poll for 5 s. With
 * WS_OPT_EVENT_QUEUE_BYTES at 1 MiB the server stops reading the sockets:
 * the clients stall (TCP windows full) and the process's RSS (the server
 * runs in it) grows by no more than the bound derived below. Then the host
 * drains: every message arrives, in order per client, none lost.
 *
 * Under valgrind or ASan (run.sh sets WSTEST_TIMEOUT_SCALE) the RSS bound is not
 * checked (the tool's own memory dominates) and each client sends fewer
 * messages; everything else is.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "client.h"
#include "evq.h"

enum {
    NCLI = 100,
    MSG = 4096,
    FRAME = MSG + 8, /* FIN|binary, 126, 16-bit length, 4-byte mask (zero key) */
    QUEUE_BYTES = 1 << 20,
};

typedef struct cli {
    wsc c;
    int fd;
    uint32_t seq;        /* whole frames written */
    unsigned char frame[FRAME];
    size_t off;          /* bytes of `frame` written; FRAME when none in progress */
} cli;

static cli clis[NCLI];
static int stop_sending, clients_done;
static long long bytes_sent;
static uint32_t max_per_client;

static void make_frame(cli *k, int idx) {
    unsigned char *f = k->frame;
    f[0] = 0x82;
    f[1] = 0x80 | 126;
    f[2] = (unsigned char)(MSG >> 8);
    f[3] = (unsigned char)(MSG & 0xff);
    memset(f + 4, 0, 4); /* mask key 0: the payload goes as is */
    unsigned char *p = f + 8;
    uint32_t i32 = (uint32_t)idx, s32 = k->seq;
    memcpy(p, &i32, 4);
    memcpy(p + 4, &s32, 4);
    memset(p + 8, (unsigned char)(k->seq ^ (uint32_t)idx), MSG - 8);
    k->off = 0;
}

static void *client_thread(void *arg) {
    (void)arg;
    struct pollfd pf[NCLI];
    for (;;) {
        int stopping = __atomic_load_n(&stop_sending, __ATOMIC_ACQUIRE);
        int n = 0, idxs[NCLI];
        for (int i = 0; i < NCLI; i++) {
            cli *k = &clis[i];
            if (k->off == FRAME) {
                if (stopping || k->seq >= max_per_client) continue;
                make_frame(k, i);
            }
            pf[n].fd = k->fd;
            pf[n].events = POLLOUT;
            pf[n].revents = 0;
            idxs[n++] = i;
        }
        if (n == 0) {
            if (stopping) break;
            sleep_ms(5); /* every client sent its quota: wait for the stop */
            continue;
        }
        int r = poll(pf, (nfds_t)n, 20);
        if (r <= 0) continue;
        for (int j = 0; j < n; j++) {
            if (!(pf[j].revents & (POLLOUT | POLLERR | POLLHUP))) continue;
            cli *k = &clis[idxs[j]];
            for (;;) {
                ssize_t w = send(k->fd, k->frame + k->off, FRAME - k->off, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (w > 0) {
                    k->off += (size_t)w;
                    __atomic_add_fetch(&bytes_sent, w, __ATOMIC_RELAXED);
                    if (k->off == FRAME) {
                        k->seq++;
                        if (__atomic_load_n(&stop_sending, __ATOMIC_ACQUIRE) || k->seq >= max_per_client) break;
                        make_frame(k, idxs[j]);
                    }
                    continue;
                }
                if (w < 0 && errno == EINTR) continue;
                if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
                    k->off = FRAME; /* broken: give up on this one */
                    k->seq = UINT32_MAX;
                }
                break;
            }
        }
    }
    __atomic_store_n(&clients_done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static long rss_kib(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &rss) != 2) rss = 0;
        fclose(f);
    }
    return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    int valgrind = scaled(1) > 1;
    max_per_client = valgrind ? 60 : 100000;
    int hold_ms = 5000;

    evq_reset();
    ws_server *s = ws_server_new(NULL, NULL);
    CHECK_RES(ws_server_set_option(s, WS_OPT_EVENT_QUEUE, 1), WS_OK);
    CHECK_RES(ws_server_set_option(s, WS_OPT_AUTO_ACCEPT, 1), WS_OK);
    CHECK_RES(ws_server_set_option(s, WS_OPT_EVENT_QUEUE_BYTES, QUEUE_BYTES), WS_OK);
    CHECK_RES(ws_server_set_option(s, WS_OPT_IDLE_TIMEOUT_MS, 0), WS_OK);
    CHECK_RES(ws_server_set_option(s, WS_OPT_PING_INTERVAL_MS, 0), WS_OK);
    uint16_t port = 0;
    CHECK_RES(ws_server_listen(s, "127.0.0.1", 0), WS_OK);
    CHECK_RES(ws_server_port(s, &port), WS_OK);
    long rss_start = rss_kib();

    int connected = 0;
    for (int i = 0; i < NCLI; i++) {
        int st = wsc_open(&clis[i].c, "127.0.0.1", port, "/flood", NULL, 0, scaled(5000));
        if (st != 101) break;
        clis[i].fd = clis[i].c.fd;
        int sndbuf = 64 * 1024; /* keeps the kernel's share (not in RSS) modest */
        setsockopt(clis[i].fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
        fcntl(clis[i].fd, F_SETFL, fcntl(clis[i].fd, F_GETFL) | O_NONBLOCK);
        clis[i].off = FRAME;
        connected++;
    }
    if (!CHECK_INT(connected, NCLI)) return check_summary("test_event_backpressure");
    /* Take the opens (they are small), so the queue starts empty. */
    int opens = 0;
    int64_t deadline = now_ms() + scaled(10000);
    while (opens < NCLI && now_ms() < deadline) {
        ws_event *ev;
        if (evq_poll(s, 100, &ev) != WS_OK) continue;
        if (ev->type == WS_EVENT_OPEN) opens++;
        ws_event_free(ev);
    }
    CHECK_INT(opens, NCLI);

    long base = rss_kib();
    pthread_t th;
    pthread_create(&th, NULL, client_thread, NULL);
    /* Hold: no polling for 5 s; sample RSS and the clients' progress. */
    long peak = base;
    long long sent_at_4s = 0;
    int64_t t0 = now_ms();
    while (now_ms() - t0 < hold_ms) {
        long r = rss_kib();
        if (r > peak) peak = r;
        if (sent_at_4s == 0 && now_ms() - t0 >= hold_ms - 1000) sent_at_4s = __atomic_load_n(&bytes_sent, __ATOMIC_RELAXED);
        sleep_ms(20);
    }
    long long sent_hold = __atomic_load_n(&bytes_sent, __ATOMIC_RELAXED);
    long long last_second = sent_hold - sent_at_4s;
    /* The bound: the queue's byte limit, plus per connection what one read
     * may add after the limit is reached (a 64 KiB read buffer and a message
     * being assembled), plus allocator and runtime slack. */
    long per_conn_kib = 64 + 2 * (MSG / 1024) + 56;
    long bound_kib = QUEUE_BYTES / 1024 + NCLI * per_conn_kib + 8 * 1024;
    printf("RSS: %ld KiB at listen, %ld KiB with %d clients connected (baseline), peak %ld KiB while held: growth %ld KiB"
           " (bound %ld KiB = queue %d KiB + %d x %ld KiB per connection + 8 MiB)\n",
           rss_start, base, NCLI, peak, peak - base, bound_kib, QUEUE_BYTES / 1024, NCLI, per_conn_kib);
    printf("clients wrote %lld KiB during the hold, %lld KiB in its last second\n", sent_hold / 1024,
           last_second / 1024);
    if (valgrind) {
        printf("note: under valgrind or ASan (timeout scale > 1): RSS bound not checked\n");
    } else {
        CHECK(peak - base <= bound_kib, "RSS growth %ld KiB <= %ld KiB while the host does not poll", peak - base,
              bound_kib);
    }
    /* Without backpressure the clients would keep writing at loopback speed. */
    CHECK(sent_hold > QUEUE_BYTES, "the clients filled the queue (%lld bytes written)", sent_hold);
    CHECK(last_second < 4 * 1024 * 1024, "the clients were stalled by TCP by the end of the hold (%lld bytes in the "
          "last second)", last_second);

    /* Drain: everything arrives, in order per client, none lost. */
    __atomic_store_n(&stop_sending, 1, __ATOMIC_RELEASE);
    uint32_t next[NCLI];
    memset(next, 0, sizeof next);
    long received = 0, bad = 0, foreign = 0;
    deadline = now_ms() + scaled(60000);
    for (;;) {
        if (__atomic_load_n(&clients_done, __ATOMIC_ACQUIRE)) {
            long want = 0;
            for (int i = 0; i < NCLI; i++) want += clis[i].seq;
            if (received >= want) break;
        }
        if (now_ms() > deadline) break;
        ws_event *ev;
        if (evq_poll(s, 50, &ev) != WS_OK) continue;
        if (ev->type == WS_EVENT_MESSAGE) {
            uint32_t idx = UINT32_MAX, seq = UINT32_MAX;
            if (ev->len == MSG) {
                memcpy(&idx, ev->data, 4);
                memcpy(&seq, ev->data + 4, 4);
            }
            if (idx >= NCLI) {
                foreign++;
            } else {
                if (seq != next[idx] || ev->kind != WS_BINARY || ev->data[MSG - 1] != (unsigned char)(seq ^ idx) ||
                    ev->data[MSG] != 0)
                    bad++;
                next[idx] = seq + 1;
                received++;
            }
        } else if (ev->type != WS_EVENT_LOG) {
            foreign++;
        }
        ws_event_free(ev);
    }
    pthread_join(th, NULL);
    long want = 0;
    int short_clients = 0, broken = 0;
    for (int i = 0; i < NCLI; i++) {
        if (clis[i].seq == UINT32_MAX) {
            broken++;
            continue;
        }
        want += clis[i].seq;
        if (next[i] != clis[i].seq) short_clients++;
    }
    printf("messages: %ld sent, %ld received\n", want, received);
    CHECK_INT(broken, 0);
    CHECK_INT(received, want);
    CHECK_INT(short_clients, 0);
    CHECK_INT(bad, 0);
    CHECK_INT(foreign, 0);

    for (int i = 0; i < NCLI; i++) wsc_free(&clis[i].c);
    CHECK_RES(ws_server_close(s, (uint32_t)scaled(1000)), WS_OK);
    ws_event *ev;
    int r;
    while ((r = evq_poll(s, scaled(1000), &ev)) == WS_OK) ws_event_free(ev);
    CHECK_RES(r, WS_ERR_CLOSED);
    evq_check_invariants("flood");
    ws_server_free(s);
    return check_summary("test_event_backpressure");
}
