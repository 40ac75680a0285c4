/*
 * A minimal WebSocket client over a raw TCP socket, for the C tests: the
 * opening handshake (with Sec-WebSocket-Accept checked), masked frames out,
 * unmasked frames in (checked: no mask, no RSV bits, sane control frames),
 * and the close handshake. Every read is bounded by a timeout.
 */
#ifndef WSTEST_CLIENT_H
#define WSTEST_CLIENT_H

#include <stddef.h>
#include <stdint.h>

enum {
    WSC_CONT = 0x0,
    WSC_TEXT = 0x1,
    WSC_BINARY = 0x2,
    WSC_CLOSE = 0x8,
    WSC_PING = 0x9,
    WSC_PONG = 0xA,
};

/* Results of the read functions. */
enum {
    WSC_OK = 1,
    WSC_TIMEOUT = 0,
    WSC_EOF = -1,       /* the server closed the TCP connection */
    WSC_ERROR = -2,     /* a socket error */
    WSC_BAD_FRAME = -3, /* the server sent something RFC 6455 forbids */
};

typedef struct wsc {
    int fd;
    unsigned char *buf; /* bytes received and not yet consumed */
    size_t len, cap;
    int status;        /* HTTP status of the handshake answer */
    char head[8192];   /* the answer's head, NUL-terminated */
    char why[256];     /* what went wrong, for messages */
    uint16_t local_port;
    int rsv1_ok;       /* permessage-deflate was negotiated: RSV1 may be set */
} wsc;

typedef struct wsc_frame {
    int opcode;
    int fin;
    int rsv1;            /* RSV1 (compressed) on the message's first frame */
    unsigned char *data; /* malloc'd, NUL-terminated for convenience */
    size_t len;
} wsc_frame;

/* Opens a TCP connection (host: IPv4/IPv6 literal). Optional rcvbuf (> 0)
 * is set before connecting. Returns the fd or -1. */
int wsc_tcp_connect(const char *host, uint16_t port, int rcvbuf);

/* Connects and runs the opening handshake for `target` ("/path?query"),
 * adding `extra_headers` (each line ending in "\r\n", or NULL). Returns the
 * HTTP status (101 on success, with the accept key checked), or -1. On a
 * non-101 answer the connection is left open for reading the body. */
int wsc_open(wsc *c, const char *host, uint16_t port, const char *target, const char *extra_headers,
             int rcvbuf, int timeout_ms);

/* The opening handshake (as wsc_open) on a connection already open, e.g.
 * after plain HTTP requests on it; bytes already buffered in c->buf are
 * read first. */
int wsc_handshake(wsc *c, const char *host, uint16_t port, const char *target, const char *extra_headers,
                  int timeout_ms);

/* Wraps an fd that already has a handshake done (or not): for raw tests. */
void wsc_init(wsc *c, int fd);

/* The value of header `name` in the handshake answer, copied to out. */
const char *wsc_answer_header(const wsc *c, const char *name, char *out, size_t cap);

int wsc_send_raw(wsc *c, const void *data, size_t len);
/* Sends one masked frame; `opcode` may carry RSV bits (0x40 | WSC_TEXT: a
 * compressed message's first frame). Returns 0 or -1. */
int wsc_send_frame(wsc *c, int opcode, int fin, const void *data, size_t len);
int wsc_send_text(wsc *c, const char *text);
int wsc_send_close(wsc *c, int code, const char *reason); /* code < 0: empty payload */

/* Reads one frame. Returns WSC_OK, WSC_TIMEOUT, WSC_EOF, WSC_ERROR or
 * WSC_BAD_FRAME. */
int wsc_read_frame(wsc *c, wsc_frame *f, int timeout_ms);

/* Reads one whole message (reassembling fragments, answering pings, skipping
 * pongs) or a close frame (opcode WSC_CLOSE). Same results. */
int wsc_recv(wsc *c, wsc_frame *f, int timeout_ms);

/* Reads until `want` more bytes of raw input are buffered in c->buf (e.g. an
 * HTTP answer's body). WSC_OK, WSC_TIMEOUT, WSC_EOF or WSC_ERROR. */
int wsc_read_some(wsc *c, size_t want, int timeout_ms);

/* For a close frame: its code (1005 if none) and reason copied to out. */
int wsc_close_code(const wsc_frame *f, char *reason, size_t cap);

/* Reads messages (each within timeout_ms) until a close frame; returns its
 * code (1005 if none) with the reason copied to `reason` (may be NULL), or
 * -1 (c->why says why). `messages` (may be NULL) counts the data messages
 * read before the close. Gives up after 1000 messages. */
int wsc_recv_close(wsc *c, int timeout_ms, int *messages, char *reason, size_t cap);

/* Waits for the peer to close the TCP connection (EOF), discarding input.
 * Returns 1 on EOF, 0 on timeout. */
int wsc_wait_eof(wsc *c, int timeout_ms);

void wsc_frame_free(wsc_frame *f);
void wsc_free(wsc *c); /* closes the socket and frees the buffer */

#endif
