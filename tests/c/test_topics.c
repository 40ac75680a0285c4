/*
 * test_topics: topics (publish/subscribe) through the public C ABI, with
 * real clients over loopback.
 *
 * - ws_conn_subscribe / ws_conn_unsubscribe from the test thread and from
 *   on_open (clients of "/auto" are subscribed to "auto" there); publish
 *   from the test thread and from on_message.
 * - A publish reaches exactly the subscribers (a marker sent right after
 *   shows a non-subscriber got nothing), not `except`; *out_queued is the
 *   number of recipients; an unknown topic: WS_OK, 0 queued.
 * - Subscriber counts go up and down; subscribing twice is one
 *   subscription; unsubscribing twice is fine; a client that closes (close
 *   handshake, or TCP gone) is unsubscribed once its on_close has run.
 * - Bad arguments: NULL, empty topic, 1025 bytes (1024 is fine), invalid
 *   UTF-8 topic, bad kind, invalid UTF-8 text, closed id, never-issued id;
 *   outputs untouched on errors.
 * - 4 publisher threads x 500 numbered messages (fewer under valgrind):
 *   every subscriber gets every message, each publisher's in order.
 * - The same in event-queue mode (subscribe at WS_EVENT_OPEN, publish from
 *   the poller and from threads, count drop after WS_EVENT_CLOSE).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "client.h"
#include "events.h"
#include "evq.h"

static ws_server *srv;
static int open_sub_result = 99;  /* what ws_conn_subscribe returned inside on_open */
static int open_sub_calls;
static int msg_pub_result = 99;   /* what ws_server_publish returned inside on_message */
static size_t msg_pub_queued = 999;

static int on_open(void *ud, uint64_t conn, const ws_request *req) {
    (void)ud;
    ev_enter(conn, 1);
    const char *path = ws_request_path(req);
    if (path != NULL && strcmp(path, "/auto") == 0) {
        int r = ws_conn_subscribe(srv, conn, "auto");
        pthread_mutex_lock(&ev_mu);
        open_sub_result = r;
        open_sub_calls++;
        pthread_mutex_unlock(&ev_mu);
    }
    ev_record_open(conn, 1);
    ev_leave();
    return 0;
}

/* "pub:<text>" publishes <text> to "auto", except the sender. */
static void on_message(void *ud, uint64_t conn, const uint8_t *data, size_t len, ws_kind kind) {
    (void)ud;
    (void)kind;
    ev_enter(conn, 0);
    if (len > 4 && memcmp(data, "pub:", 4) == 0) {
        size_t q = 999;
        int r = ws_server_publish(srv, "auto", data + 4, len - 4, WS_TEXT, conn, &q);
        pthread_mutex_lock(&ev_mu);
        msg_pub_result = r;
        msg_pub_queued = q;
        pthread_mutex_unlock(&ev_mu);
    }
    ev_record_message(conn);
    ev_leave();
}

static size_t subs(ws_server *s, const char *topic) {
    size_t n = 12345;
    int r = ws_server_subscribers(s, topic, &n);
    if (r != WS_OK) {
        CHECK(0, "ws_server_subscribers(%s) returned %s", topic, ws_result_name(r));
        return 12345;
    }
    return n;
}

/* The client's next message is text `want`. */
static int expect_text(wsc *c, const char *want, const char *who) {
    wsc_frame f;
    int r = wsc_recv(c, &f, scaled(3000));
    int ok = r == WSC_OK && f.opcode == WSC_TEXT && f.len == strlen(want) && memcmp(f.data, want, f.len) == 0;
    CHECK(ok, "%s receives \"%s\" (got r=%d opcode %d \"%s\") %s", who, want, r, r == WSC_OK ? f.opcode : -1,
          r == WSC_OK ? (const char *)f.data : "", c->why);
    if (r == WSC_OK) wsc_frame_free(&f);
    return ok;
}

static int pub(ws_server *s, const char *topic, const char *text, uint64_t except, size_t *queued) {
    return ws_server_publish(s, topic, (const uint8_t *)text, strlen(text), WS_TEXT, except, queued);
}

static void polite_close(wsc *c) {
    wsc_send_close(c, 1000, "bye");
    char reason[64];
    int code = wsc_recv_close(c, scaled(3000), NULL, reason, sizeof reason);
    CHECK_INT(code, 1000);
}

/* ---- basics in callback mode ---- */

static void test_basics(uint16_t port) {
    wsc a, b, c;
    uint64_t ia = ev_open_client(&a, port, "/", 0);
    uint64_t ib = ev_open_client(&b, port, "/", 0);
    uint64_t ic = ev_open_client(&c, port, "/", 0);
    if (!ia || !ib || !ic) return;

    CHECK_INT(subs(srv, "news"), 0);
    CHECK_RES(ws_conn_subscribe(srv, ia, "news"), WS_OK);
    CHECK_INT(subs(srv, "news"), 1);
    CHECK_RES(ws_conn_subscribe(srv, ib, "news"), WS_OK);
    CHECK_INT(subs(srv, "news"), 2);
    CHECK_RES(ws_conn_subscribe(srv, ia, "news"), WS_OK); /* again: still one subscription */
    CHECK_INT(subs(srv, "news"), 2);
    CHECK_RES(ws_conn_subscribe(srv, ic, "sport"), WS_OK);
    CHECK_INT(subs(srv, "sport"), 1);
    CHECK_INT(subs(srv, "NEWS"), 0); /* topics are exact */

    size_t q = 999;
    CHECK_RES(pub(srv, "news", "n1", 0, &q), WS_OK);
    CHECK_INT(q, 2);
    CHECK_RES(ws_server_send(srv, ic, (const uint8_t *)"marker-c", 8, WS_TEXT), WS_OK);
    expect_text(&a, "n1", "a (news)");
    expect_text(&b, "n1", "b (news)");
    expect_text(&c, "marker-c", "c (not subscribed to news): the marker first");

    /* except */
    q = 999;
    CHECK_RES(pub(srv, "news", "n2", ia, &q), WS_OK);
    CHECK_INT(q, 1);
    CHECK_RES(ws_server_send(srv, ia, (const uint8_t *)"marker-a", 8, WS_TEXT), WS_OK);
    expect_text(&b, "n2", "b");
    expect_text(&a, "marker-a", "a (except): the marker first");
    /* except naming a non-subscriber changes nothing */
    q = 999;
    CHECK_RES(pub(srv, "news", "n3", ic, &q), WS_OK);
    CHECK_INT(q, 2);
    expect_text(&a, "n3", "a");
    expect_text(&b, "n3", "b");

    /* binary, empty payload, NULL out_queued */
    const uint8_t bin[3] = {0, 0xff, 7};
    q = 999;
    CHECK_RES(ws_server_publish(srv, "sport", bin, 3, WS_BINARY, 0, &q), WS_OK);
    CHECK_INT(q, 1);
    wsc_frame f;
    int r = wsc_recv(&c, &f, scaled(3000));
    CHECK(r == WSC_OK && f.opcode == WSC_BINARY && f.len == 3 && memcmp(f.data, bin, 3) == 0,
          "c receives the binary publish");
    if (r == WSC_OK) wsc_frame_free(&f);
    CHECK_RES(ws_server_publish(srv, "sport", NULL, 0, WS_TEXT, 0, NULL), WS_OK);
    expect_text(&c, "", "c (empty message)");

    /* unknown topic */
    q = 999;
    CHECK_RES(pub(srv, "nobody-here", "x", 0, &q), WS_OK);
    CHECK_INT(q, 0);
    CHECK_INT(subs(srv, "nobody-here"), 0);

    /* unsubscribe */
    CHECK_RES(ws_conn_unsubscribe(srv, ib, "news"), WS_OK);
    CHECK_INT(subs(srv, "news"), 1);
    CHECK_RES(ws_conn_unsubscribe(srv, ib, "news"), WS_OK); /* not subscribed: fine */
    CHECK_RES(ws_conn_unsubscribe(srv, ib, "never-used"), WS_OK);
    CHECK_INT(subs(srv, "news"), 1);
    q = 999;
    CHECK_RES(pub(srv, "news", "n4", 0, &q), WS_OK);
    CHECK_INT(q, 1);
    CHECK_RES(ws_server_send(srv, ib, (const uint8_t *)"marker-b", 8, WS_TEXT), WS_OK);
    expect_text(&a, "n4", "a");
    expect_text(&b, "marker-b", "b (unsubscribed): the marker first");
    CHECK_RES(ws_conn_unsubscribe(srv, ia, "news"), WS_OK);
    CHECK_INT(subs(srv, "news"), 0);
    q = 999;
    CHECK_RES(pub(srv, "news", "n5", 0, &q), WS_OK);
    CHECK_INT(q, 0);
    /* resubscribe after unsubscribing */
    CHECK_RES(ws_conn_subscribe(srv, ib, "news"), WS_OK);
    CHECK_INT(subs(srv, "news"), 1);

    /* a 1024-byte topic is fine */
    char big[1026];
    memset(big, 't', 1024);
    big[1024] = '\0';
    CHECK_RES(ws_conn_subscribe(srv, ia, big), WS_OK);
    CHECK_INT(subs(srv, big), 1);
    q = 999;
    CHECK_RES(pub(srv, big, "big", 0, &q), WS_OK);
    CHECK_INT(q, 1);
    expect_text(&a, "big", "a (1024-byte topic)");
    /* a UTF-8 topic */
    CHECK_RES(ws_conn_subscribe(srv, ia, "caf\xc3\xa9"), WS_OK);
    CHECK_INT(subs(srv, "caf\xc3\xa9"), 1);

    /* Leaving unsubscribes: a closes politely, b just drops its TCP. */
    CHECK_RES(ws_conn_subscribe(srv, ia, "news"), WS_OK);
    CHECK_INT(subs(srv, "news"), 2);
    polite_close(&a);
    CHECK(ev_wait_closed(ia, scaled(3000)), "a's on_close ran");
    CHECK_INT(subs(srv, "news"), 1);
    CHECK_INT(subs(srv, big), 0);
    CHECK_INT(subs(srv, "caf\xc3\xa9"), 0);
    wsc_free(&b);
    CHECK(ev_wait_closed(ib, scaled(3000)), "b's on_close ran");
    CHECK_INT(subs(srv, "news"), 0);
    q = 999;
    CHECK_RES(pub(srv, "news", "n6", 0, &q), WS_OK);
    CHECK_INT(q, 0);
    CHECK_INT(subs(srv, "sport"), 1);

    /* Closed ids. */
    CHECK_RES(ws_conn_subscribe(srv, ia, "news"), WS_ERR_CLOSED);
    CHECK_RES(ws_conn_unsubscribe(srv, ia, "news"), WS_ERR_CLOSED);
    CHECK_RES(ws_conn_subscribe(srv, ib, "news"), WS_ERR_CLOSED);
    CHECK_INT(subs(srv, "news"), 0);

    /* Arguments. */
    char toolong[1026];
    memset(toolong, 'x', 1025);
    toolong[1025] = '\0';
    CHECK_RES(ws_conn_subscribe(NULL, ic, "t"), WS_ERR_NULL);
    CHECK_RES(ws_conn_subscribe(srv, ic, NULL), WS_ERR_NULL);
    CHECK_RES(ws_conn_subscribe(srv, ic, ""), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_conn_subscribe(srv, ic, toolong), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_conn_subscribe(srv, ic, "bad\xff"), WS_ERR_INVALID_UTF8);
    CHECK_RES(ws_conn_subscribe(srv, ic, "\xc3"), WS_ERR_INVALID_UTF8);
    CHECK_RES(ws_conn_subscribe(srv, 0, "t"), WS_ERR_NO_SUCH_CONN);
    CHECK_RES(ws_conn_subscribe(srv, 1000000, "t"), WS_ERR_NO_SUCH_CONN);
    CHECK_RES(ws_conn_unsubscribe(NULL, ic, "t"), WS_ERR_NULL);
    CHECK_RES(ws_conn_unsubscribe(srv, ic, NULL), WS_ERR_NULL);
    CHECK_RES(ws_conn_unsubscribe(srv, ic, ""), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_conn_unsubscribe(srv, ic, toolong), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_conn_unsubscribe(srv, ic, "bad\xff"), WS_ERR_INVALID_UTF8);
    CHECK_RES(ws_conn_unsubscribe(srv, 1000000, "t"), WS_ERR_NO_SUCH_CONN);
    CHECK_INT(subs(srv, "t"), 0);
    CHECK_INT(subs(srv, toolong), 0);

    q = 777;
    CHECK_RES(ws_server_publish(NULL, "sport", (const uint8_t *)"x", 1, WS_TEXT, 0, &q), WS_ERR_NULL);
    CHECK_RES(ws_server_publish(srv, NULL, (const uint8_t *)"x", 1, WS_TEXT, 0, &q), WS_ERR_NULL);
    CHECK_RES(ws_server_publish(srv, "sport", NULL, 1, WS_TEXT, 0, &q), WS_ERR_NULL);
    CHECK_RES(ws_server_publish(srv, "", (const uint8_t *)"x", 1, WS_TEXT, 0, &q), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_server_publish(srv, toolong, (const uint8_t *)"x", 1, WS_TEXT, 0, &q), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_server_publish(srv, "bad\xff", (const uint8_t *)"x", 1, WS_TEXT, 0, &q), WS_ERR_INVALID_UTF8);
    CHECK_RES(ws_server_publish(srv, "sport", (const uint8_t *)"x", 1, 7, 0, &q), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_server_publish(srv, "sport", (const uint8_t *)"x", 1, 0, 0, &q), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_server_publish(srv, "sport", (const uint8_t *)"\xc3\x28", 2, WS_TEXT, 0, &q), WS_ERR_INVALID_UTF8);
    CHECK_INT(q, 777); /* untouched on errors */
    size_t n = 777;
    CHECK_RES(ws_server_subscribers(NULL, "sport", &n), WS_ERR_NULL);
    CHECK_RES(ws_server_subscribers(srv, NULL, &n), WS_ERR_NULL);
    CHECK_RES(ws_server_subscribers(srv, "sport", NULL), WS_ERR_NULL);
    CHECK_RES(ws_server_subscribers(srv, "bad\xff", &n), WS_ERR_INVALID_UTF8);
    CHECK_INT(n, 777);
    /* None of the refused publishes reached c: the marker comes first. */
    CHECK_RES(ws_server_send(srv, ic, (const uint8_t *)"marker-c2", 9, WS_TEXT), WS_OK);
    expect_text(&c, "marker-c2", "c: nothing from refused publishes");

    polite_close(&c);
    CHECK(ev_wait_closed(ic, scaled(3000)), "c's on_close ran");
    CHECK_INT(subs(srv, "sport"), 0);
    wsc_free(&a);
    wsc_free(&c);
}

/* ---- inside callbacks ---- */

static void test_callbacks(uint16_t port) {
    wsc x, y, plain;
    uint64_t ix = ev_open_client(&x, port, "/auto", 0);
    uint64_t iy = ev_open_client(&y, port, "/auto?q=1", 0);
    uint64_t ip = ev_open_client(&plain, port, "/plain", 0);
    if (!ix || !iy || !ip) return;
    pthread_mutex_lock(&ev_mu);
    int calls = open_sub_calls, res = open_sub_result;
    pthread_mutex_unlock(&ev_mu);
    CHECK_INT(calls, 2);
    CHECK_RES(res, WS_OK);
    CHECK_INT(subs(srv, "auto"), 2);
    size_t q = 999;
    CHECK_RES(pub(srv, "auto", "hello-auto", 0, &q), WS_OK);
    CHECK_INT(q, 2);
    expect_text(&x, "hello-auto", "x (subscribed in on_open)");
    expect_text(&y, "hello-auto", "y (subscribed in on_open)");

    /* x asks on_message to publish to "auto" except itself. */
    wsc_send_text(&plain, "pub:from-plain");
    expect_text(&x, "from-plain", "x (published by on_message)");
    expect_text(&y, "from-plain", "y (published by on_message)");
    pthread_mutex_lock(&ev_mu);
    CHECK_RES(msg_pub_result, WS_OK);
    CHECK_INT(msg_pub_queued, 2);
    pthread_mutex_unlock(&ev_mu);
    wsc_send_text(&x, "pub:from-x");
    expect_text(&y, "from-x", "y (from x, via on_message)");
    CHECK_RES(ws_server_send(srv, ix, (const uint8_t *)"marker-x", 8, WS_TEXT), WS_OK);
    expect_text(&x, "marker-x", "x (except itself): the marker first");
    pthread_mutex_lock(&ev_mu);
    CHECK_INT(msg_pub_queued, 1);
    pthread_mutex_unlock(&ev_mu);

    polite_close(&x);
    CHECK(ev_wait_closed(ix, scaled(3000)), "x's on_close ran");
    CHECK_INT(subs(srv, "auto"), 1);
    polite_close(&y);
    CHECK(ev_wait_closed(iy, scaled(3000)), "y's on_close ran");
    CHECK_INT(subs(srv, "auto"), 0);
    polite_close(&plain);
    CHECK(ev_wait_closed(ip, scaled(3000)), "plain's on_close ran");
    wsc_free(&x);
    wsc_free(&y);
    wsc_free(&plain);
}

/* ---- several publisher threads ---- */

#define NPUB 4
#define NSUB 3

typedef struct publisher {
    ws_server *s;
    const char *topic;
    int idx, count;
    int bad_result, wrong_queued;
    size_t want_queued;
    pthread_t th;
} publisher;

static void *publisher_run(void *arg) {
    publisher *p = arg;
    for (int i = 0; i < p->count; i++) {
        char msg[64];
        int n = snprintf(msg, sizeof msg, "P%d:%d:%s", p->idx, i, (i % 5 == 0) ? "padding-padding-padding" : "");
        size_t q = 999;
        int r = ws_server_publish(p->s, p->topic, (const uint8_t *)msg, (size_t)n, WS_TEXT, 0, &q);
        if (r != WS_OK) p->bad_result++;
        else if (q != p->want_queued) p->wrong_queued++;
    }
    return NULL;
}

typedef struct subreader {
    wsc *c;
    int expect_total;
    int got, bad, out_of_order;
    int next[NPUB];
    pthread_t th;
} subreader;

static void *subreader_run(void *arg) {
    subreader *sr = arg;
    while (sr->got < sr->expect_total) {
        wsc_frame f;
        int r = wsc_recv(sr->c, &f, scaled(10000));
        if (r != WSC_OK) {
            sr->bad++;
            return NULL;
        }
        int p = -1, i = -1;
        if (f.opcode != WSC_TEXT || sscanf((const char *)f.data, "P%d:%d:", &p, &i) != 2 || p < 0 || p >= NPUB) {
            sr->bad++;
        } else {
            if (i != sr->next[p]) sr->out_of_order++;
            sr->next[p] = i + 1;
            sr->got++;
        }
        wsc_frame_free(&f);
    }
    return NULL;
}

/* Subscribers are wsc clients already open and subscribed to `topic`;
 * `poll_srv` (event mode) is polled while the threads run. */
static void run_publishers(ws_server *s, const char *topic, wsc *clients, int nsub, ws_server *poll_srv,
                           const char *label) {
    int per = scaled(1) > 1 ? 100 : 500;
    publisher pubs[NPUB];
    subreader rd[NSUB];
    memset(pubs, 0, sizeof pubs);
    memset(rd, 0, sizeof rd);
    for (int j = 0; j < nsub; j++) {
        rd[j].c = &clients[j];
        rd[j].expect_total = NPUB * per;
        pthread_create(&rd[j].th, NULL, subreader_run, &rd[j]);
    }
    int64_t t0 = now_ms();
    for (int i = 0; i < NPUB; i++) {
        pubs[i] = (publisher){.s = s, .topic = topic, .idx = i, .count = per, .want_queued = (size_t)nsub};
        pthread_create(&pubs[i].th, NULL, publisher_run, &pubs[i]);
    }
    for (int i = 0; i < NPUB; i++) pthread_join(pubs[i].th, NULL);
    if (poll_srv != NULL) {
        /* Keep the event queue moving while the readers finish. */
        int64_t deadline = now_ms() + scaled(10000);
        for (;;) {
            int done = 1;
            for (int j = 0; j < nsub; j++)
                if (__atomic_load_n(&rd[j].got, __ATOMIC_SEQ_CST) + __atomic_load_n(&rd[j].bad, __ATOMIC_SEQ_CST) <
                    rd[j].expect_total)
                    done = 0;
            if (done || now_ms() > deadline) break;
            evq_drain(poll_srv);
            sleep_ms(2);
        }
    }
    for (int j = 0; j < nsub; j++) pthread_join(rd[j].th, NULL);
    int64_t dt = now_ms() - t0;
    for (int i = 0; i < NPUB; i++) {
        CHECK(pubs[i].bad_result == 0, "%s: publisher %d: every publish WS_OK (%d not)", label, i, pubs[i].bad_result);
        CHECK(pubs[i].wrong_queued == 0, "%s: publisher %d: every publish queued for %d (%d not)", label, i, nsub,
              pubs[i].wrong_queued);
    }
    for (int j = 0; j < nsub; j++) {
        CHECK(rd[j].got == NPUB * per && rd[j].bad == 0, "%s: subscriber %d got all %d messages (%d, %d bad)", label,
              j, NPUB * per, rd[j].got, rd[j].bad);
        CHECK(rd[j].out_of_order == 0, "%s: subscriber %d got each publisher's messages in order (%d out of order)",
              label, j, rd[j].out_of_order);
    }
    printf("%s: %d publishers x %d messages to %d subscribers in %lld ms\n", label, NPUB, per, nsub, (long long)dt);
}

static void test_threads(uint16_t port) {
    wsc c[NSUB];
    uint64_t id[NSUB];
    for (int j = 0; j < NSUB; j++) {
        id[j] = ev_open_client(&c[j], port, "/", 0);
        if (!id[j]) return;
        CHECK_RES(ws_conn_subscribe(srv, id[j], "mt"), WS_OK);
    }
    CHECK_INT(subs(srv, "mt"), NSUB);
    run_publishers(srv, "mt", c, NSUB, NULL, "callback mode");
    for (int j = 0; j < NSUB; j++) {
        polite_close(&c[j]);
        CHECK(ev_wait_closed(id[j], scaled(3000)), "subscriber %d closed", j);
        wsc_free(&c[j]);
    }
    CHECK_INT(subs(srv, "mt"), 0);
}

/* ---- event-queue mode ---- */

static void test_event_mode(void) {
    evq_reset();
    uint16_t port;
    ws_server *s = evq_server(1, &port);
    wsc c[NSUB], other;
    uint64_t id[NSUB] = {0}, io = 0;
    for (int j = 0; j <= NSUB; j++) {
        wsc *cl = j < NSUB ? &c[j] : &other;
        int st = wsc_open(cl, "127.0.0.1", port, "/ev", NULL, 0, scaled(5000));
        CHECK_INT(st, 101);
        ws_event *ev = evq_wait(s, WS_EVENT_OPEN, 0, scaled(5000));
        if (!CHECK(ev != NULL, "WS_EVENT_OPEN %d", j)) return;
        if (j < NSUB) {
            id[j] = ev->conn;
            CHECK_RES(ws_conn_subscribe(s, ev->conn, "evt"), WS_OK);
        } else {
            io = ev->conn;
        }
        ws_event_free(ev);
    }
    CHECK_INT(subs(s, "evt"), NSUB);
    size_t q = 999;
    CHECK_RES(pub(s, "evt", "e1", id[0], &q), WS_OK);
    CHECK_INT(q, NSUB - 1);
    CHECK_RES(ws_server_send(s, id[0], (const uint8_t *)"marker0", 7, WS_TEXT), WS_OK);
    CHECK_RES(ws_server_send(s, io, (const uint8_t *)"marker-o", 8, WS_TEXT), WS_OK);
    evq_drain(s);
    for (int j = 1; j < NSUB; j++) expect_text(&c[j], "e1", "event-mode subscriber");
    expect_text(&c[0], "marker0", "event-mode except: marker first");
    expect_text(&other, "marker-o", "event-mode non-subscriber: marker first");

    /* A message event answered with a publish from the poller. */
    wsc_send_text(&other, "relay-me");
    ws_event *ev = evq_wait(s, WS_EVENT_MESSAGE, io, scaled(5000));
    if (CHECK(ev != NULL, "message event")) {
        q = 999;
        CHECK_RES(ws_server_publish(s, "evt", ev->data, ev->len, WS_TEXT, 0, &q), WS_OK);
        CHECK_INT(q, NSUB);
        ws_event_free(ev);
    }
    evq_drain(s);
    for (int j = 0; j < NSUB; j++) expect_text(&c[j], "relay-me", "event-mode subscriber (relay)");

    run_publishers(s, "evt", c, NSUB, s, "event mode");

    /* Close one subscriber: after its WS_EVENT_CLOSE the count drops. */
    wsc_send_close(&c[0], 1000, NULL);
    ev = evq_wait(s, WS_EVENT_CLOSE, id[0], scaled(5000));
    if (CHECK(ev != NULL, "WS_EVENT_CLOSE for subscriber 0")) ws_event_free(ev);
    CHECK_INT(subs(s, "evt"), NSUB - 1);
    CHECK_RES(ws_conn_subscribe(s, id[0], "evt"), WS_ERR_CLOSED);
    CHECK_RES(ws_conn_unsubscribe(s, id[1], "evt"), WS_OK);
    CHECK_INT(subs(s, "evt"), NSUB - 2);
    CHECK_RES(ws_conn_subscribe(s, 999999, "evt"), WS_ERR_NO_SUCH_CONN);

    CHECK_RES(ws_server_close(s, (uint32_t)scaled(2000)), WS_OK);
    evq_drain(s);
    evq_check_invariants("event mode");
    CHECK_INT(subs(s, "evt"), 0);
    ws_server_free(s);
    for (int j = 0; j < NSUB; j++) wsc_free(&c[j]);
    wsc_free(&other);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    events_reset();
    ws_callbacks cb = ev_callbacks(on_open, on_message);
    srv = ws_server_new(&cb, NULL);
    /* Before listen: no connection exists yet. */
    CHECK_RES(ws_conn_subscribe(srv, 1, "t"), WS_ERR_NO_SUCH_CONN);
    size_t q = 5;
    CHECK_RES(pub(srv, "t", "x", 0, &q), WS_OK);
    CHECK_INT(q, 0);
    CHECK_INT(subs(srv, "t"), 0);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_CLOSE_TIMEOUT_MS, (uint64_t)scaled(3000)), WS_OK);
    CHECK_RES(ws_server_listen(srv, "127.0.0.1", 0), WS_OK);
    uint16_t port = 0;
    CHECK_RES(ws_server_port(srv, &port), WS_OK);

    test_basics(port);
    test_callbacks(port);
    test_threads(port);
    ev_stop_server(srv, (uint32_t)scaled(2000), "topics");
    test_event_mode();
    return check_summary("test_topics");
}
