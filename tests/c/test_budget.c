/*
 * test_budget: the server-wide memory budget (WS_OPT_MEMORY_BUDGET) and
 * ws_stats.memory_held through the public C ABI, with raw clients.
 *
 * - Without a budget nothing is counted (memory_held stays 0).
 * - With a 4 MiB budget, 8 clients each start a 1 MiB message (header and
 *   1 KiB): the server holds at least 7/8 of the budget and at most the
 *   budget plus one message, and a new handshake is refused with 503.
 * - Each client then sends the rest from its own thread and reads its echo:
 *   every one gets its 1 MiB back (service resumes as messages finish), and
 *   once they have all left memory_held is back to 0.
 * - The option's range: 0 (none) is accepted.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "client.h"

#define MIB (1u << 20)
#define CLIENTS 8
#define BUDGET (4 * MIB)

static ws_server *srv;
static unsigned char payload[MIB];

static void on_message(void *ud, uint64_t conn, const uint8_t *data, size_t len, ws_kind kind) {
    (void)ud;
    ws_server_send(srv, conn, data, len, kind);
}

static uint64_t held(void) {
    ws_stats st;
    return ws_server_stats(srv, &st) == WS_OK ? st.memory_held : UINT64_MAX;
}

static uint16_t start(uint64_t budget) {
    ws_callbacks cb = {0};
    cb.on_message = on_message;
    srv = ws_server_new(&cb, NULL);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_LOG_LEVEL, WS_LOG_ERROR), WS_OK);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_MEMORY_BUDGET, budget), WS_OK);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_SEND_QUEUE_HARD_LIMIT, 2 * MIB), WS_OK);
    CHECK_RES(ws_server_listen(srv, "127.0.0.1", 0), WS_OK);
    uint16_t port = 0;
    ws_server_port(srv, &port);
    return port;
}

/* The header of a masked binary frame of `len` bytes with a zero mask. */
static size_t header(unsigned char *h, uint64_t len) {
    h[0] = 0x82;
    h[1] = 0x80 | 127;
    for (int i = 0; i < 8; i++) h[2 + i] = (unsigned char)(len >> (56 - 8 * i));
    memset(h + 10, 0, 4);
    return 14;
}

struct finisher {
    wsc *c;
    int ok;
};

/* Sends the rest of the client's message and reads the echo. */
static void *finish(void *arg) {
    struct finisher *f = arg;
    wsc_frame fr;
    f->ok = wsc_send_raw(f->c, payload + 1024, MIB - 1024) == 0 && wsc_recv(f->c, &fr, scaled(30000)) == WSC_OK &&
            fr.opcode == WSC_BINARY && fr.len == MIB && memcmp(fr.data, payload, MIB) == 0;
    if (f->ok) wsc_frame_free(&fr);
    return NULL;
}

static void test_no_budget(void) {
    uint16_t port = start(0);
    wsc c;
    CHECK_INT(wsc_open(&c, "127.0.0.1", port, "/", NULL, 0, scaled(5000)), 101);
    wsc_send_text(&c, "hello");
    wsc_frame f;
    if (CHECK_INT(wsc_recv(&c, &f, scaled(5000)), WSC_OK)) wsc_frame_free(&f);
    CHECK_INT(held(), 0);
    wsc_free(&c);
    ws_server_free(srv);
}

static void test_budget_holds_and_service_resumes(void) {
    for (size_t i = 0; i < sizeof payload; i++) payload[i] = (unsigned char)(i * 31);
    uint16_t port = start(BUDGET);
    wsc clients[CLIENTS];
    unsigned char start_of[14 + 1024];
    size_t hl = header(start_of, MIB);
    memcpy(start_of + hl, payload, 1024);
    /* All open before any message starts: once the budget is spent, a
     * handshake is refused. */
    for (int i = 0; i < CLIENTS; i++)
        CHECK_INT(wsc_open(&clients[i], "127.0.0.1", port, "/", NULL, 0, scaled(5000)), 101);
    for (int i = 0; i < CLIENTS; i++) CHECK_INT(wsc_send_raw(&clients[i], start_of, hl + 1024), 0);
    int64_t until = now_ms() + scaled(5000);
    uint64_t peak = 0;
    while (now_ms() < until && peak < BUDGET - BUDGET / 8) {
        uint64_t h = held();
        if (h > peak) peak = h;
        sleep_ms(10);
    }
    sleep_ms(100);
    if (held() > peak) peak = held();
    CHECK(peak >= BUDGET - BUDGET / 8 && peak <= BUDGET + MIB + 64, "held %llu bytes of a %u byte budget",
          (unsigned long long)peak, BUDGET);
    wsc late;
    CHECK_INT(wsc_open(&late, "127.0.0.1", port, "/", NULL, 0, scaled(5000)), 503);
    wsc_free(&late);

    pthread_t threads[CLIENTS];
    struct finisher f[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        f[i] = (struct finisher){&clients[i], 0};
        pthread_create(&threads[i], NULL, finish, &f[i]);
    }
    int echoed = 0;
    for (int i = 0; i < CLIENTS; i++) {
        pthread_join(threads[i], NULL);
        echoed += f[i].ok;
        wsc_free(&clients[i]);
    }
    CHECK_INT(echoed, CLIENTS);
    until = now_ms() + scaled(10000);
    while (now_ms() < until && held() != 0) sleep_ms(10);
    CHECK_INT(held(), 0);
    ws_server_free(srv);
}

int main(void) {
    test_no_budget();
    test_budget_holds_and_service_resumes();
    return check_summary("test_budget");
}
