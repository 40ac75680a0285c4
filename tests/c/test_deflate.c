/*
 * test_deflate: permessage-deflate (RFC 7692) through the public C ABI,
 * with the raw test client over loopback. The client compresses with
 * stored deflate blocks (no zlib needed here) and reads the RSV1 bit and
 * the size of what comes back.
 *
 * - Off by default: an offer gets no Sec-WebSocket-Extensions answer, and
 *   a frame with RSV1 is a protocol error (1002).
 * - WS_OPT_DEFLATE=1: the answer, no context kept by default; a bad offer
 *   (server_max_window_bits=8) is declined for the next acceptable one,
 *   and a client with no offer gets plain frames.
 * - Compressed messages in (stored blocks, one frame and fragmented) are
 *   inflated and delivered; long echoes go out compressed (RSV1, smaller),
 *   short ones (under WS_OPT_DEFLATE_MIN_SIZE) and WS_SEND_NO_COMPRESS
 *   sends plain; ws_server_send_ex refuses unknown flags.
 * - Broadcast: compressed for the deflate client, plain for the other.
 * - A compressed message that inflates past WS_OPT_MAX_MESSAGE_SIZE: 1009.
 * - WS_OPT_DEFLATE_CONTEXT=1: the answer keeps contexts, and the second
 *   copy of a message is much smaller than the first (the window is kept).
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "client.h"

static ws_server *srv;

/* Echo; "raw:..." is echoed with WS_SEND_NO_COMPRESS, "bcast:..." is
 * broadcast to every client. */
static void on_message(void *ud, uint64_t conn, const uint8_t *data, size_t len, ws_kind kind) {
    (void)ud;
    if (len > 6 && memcmp(data, "bcast:", 6) == 0) {
        ws_server_broadcast(srv, data, len, kind, 0, NULL);
    } else if (len > 4 && memcmp(data, "raw:", 4) == 0) {
        ws_server_send_ex(srv, conn, data, len, kind, WS_SEND_NO_COMPRESS);
    } else {
        ws_server_send(srv, conn, data, len, kind);
    }
}

static uint16_t start(int deflate, int context, size_t max_message) {
    ws_callbacks cb = {0};
    cb.on_message = on_message;
    srv = ws_server_new(&cb, NULL);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_LOG_LEVEL, WS_LOG_ERROR), WS_OK);
    if (deflate) CHECK_RES(ws_server_set_option(srv, WS_OPT_DEFLATE, 1), WS_OK);
    if (context) CHECK_RES(ws_server_set_option(srv, WS_OPT_DEFLATE_CONTEXT, 1), WS_OK);
    if (max_message) CHECK_RES(ws_server_set_option(srv, WS_OPT_MAX_MESSAGE_SIZE, max_message), WS_OK);
    CHECK_RES(ws_server_listen(srv, "127.0.0.1", 0), WS_OK);
    uint16_t port = 0;
    ws_server_port(srv, &port);
    return port;
}

static void stop(void) {
    ws_server_free(srv);
    srv = NULL;
}

/* Opens a client with this extension offer (NULL: none); returns the
 * answer's Sec-WebSocket-Extensions in `answer` ("" when absent). */
static int open_with(wsc *c, uint16_t port, const char *offer, char *answer, size_t cap) {
    char headers[512] = "";
    if (offer) snprintf(headers, sizeof headers, "Sec-WebSocket-Extensions: %s\r\n", offer);
    int st = wsc_open(c, "127.0.0.1", port, "/", offer ? headers : NULL, 0, scaled(5000));
    answer[0] = '\0';
    if (wsc_answer_header(c, "Sec-WebSocket-Extensions", answer, cap) == NULL) answer[0] = '\0';
    c->rsv1_ok = answer[0] != '\0';
    return st;
}

/* `data` as the payload of a compressed message: one stored deflate block
 * (BFINAL 0), then the sync flush's empty stored block with its last four
 * bytes (00 00 FF FF) stripped, as RFC 7692 has them: the 0x00 of its
 * header is all that is left of it. */
static size_t stored(const void *data, size_t len, unsigned char *out) {
    out[0] = 0x00;
    out[1] = (unsigned char)len;
    out[2] = (unsigned char)(len >> 8);
    out[3] = (unsigned char)~len;
    out[4] = (unsigned char)(~len >> 8);
    memcpy(out + 5, data, len);
    out[len + 5] = 0x00;
    return len + 6;
}

static int send_compressed(wsc *c, int opcode, const void *data, size_t len) {
    unsigned char buf[70000];
    size_t n = stored(data, len, buf);
    return wsc_send_frame(c, 0x40 | opcode, 1, buf, n);
}

/* Reads one message: its RSV1 bit and wire length; the payload in `f`. */
static int recv_message(wsc *c, wsc_frame *f) {
    int r = wsc_recv(c, f, scaled(5000));
    if (r != WSC_OK) fprintf(stderr, "recv: %d (%s)\n", r, c->why);
    return r;
}

static void test_off_by_default(void) {
    uint16_t port = start(0, 0, 0);
    wsc c;
    char answer[256];
    CHECK_INT(open_with(&c, port, "permessage-deflate", answer, sizeof answer), 101);
    CHECK_STR(answer, "");
    unsigned char buf[64];
    wsc_send_frame(&c, 0x40 | WSC_TEXT, 1, buf, stored("hi", 2, buf));
    char reason[128];
    CHECK_INT(wsc_recv_close(&c, scaled(5000), NULL, reason, sizeof reason), 1002);
    wsc_free(&c);
    stop();
}

static void test_negotiation_and_echo(void) {
    uint16_t port = start(1, 0, 0);
    wsc c, plain;
    char answer[256];
    CHECK_INT(open_with(&c, port, "permessage-deflate; server_max_window_bits=8, permessage-deflate; client_max_window_bits",
                        answer, sizeof answer), 101);
    CHECK_STR(answer, "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
    CHECK_INT(open_with(&plain, port, NULL, answer, sizeof answer), 101);
    CHECK_STR(answer, "");

    wsc_frame f;
    /* Short: inflated, echoed plain (under the minimum size). */
    CHECK_INT(send_compressed(&c, WSC_TEXT, "hello stored", 12), 0);
    if (CHECK_INT(recv_message(&c, &f), WSC_OK)) {
        CHECK(f.rsv1 == 0 && f.len == 12 && memcmp(f.data, "hello stored", 12) == 0, "short echo plain: rsv1 %d len %zu",
              f.rsv1, f.len);
        wsc_frame_free(&f);
    }
    /* Long and repetitive: echoed compressed, much smaller on the wire. */
    char text[2000];
    memset(text, 'a', sizeof text);
    CHECK_INT(send_compressed(&c, WSC_TEXT, text, sizeof text), 0);
    if (CHECK_INT(recv_message(&c, &f), WSC_OK)) {
        CHECK(f.rsv1 == 1 && f.len < 100, "long echo compressed: rsv1 %d, %zu bytes for 2000", f.rsv1, f.len);
        wsc_frame_free(&f);
    }
    /* A fragmented compressed message: RSV1 on the first frame only. */
    unsigned char z[4000];
    size_t n = stored(text, 1500, z);
    wsc_send_frame(&c, 0x40 | WSC_BINARY, 0, z, 700);
    wsc_send_frame(&c, WSC_CONT, 1, z + 700, n - 700);
    if (CHECK_INT(recv_message(&c, &f), WSC_OK)) {
        CHECK(f.opcode == WSC_BINARY && f.rsv1 == 1 && f.len < 100, "fragmented in, compressed out (%zu bytes)", f.len);
        wsc_frame_free(&f);
    }
    /* WS_SEND_NO_COMPRESS: plain, whole. */
    memcpy(text, "raw:", 4);
    CHECK_INT(send_compressed(&c, WSC_TEXT, text, 1000), 0);
    if (CHECK_INT(recv_message(&c, &f), WSC_OK)) {
        CHECK(f.rsv1 == 0 && f.len == 1000 && memcmp(f.data, "raw:aaa", 7) == 0, "no-compress echo: rsv1 %d len %zu",
              f.rsv1, f.len);
        wsc_frame_free(&f);
    }
    /* Broadcast: compressed for the deflate client, plain for the other. */
    memcpy(text, "bcast:", 6);
    CHECK_INT(wsc_send_frame(&plain, WSC_TEXT, 1, text, 1200), 0);
    if (CHECK_INT(recv_message(&c, &f), WSC_OK)) {
        CHECK(f.rsv1 == 1 && f.len < 100, "broadcast to the deflate client compressed (%zu bytes)", f.len);
        wsc_frame_free(&f);
    }
    if (CHECK_INT(recv_message(&plain, &f), WSC_OK)) {
        CHECK(f.rsv1 == 0 && f.len == 1200, "broadcast to the other plain (%zu bytes)", f.len);
        wsc_frame_free(&f);
    }
    /* Flags: unknown ones are refused. */
    CHECK_RES(ws_server_send_ex(srv, 1, (const uint8_t *)"x", 1, WS_TEXT, 2), WS_ERR_INVALID_ARGUMENT);
    wsc_send_close(&c, 1000, "");
    wsc_send_close(&plain, 1000, "");
    wsc_free(&c);
    wsc_free(&plain);
    stop();
}

static void test_inflated_size_limit(void) {
    uint16_t port = start(1, 0, 1000);
    wsc c;
    char answer[256], reason[128];
    CHECK_INT(open_with(&c, port, "permessage-deflate", answer, sizeof answer), 101);
    char text[1500];
    memset(text, 'z', sizeof text);
    send_compressed(&c, WSC_TEXT, text, sizeof text);
    CHECK_INT(wsc_recv_close(&c, scaled(5000), NULL, reason, sizeof reason), 1009);
    wsc_free(&c);
    stop();
}

/* WS_OPT_DEFLATE_MIN_SIZE 0 compresses even short messages; the level's
 * range is 1..9. */
static void test_level_and_min_size(void) {
    ws_server *probe = ws_server_new(NULL, NULL);
    CHECK_RES(ws_server_set_option(probe, WS_OPT_DEFLATE_LEVEL, 0), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_server_set_option(probe, WS_OPT_DEFLATE_LEVEL, 10), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_server_set_option(probe, WS_OPT_DEFLATE_CONTEXT, 2), WS_ERR_INVALID_ARGUMENT);
    ws_server_free(probe);
    ws_callbacks cb = {0};
    cb.on_message = on_message;
    srv = ws_server_new(&cb, NULL);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_DEFLATE, 1), WS_OK);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_DEFLATE_LEVEL, 9), WS_OK);
    CHECK_RES(ws_server_set_option(srv, WS_OPT_DEFLATE_MIN_SIZE, 0), WS_OK);
    CHECK_RES(ws_server_listen(srv, "127.0.0.1", 0), WS_OK);
    uint16_t port = 0;
    ws_server_port(srv, &port);
    wsc c;
    char answer[256];
    CHECK_INT(open_with(&c, port, "permessage-deflate", answer, sizeof answer), 101);
    send_compressed(&c, WSC_TEXT, "hello stored", 12);
    wsc_frame f;
    if (CHECK_INT(recv_message(&c, &f), WSC_OK)) {
        CHECK(f.rsv1 == 1, "with no minimum a 12-byte message goes out compressed (rsv1 %d)", f.rsv1);
        wsc_frame_free(&f);
    }
    wsc_send_close(&c, 1000, "");
    wsc_free(&c);
    stop();
}

static void test_context_takeover(void) {
    uint16_t port = start(1, 1, 0);
    wsc c;
    char answer[256];
    CHECK_INT(open_with(&c, port, "permessage-deflate", answer, sizeof answer), 101);
    CHECK_STR(answer, "permessage-deflate");
    /* Text with little redundancy of its own: the second copy is small only
     * if the server kept the first in its window. */
    char text[1000];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof text; i++) {
        x = x * 1103515245u + 12345u;
        text[i] = (char)('a' + (x >> 16) % 26);
    }
    size_t sizes[2] = {0, 0};
    for (int i = 0; i < 2; i++) {
        send_compressed(&c, WSC_TEXT, text, sizeof text);
        wsc_frame f;
        if (CHECK_INT(recv_message(&c, &f), WSC_OK)) {
            sizes[i] = f.len;
            CHECK(f.rsv1 == 1, "copy %d compressed (rsv1 %d, %zu bytes)", i, f.rsv1, f.len);
            wsc_frame_free(&f);
        }
    }
    CHECK(sizes[1] * 5 < sizes[0], "context kept: first copy %zu bytes, second %zu", sizes[0], sizes[1]);
    wsc_send_close(&c, 1000, "");
    wsc_free(&c);
    stop();
}

int main(void) {
    test_off_by_default();
    test_negotiation_and_echo();
    test_inflated_size_limit();
    test_level_and_min_size();
    test_context_takeover();
    return check_summary("test_deflate");
}
