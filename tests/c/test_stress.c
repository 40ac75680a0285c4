/*
 * test_stress: 4 host threads send (to chosen connections) and broadcast
 * while 200 clients connect and disconnect (10 rounds of 20; fewer under
 * valgrind), then ws_server_close runs while those threads are still
 * sending. No crash, no valgrind error or leak, the callback invariants
 * hold, and every message a host thread got WS_OK/WS_BACKPRESSURE for
 * before the close started reaches each of the clients that stay connected
 * (they read until the 1001 close): messages are numbered per sender, per
 * destination for sends and per sender for broadcasts, and each arrives
 * exactly once and in order.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "client.h"
#include "events.h"

enum { NTHREADS = 4, NSTAY = 8, RING = 64 };

static ws_server *srv;
static uint16_t port;
static uint64_t stay_id[NSTAY];
static wsc stay[NSTAY];

static uint64_t ring[RING]; /* recent churn connection ids */
static unsigned ring_n;
static pthread_mutex_t ring_mu = PTHREAD_MUTEX_INITIALIZER;

static int closing;        /* set just before ws_server_close is called */
static int close_returned; /* set once it returned */
static int stop_threads;

/* Per host thread (written by it only; read after join). */
typedef struct sender {
    int idx;
    uint32_t useq[NSTAY];         /* sends to each stayer that were taken */
    uint32_t ubefore[NSTAY];      /* ... of which taken before the close started */
    uint32_t bseq, bbefore;       /* broadcasts, likewise */
    long churn_sends, churn_ok, disconnects;
    long unexpected;              /* a result no rule allows */
    int unexpected_code;
    long ok_after_close;          /* taken although ws_server_close had returned */
    pthread_t th;
} sender;
static sender senders[NTHREADS];

/* Per stayer (written by its reader). */
typedef struct reader {
    int j;
    uint32_t unext[NTHREADS], bnext[NTHREADS];
    long bad, messages;
    int close_code;
    pthread_t th;
} reader;
static reader readers[NSTAY];

static int on_open(void *ud, uint64_t conn, const ws_request *req) {
    (void)ud;
    ev_enter(conn, 1);
    ev_record_open(conn, 1);
    if (strcmp(ws_request_path(req), "/churn") == 0) {
        pthread_mutex_lock(&ring_mu);
        ring[ring_n++ % RING] = conn;
        pthread_mutex_unlock(&ring_mu);
    }
    ev_leave();
    return 0;
}

static void on_message(void *ud, uint64_t conn, const uint8_t *data, size_t len, ws_kind kind) {
    (void)ud;
    (void)data;
    (void)len;
    (void)kind;
    ev_enter(conn, 0);
    ev_record_message(conn);
    ev_leave();
}

static size_t make_msg(unsigned char *m, char type, int sender, uint32_t seq) {
    size_t len = 16 + (seq % 7) * 300;
    m[0] = (unsigned char)type;
    m[1] = (unsigned char)sender;
    memcpy(m + 2, &seq, 4);
    memset(m + 6, (unsigned char)seq, len - 6);
    return len;
}

static int taken(int r) { return r == WS_OK || r == WS_BACKPRESSURE; }

static void *sender_thread(void *arg) {
    sender *s = arg;
    unsigned char m[2048];
    unsigned rnd = (unsigned)s->idx * 7919u + 1;
    int pause = scaled(1) > 1 ? 4 : 1;
    for (long it = 0; !__atomic_load_n(&stop_threads, __ATOMIC_SEQ_CST); it++) {
        int after = __atomic_load_n(&close_returned, __ATOMIC_SEQ_CST);
        for (int j = 0; j < NSTAY; j++) {
            size_t q = 0;
            int qr = ws_server_queued_bytes(srv, stay_id[j], &q);
            if (qr == WS_OK && q > 512 * 1024) continue; /* let the reader catch up */
            size_t len = make_msg(m, 'U', s->idx, s->useq[j]);
            int r = ws_server_send(srv, stay_id[j], m, len, WS_BINARY);
            if (taken(r)) {
                s->useq[j]++;
                if (!__atomic_load_n(&closing, __ATOMIC_SEQ_CST)) s->ubefore[j] = s->useq[j];
                if (after) s->ok_after_close++;
            } else if (r != WS_ERR_CLOSED) {
                s->unexpected++;
                s->unexpected_code = r;
            }
        }
        if (it % 4 == (long)s->idx) {
            size_t len = make_msg(m, 'B', s->idx, s->bseq);
            size_t n = 0;
            int r = ws_server_broadcast(srv, m, len, WS_BINARY, 0, &n);
            if (r == WS_OK) {
                s->bseq++;
                if (!__atomic_load_n(&closing, __ATOMIC_SEQ_CST)) s->bbefore = s->bseq;
                if (after && n > 0) s->ok_after_close++;
            } else {
                s->unexpected++;
                s->unexpected_code = r;
            }
        }
        /* A churning connection: it may be open, closing or gone. */
        pthread_mutex_lock(&ring_mu);
        uint64_t target = ring_n ? ring[rand_r(&rnd) % (ring_n < RING ? ring_n : RING)] : 0;
        pthread_mutex_unlock(&ring_mu);
        if (target) {
            size_t len = make_msg(m, 'C', s->idx, 0);
            int r = ws_server_send(srv, target, m, len, WS_BINARY);
            s->churn_sends++;
            if (taken(r)) s->churn_ok++;
            else if (r != WS_ERR_CLOSED && r != WS_ERR_DROPPED) {
                s->unexpected++;
                s->unexpected_code = r;
            }
            if (rand_r(&rnd) % 16 == 0) {
                int d = ws_server_disconnect(srv, target, 1000, "churn");
                s->disconnects++;
                if (d != WS_OK && d != WS_ERR_CLOSED) {
                    s->unexpected++;
                    s->unexpected_code = d;
                }
            }
        }
        sleep_ms(pause); /* paces the load; not a synchronisation */
    }
    return NULL;
}

static void *reader_thread(void *arg) {
    reader *rd = arg;
    wsc *c = &stay[rd->j];
    rd->close_code = -1;
    for (;;) {
        wsc_frame f;
        int r = wsc_recv(c, &f, scaled(20000));
        if (r != WSC_OK) {
            rd->bad++;
            return NULL;
        }
        if (f.opcode == WSC_CLOSE) {
            rd->close_code = wsc_close_code(&f, NULL, 0);
            wsc_frame_free(&f);
            wsc_send_close(c, rd->close_code, NULL);
            return NULL;
        }
        rd->messages++;
        uint32_t seq = 0;
        int sd = f.len >= 6 ? f.data[1] : 255;
        if (f.len >= 6) memcpy(&seq, f.data + 2, 4);
        int ok = f.opcode == WSC_BINARY && sd < NTHREADS && f.len == 16 + (seq % 7) * 300 &&
                 f.data[f.len - 1] == (unsigned char)seq;
        if (ok && f.data[0] == 'U') {
            ok = seq == rd->unext[sd];
            rd->unext[sd] = seq + 1;
        } else if (ok && f.data[0] == 'B') {
            ok = seq == rd->bnext[sd];
            rd->bnext[sd] = seq + 1;
        } else {
            ok = 0;
        }
        if (!ok) rd->bad++;
        wsc_frame_free(&f);
    }
}

/* Connects, says hello, and leaves in one of three ways. */
static void churn(int rounds, int per_round, int *opened, int *failed) {
    wsc *c = calloc((size_t)per_round, sizeof *c);
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < per_round; i++) {
            int st = wsc_open(&c[i], "127.0.0.1", port, "/churn", NULL, 0, scaled(5000));
            if (st == 101) {
                (*opened)++;
                wsc_send_text(&c[i], "hello");
            } else {
                (*failed)++;
            }
        }
        /* Each stays until it has read ten messages (broadcasts, sends). */
        for (int i = 0; i < per_round; i++) {
            if (c[i].fd < 0) continue;
            int got = 0, kicked = 0;
            while (got < 10 && !kicked) {
                wsc_frame f;
                if (wsc_recv(&c[i], &f, scaled(5000)) != WSC_OK) break;
                got += f.opcode == WSC_BINARY;
                kicked = f.opcode == WSC_CLOSE; /* a host thread's ws_server_disconnect */
                wsc_frame_free(&f);
            }
            if (got < 10 && !kicked) (*failed)++;
        }
        for (int i = 0; i < per_round; i++) {
            if (c[i].fd < 0) continue;
            switch ((r + i) % 3) {
            case 0: { /* polite: close and wait for the answer (discarding data) */
                wsc_send_close(&c[i], 1000, "bye");
                int64_t deadline = now_ms() + scaled(3000);
                for (;;) {
                    wsc_frame f;
                    int left = (int)(deadline - now_ms());
                    if (left <= 0 || wsc_recv(&c[i], &f, left) != WSC_OK) break;
                    int is_close = f.opcode == WSC_CLOSE;
                    wsc_frame_free(&f);
                    if (is_close) break;
                }
                break;
            }
            case 1: /* gone without a word */
                break;
            default: /* a close frame, then gone at once */
                wsc_send_close(&c[i], 1001, NULL);
                break;
            }
            wsc_free(&c[i]);
        }
    }
    free(c);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    int valgrind = scaled(1) > 1;
    int rounds = 10, per_round = valgrind ? 10 : 20;

    events_reset();
    ws_callbacks cb = ev_callbacks(on_open, on_message);
    srv = ws_server_new(&cb, NULL);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_SEND_QUEUE_LIMIT, 1 << 20), WS_OK);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_SEND_QUEUE_HARD_LIMIT, 64 << 20), WS_OK);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_CLOSE_TIMEOUT_MS, (uint64_t)scaled(5000)), WS_OK);
    CHECK_RES(ws_server_listen(srv, "127.0.0.1", 0), WS_OK);
    CHECK_RES(ws_server_port(srv, &port), WS_OK);

    for (int j = 0; j < NSTAY; j++) {
        stay_id[j] = ev_open_client(&stay[j], port, "/stay", 0);
        if (stay_id[j] == 0) {
            CHECK(0, "stayer %d connected", j);
            return check_summary("test_stress");
        }
    }
    for (int j = 0; j < NSTAY; j++) {
        readers[j].j = j;
        pthread_create(&readers[j].th, NULL, reader_thread, &readers[j]);
    }
    for (int i = 0; i < NTHREADS; i++) {
        senders[i].idx = i;
        pthread_create(&senders[i].th, NULL, sender_thread, &senders[i]);
    }
    int64_t t0 = now_ms();
    int opened = 0, failed = 0;
    churn(rounds, per_round, &opened, &failed);
    int64_t t_churn = now_ms() - t0;
    CHECK_INT(opened, rounds * per_round);
    CHECK_INT(failed, 0);

    /* Close while the host threads are sending. */
    __atomic_store_n(&closing, 1, __ATOMIC_SEQ_CST);
    int64_t t1 = now_ms();
    CHECK_RES(ws_server_close(srv, (uint32_t)scaled(5000)), WS_OK);
    int64_t t_close = now_ms() - t1;
    __atomic_store_n(&close_returned, 1, __ATOMIC_SEQ_CST);
    events_shutdown();
    /* Let the threads run on against the closed server for a moment. */
    int64_t until = now_ms() + 50;
    while (now_ms() < until) sleep_ms(5);
    __atomic_store_n(&stop_threads, 1, __ATOMIC_SEQ_CST);
    for (int i = 0; i < NTHREADS; i++) pthread_join(senders[i].th, NULL);
    for (int j = 0; j < NSTAY; j++) pthread_join(readers[j].th, NULL);

    long total_u = 0, total_b = 0, churn_sends = 0, churn_ok = 0, disconnects = 0, received = 0;
    for (int i = 0; i < NTHREADS; i++) {
        sender *s = &senders[i];
        CHECK(s->unexpected == 0, "sender %d: only the allowed results (%ld others, last %s)", i, s->unexpected,
              ws_result_name(s->unexpected_code));
        CHECK(s->ok_after_close == 0, "sender %d: nothing taken after ws_server_close returned (%ld)", i,
              s->ok_after_close);
        total_b += s->bseq;
        churn_sends += s->churn_sends;
        churn_ok += s->churn_ok;
        disconnects += s->disconnects;
        for (int j = 0; j < NSTAY; j++) total_u += s->useq[j];
    }
    for (int j = 0; j < NSTAY; j++) {
        reader *rd = &readers[j];
        received += rd->messages;
        CHECK_INT(rd->close_code, 1001);
        CHECK(rd->bad == 0, "stayer %d: every message well formed, once, in order per sender (%ld bad)", j, rd->bad);
        for (int i = 0; i < NTHREADS; i++) {
            sender *s = &senders[i];
            CHECK(rd->unext[i] >= s->ubefore[j] && rd->unext[i] <= s->useq[j],
                  "stayer %d got sender %d's sends 0..%u: all %u taken before the close (of %u taken)", j, i,
                  rd->unext[i], s->ubefore[j], s->useq[j]);
            CHECK(rd->bnext[i] >= s->bbefore && rd->bnext[i] <= s->bseq,
                  "stayer %d got sender %d's broadcasts 0..%u: all %u taken before the close (of %u)", j, i,
                  rd->bnext[i], s->bbefore, s->bseq);
        }
    }
    printf("churn: %d clients in %lld ms; %ld sends and %ld broadcasts to the %d stayers, %ld messages read; "
           "%ld sends to churning clients (%ld taken), %ld disconnects; close took %lld ms\n",
           opened, (long long)t_churn, total_u, total_b, NSTAY, received, churn_sends, churn_ok, disconnects,
           (long long)t_close);
    CHECK(total_u > 0 && total_b > 0, "the host threads did send");
    ev_check_invariants("stress");
    int closed = 0;
    for (uint64_t id = 1; id < EV_MAX_CONN; id++) closed += ev_get(id).closed;
    CHECK_INT(closed, opened + NSTAY);
    for (int j = 0; j < NSTAY; j++) wsc_free(&stay[j]);
    ws_server_free(srv);
    return check_summary("test_stress");
}
