#define _GNU_SOURCE
#include "client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- SHA-1 (RFC 3174) and base64 ---- */

static uint32_t rol(uint32_t v, int n) { return (v << n) | (v >> (32 - n)); }

static void sha1(const void *data, size_t len, unsigned char out[20]) {
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    const unsigned char *p = data;
    size_t total = len + 9;
    size_t padded = (total + 63) / 64 * 64;
    unsigned char *m = calloc(padded, 1);
    if (m == NULL) abort();
    memcpy(m, p, len);
    m[len] = 0x80;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++) m[padded - 1 - i] = (unsigned char)(bits >> (8 * i));
    for (size_t off = 0; off < padded; off += 64) {
        uint32_t w[80];
        for (int i = 0; i < 16; i++)
            w[i] = (uint32_t)m[off + 4 * i] << 24 | (uint32_t)m[off + 4 * i + 1] << 16 |
                   (uint32_t)m[off + 4 * i + 2] << 8 | m[off + 4 * i + 3];
        for (int i = 16; i < 80; i++) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
        uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
        for (int i = 0; i < 80; i++) {
            uint32_t f, k;
            if (i < 20) {
                f = (b & c) | (~b & d);
                k = 0x5A827999;
            } else if (i < 40) {
                f = b ^ c ^ d;
                k = 0x6ED9EBA1;
            } else if (i < 60) {
                f = (b & c) | (b & d) | (c & d);
                k = 0x8F1BBCDC;
            } else {
                f = b ^ c ^ d;
                k = 0xCA62C1D6;
            }
            uint32_t t = rol(a, 5) + f + e + k + w[i];
            e = d;
            d = c;
            c = rol(b, 30);
            b = a;
            a = t;
        }
        h[0] += a;
        h[1] += b;
        h[2] += c;
        h[3] += d;
        h[4] += e;
    }
    free(m);
    for (int i = 0; i < 5; i++) {
        out[4 * i] = (unsigned char)(h[i] >> 24);
        out[4 * i + 1] = (unsigned char)(h[i] >> 16);
        out[4 * i + 2] = (unsigned char)(h[i] >> 8);
        out[4 * i + 3] = (unsigned char)h[i];
    }
}

static void base64(const unsigned char *in, size_t len, char *out) {
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len) v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len) v |= in[i + 2];
        out[o++] = t[(v >> 18) & 63];
        out[o++] = t[(v >> 12) & 63];
        out[o++] = i + 1 < len ? t[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? t[v & 63] : '=';
    }
    out[o] = '\0';
}

/* ---- sockets ---- */

int wsc_tcp_connect(const char *host, uint16_t port, int rcvbuf) {
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        sl = sizeof *s4;
    } else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        sl = sizeof *s6;
    } else {
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    if (connect(fd, (struct sockaddr *)&ss, sl) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

void wsc_init(wsc *c, int fd) {
    memset(c, 0, sizeof *c);
    c->fd = fd;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (fd >= 0 && getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) c->local_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        if (ss.ss_family == AF_INET6) c->local_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
}

int wsc_send_raw(wsc *c, const void *data, size_t len) {
    const unsigned char *p = data;
    int64_t deadline = mono_ms() + 20000;
    while (len > 0) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int left = (int)(deadline - mono_ms());
            if (left <= 0) {
                snprintf(c->why, sizeof c->why, "send timed out");
                return -1;
            }
            struct pollfd pfd = {c->fd, POLLOUT, 0};
            poll(&pfd, 1, left);
            continue;
        }
        snprintf(c->why, sizeof c->why, "send: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* Makes sure `want` bytes are buffered. WSC_OK, WSC_TIMEOUT, WSC_EOF or WSC_ERROR. */
static int fill(wsc *c, size_t want, int64_t deadline) {
    while (c->len < want) {
        if (c->cap < want || c->cap - c->len < 4096) {
            size_t ncap = c->cap ? c->cap : 65536;
            while (ncap < want || ncap - c->len < 4096) ncap *= 2;
            unsigned char *nb = realloc(c->buf, ncap);
            if (nb == NULL) abort();
            c->buf = nb;
            c->cap = ncap;
        }
        int left = (int)(deadline - mono_ms());
        if (left < 0) left = 0;
        struct pollfd pfd = {c->fd, POLLIN, 0};
        int r = poll(&pfd, 1, left);
        if (r < 0 && errno == EINTR) continue;
        if (r == 0) return WSC_TIMEOUT;
        if (r < 0) return WSC_ERROR;
        ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, MSG_DONTWAIT);
        if (n == 0) return WSC_EOF;
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
            snprintf(c->why, sizeof c->why, "recv: %s", strerror(errno));
            return errno == ECONNRESET ? WSC_EOF : WSC_ERROR;
        }
        c->len += (size_t)n;
    }
    return WSC_OK;
}

static void consume(wsc *c, size_t n) {
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

int wsc_read_some(wsc *c, size_t want, int timeout_ms) {
    return fill(c, c->len + want, mono_ms() + timeout_ms);
}

static const char GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

const char *wsc_answer_header(const wsc *c, const char *name, char *out, size_t cap) {
    size_t nl = strlen(name);
    const char *line = strstr(c->head, "\r\n");
    while (line != NULL && line[2] != '\0' && line[2] != '\r') {
        line += 2;
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ' || *v == '\t') v++;
            const char *end = strstr(v, "\r\n");
            size_t vl = end ? (size_t)(end - v) : strlen(v);
            while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t')) vl--;
            if (vl >= cap) vl = cap - 1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return out;
        }
        line = strstr(line, "\r\n");
    }
    return NULL;
}

int wsc_open(wsc *c, const char *host, uint16_t port, const char *target, const char *extra_headers,
             int rcvbuf, int timeout_ms) {
    int fd = wsc_tcp_connect(host, port, rcvbuf);
    wsc_init(c, fd);
    if (fd < 0) {
        snprintf(c->why, sizeof c->why, "connect to %s:%u failed: %s", host, (unsigned)port, strerror(errno));
        return -1;
    }
    return wsc_handshake(c, host, port, target, extra_headers, timeout_ms);
}

int wsc_handshake(wsc *c, const char *host, uint16_t port, const char *target, const char *extra_headers,
                  int timeout_ms) {
    unsigned char nonce[16];
    static unsigned counter;
    unsigned seed = (unsigned)mono_ms() ^ (unsigned)getpid() ^ (__atomic_add_fetch(&counter, 1, __ATOMIC_SEQ_CST) * 2654435761u);
    for (int i = 0; i < 16; i++) nonce[i] = (unsigned char)(rand_r(&seed) >> 3);
    char key[32];
    base64(nonce, 16, key);
    char hosthdr[128];
    if (strchr(host, ':'))
        snprintf(hosthdr, sizeof hosthdr, "[%s]:%u", host, (unsigned)port);
    else
        snprintf(hosthdr, sizeof hosthdr, "%s:%u", host, (unsigned)port);
    char req[8192];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n",
                     target, hosthdr, key, extra_headers ? extra_headers : "");
    if (n <= 0 || (size_t)n >= sizeof req || wsc_send_raw(c, req, (size_t)n) != 0) return -1;
    int64_t deadline = mono_ms() + timeout_ms;
    char *end = NULL;
    for (;;) {
        if (c->len > 0) {
            end = memmem(c->buf, c->len, "\r\n\r\n", 4);
            if (end) break;
        }
        if (c->len >= sizeof c->head - 1) {
            snprintf(c->why, sizeof c->why, "answer head too long");
            return -1;
        }
        int r = fill(c, c->len + 1, deadline);
        if (r != WSC_OK) {
            snprintf(c->why, sizeof c->why, "no handshake answer (%s)", r == WSC_TIMEOUT ? "timeout" : "closed");
            return -1;
        }
    }
    size_t head_len = (size_t)(end - (char *)c->buf) + 4;
    if (head_len >= sizeof c->head) return -1;
    memcpy(c->head, c->buf, head_len);
    c->head[head_len] = '\0';
    consume(c, head_len);
    int status = 0;
    if (sscanf(c->head, "HTTP/1.1 %d", &status) != 1) {
        snprintf(c->why, sizeof c->why, "bad status line");
        return -1;
    }
    c->status = status;
    if (status != 101) return status;
    char concat[128], accept[64], got[128];
    snprintf(concat, sizeof concat, "%s%s", key, GUID);
    unsigned char digest[20];
    sha1(concat, strlen(concat), digest);
    base64(digest, 20, accept);
    if (!wsc_answer_header(c, "Sec-WebSocket-Accept", got, sizeof got) || strcmp(got, accept) != 0) {
        snprintf(c->why, sizeof c->why, "bad Sec-WebSocket-Accept");
        return -1;
    }
    if (!wsc_answer_header(c, "Upgrade", got, sizeof got) || strcasecmp(got, "websocket") != 0) {
        snprintf(c->why, sizeof c->why, "bad Upgrade header");
        return -1;
    }
    return 101;
}

int wsc_send_frame(wsc *c, int opcode, int fin, const void *data, size_t len) {
    size_t hl = 2 + 4 + (len > 65535 ? 8 : len > 125 ? 2 : 0);
    unsigned char *f = malloc(hl + len + 1);
    if (f == NULL) abort();
    size_t i = 0;
    f[i++] = (unsigned char)((fin ? 0x80 : 0) | (opcode & 0x7F));
    if (len > 65535) {
        f[i++] = 0x80 | 127;
        for (int s = 7; s >= 0; s--) f[i++] = (unsigned char)((uint64_t)len >> (8 * s));
    } else if (len > 125) {
        f[i++] = 0x80 | 126;
        f[i++] = (unsigned char)(len >> 8);
        f[i++] = (unsigned char)len;
    } else {
        f[i++] = (unsigned char)(0x80 | len);
    }
    static unsigned counter;
    uint32_t m = 0x9E3779B9u * (__atomic_add_fetch(&counter, 1, __ATOMIC_SEQ_CST) + 7u);
    unsigned char mask[4] = {(unsigned char)(m >> 24), (unsigned char)(m >> 16), (unsigned char)(m >> 8),
                             (unsigned char)(m | 1)};
    memcpy(f + i, mask, 4);
    i += 4;
    const unsigned char *p = data;
    for (size_t k = 0; k < len; k++) f[i + k] = p[k] ^ mask[k & 3];
    int r = wsc_send_raw(c, f, i + len);
    free(f);
    return r;
}

int wsc_send_text(wsc *c, const char *text) { return wsc_send_frame(c, WSC_TEXT, 1, text, strlen(text)); }

int wsc_send_close(wsc *c, int code, const char *reason) {
    unsigned char p[128];
    size_t n = 0;
    if (code >= 0) {
        p[0] = (unsigned char)(code >> 8);
        p[1] = (unsigned char)code;
        n = 2;
        if (reason) {
            size_t rl = strlen(reason);
            if (rl > 123) rl = 123;
            memcpy(p + 2, reason, rl);
            n += rl;
        }
    }
    return wsc_send_frame(c, WSC_CLOSE, 1, p, n);
}

int wsc_read_frame(wsc *c, wsc_frame *f, int timeout_ms) {
    memset(f, 0, sizeof *f);
    int64_t deadline = mono_ms() + timeout_ms;
    int r = fill(c, 2, deadline);
    if (r != WSC_OK) return r;
    unsigned b0 = c->buf[0], b1 = c->buf[1];
    if (b1 & 0x80) {
        snprintf(c->why, sizeof c->why, "server frame is masked");
        return WSC_BAD_FRAME;
    }
    if ((b0 & 0x30) || ((b0 & 0x40) && !c->rsv1_ok)) {
        snprintf(c->why, sizeof c->why, "server frame has RSV bits 0x%02x", b0 & 0x70);
        return WSC_BAD_FRAME;
    }
    size_t hl = 2;
    uint64_t len = b1 & 0x7F;
    if (len == 126) {
        hl = 4;
        if ((r = fill(c, hl, deadline)) != WSC_OK) return r;
        len = (uint64_t)c->buf[2] << 8 | c->buf[3];
        if (len < 126) {
            snprintf(c->why, sizeof c->why, "non-minimal 16-bit length %llu", (unsigned long long)len);
            return WSC_BAD_FRAME;
        }
    } else if (len == 127) {
        hl = 10;
        if ((r = fill(c, hl, deadline)) != WSC_OK) return r;
        len = 0;
        for (int i = 0; i < 8; i++) len = len << 8 | c->buf[2 + i];
        if (len < 65536 || (len >> 63)) {
            snprintf(c->why, sizeof c->why, "bad 64-bit length %llu", (unsigned long long)len);
            return WSC_BAD_FRAME;
        }
    }
    int opcode = (int)(b0 & 0x0F);
    int fin = (b0 & 0x80) != 0;
    if (opcode >= 8 && (len > 125 || !fin)) {
        snprintf(c->why, sizeof c->why, "bad control frame (opcode %d, len %llu, fin %d)", opcode,
                 (unsigned long long)len, fin);
        return WSC_BAD_FRAME;
    }
    if (!(opcode <= 2 || (opcode >= 8 && opcode <= 10))) {
        snprintf(c->why, sizeof c->why, "reserved opcode %d", opcode);
        return WSC_BAD_FRAME;
    }
    if (len > (1u << 30)) return WSC_BAD_FRAME;
    if ((r = fill(c, hl + (size_t)len, deadline)) != WSC_OK) return r;
    f->opcode = opcode;
    f->fin = fin;
    f->rsv1 = (b0 & 0x40) != 0;
    f->len = (size_t)len;
    f->data = malloc(f->len + 1);
    if (f->data == NULL) abort();
    memcpy(f->data, c->buf + hl, f->len);
    f->data[f->len] = '\0';
    consume(c, hl + f->len);
    return WSC_OK;
}

int wsc_recv(wsc *c, wsc_frame *out, int timeout_ms) {
    int64_t deadline = mono_ms() + timeout_ms;
    wsc_frame msg = {0};
    int have = 0;
    memset(out, 0, sizeof *out);
    for (;;) {
        int left = (int)(deadline - mono_ms());
        wsc_frame f;
        int r = wsc_read_frame(c, &f, left > 0 ? left : 0);
        if (r != WSC_OK) {
            wsc_frame_free(&msg);
            return r;
        }
        if (f.opcode == WSC_PING) {
            wsc_send_frame(c, WSC_PONG, 1, f.data, f.len);
            wsc_frame_free(&f);
            continue;
        }
        if (f.opcode == WSC_PONG) {
            wsc_frame_free(&f);
            continue;
        }
        if (f.opcode == WSC_CLOSE) {
            wsc_frame_free(&msg);
            *out = f;
            return WSC_OK;
        }
        if (f.opcode == WSC_CONT) {
            if (!have) {
                wsc_frame_free(&f);
                snprintf(c->why, sizeof c->why, "continuation without a message");
                return WSC_BAD_FRAME;
            }
            unsigned char *nd = realloc(msg.data, msg.len + f.len + 1);
            if (nd == NULL) abort();
            memcpy(nd + msg.len, f.data, f.len);
            msg.data = nd;
            msg.len += f.len;
            msg.data[msg.len] = '\0';
            msg.fin = f.fin;
            wsc_frame_free(&f);
        } else {
            if (have) {
                wsc_frame_free(&f);
                wsc_frame_free(&msg);
                snprintf(c->why, sizeof c->why, "new message inside a fragmented one");
                return WSC_BAD_FRAME;
            }
            msg = f;
            have = 1;
        }
        if (msg.fin) {
            *out = msg;
            return WSC_OK;
        }
    }
}

int wsc_close_code(const wsc_frame *f, char *reason, size_t cap) {
    if (reason && cap) reason[0] = '\0';
    if (f->len < 2) return 1005;
    if (reason && cap) {
        size_t rl = f->len - 2;
        if (rl >= cap) rl = cap - 1;
        memcpy(reason, f->data + 2, rl);
        reason[rl] = '\0';
    }
    return f->data[0] << 8 | f->data[1];
}

int wsc_recv_close(wsc *c, int timeout_ms, int *messages, char *reason, size_t cap) {
    if (messages) *messages = 0;
    for (int i = 0; i < 1000; i++) {
        wsc_frame f;
        int r = wsc_recv(c, &f, timeout_ms);
        if (r != WSC_OK) {
            if (r == WSC_TIMEOUT || r == WSC_EOF) snprintf(c->why, sizeof c->why, "no close frame (%s)", r == WSC_EOF ? "EOF" : "timeout");
            return -1;
        }
        if (f.opcode == WSC_CLOSE) {
            int code = wsc_close_code(&f, reason, cap);
            wsc_frame_free(&f);
            return code;
        }
        if (messages) (*messages)++;
        wsc_frame_free(&f);
    }
    snprintf(c->why, sizeof c->why, "no close frame after 1000 messages");
    return -1;
}

int wsc_wait_eof(wsc *c, int timeout_ms) {
    int64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        c->len = 0;
        int left = (int)(deadline - mono_ms());
        if (left <= 0) return 0;
        int r = fill(c, 1, deadline);
        if (r == WSC_EOF || r == WSC_ERROR) return 1;
        if (r == WSC_TIMEOUT) return 0;
    }
}

void wsc_frame_free(wsc_frame *f) {
    free(f->data);
    f->data = NULL;
    f->len = 0;
}

void wsc_free(wsc *c) {
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    free(c->buf);
    c->buf = NULL;
    c->len = c->cap = 0;
}
