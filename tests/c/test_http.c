/*
 * test_http: plain HTTP on the WebSocket port, through the public C ABI,
 * with raw clients over loopback.
 *
 * - Static files (a tree made under /tmp: index.html, .js, .css, .png, a
 *   subdirectory with its own index.html, a file outside the root, a
 *   symlink out and one inside): 200 with the right Content-Type and body,
 *   "/" and "/sub/" give index.html, HEAD gives the headers and no body,
 *   ETag then If-None-Match gives 304; every traversal attempt gives 404
 *   and never the outside file; POST without the host's handler: 405.
 * - Health path: 200 "ok"; argument errors; after listen WS_ERR_STATE.
 * - The host's handler in callback mode: on_http sees method, path, query,
 *   headers and body; answers inside (ws_http_respond + ws_conn_add_header),
 *   by returning a status, 100 ms later from the test thread, or never
 *   (503 at WS_OPT_HANDSHAKE_TIMEOUT_MS, then WS_ERR_CLOSED); twice:
 *   WS_ERR_STATE; unknown ids: WS_ERR_NO_SUCH_CONN; on_http NULL: 404;
 *   static files win over the handler, which gets the misses.
 * - Event mode: WS_EVENT_HTTP with the request readable until
 *   ws_event_free, answered from the polling thread.
 * - Keep-alive and pipelining (in order), WS_OPT_HTTP_MAX_REQUESTS,
 *   WS_OPT_HTTP_IDLE_TIMEOUT_MS, Connection: close, HTTP/1.0.
 * - Bad input (431, 400, 411, 413) closes that connection; the server
 *   keeps serving, and a WebSocket client connected before still echoes.
 * - An upgrade after HTTP requests on the same keep-alive connection.
 * - ws_server_stats: http_requests counts the answered requests.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "client.h"
#include "events.h"

/* ---- the static tree ---- */

static char BASE[256], ROOT[300];
static const char IDX[] = "<!doctype html><title>root</title><p>root index</p>";
static const char SUBIDX[] = "<!doctype html><p>sub index</p>";
static const char JS[] = "console.log('app');\n";
static const char CSS[] = "body { color: red; }\n";
static const unsigned char PNG[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R', 0, 1, 2, 3};
static const char SECRET[] = "TOP-SECRET-OUTSIDE-THE-ROOT";

static void write_file(const char *dir, const char *name, const void *data, size_t len) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (!CHECK(f != NULL, "create %s: %s", p, strerror(errno))) return;
    fwrite(data, 1, len, f);
    fclose(f);
}

static void make_tree(void) {
    snprintf(BASE, sizeof BASE, "/tmp/wsserver-c-http-%d", (int)getpid());
    snprintf(ROOT, sizeof ROOT, "%s/www", BASE);
    char p[512], target[512];
    mkdir(BASE, 0755);
    mkdir(ROOT, 0755);
    snprintf(p, sizeof p, "%s/sub", ROOT);
    mkdir(p, 0755);
    write_file(BASE, "secret.txt", SECRET, strlen(SECRET));
    write_file(ROOT, "index.html", IDX, strlen(IDX));
    write_file(ROOT, "app.js", JS, strlen(JS));
    write_file(ROOT, "style.css", CSS, strlen(CSS));
    write_file(ROOT, "logo.png", PNG, sizeof PNG);
    write_file(p, "index.html", SUBIDX, strlen(SUBIDX));
    snprintf(target, sizeof target, "%s/secret.txt", BASE);
    snprintf(p, sizeof p, "%s/out-link.txt", ROOT);
    CHECK(symlink(target, p) == 0, "symlink out: %s", strerror(errno));
    snprintf(p, sizeof p, "%s/sub/up-link.txt", ROOT);
    CHECK(symlink("../../secret.txt", p) == 0, "relative symlink out: %s", strerror(errno));
    snprintf(target, sizeof target, "%s/app.js", ROOT);
    snprintf(p, sizeof p, "%s/sub/alias.js", ROOT);
    CHECK(symlink(target, p) == 0, "symlink inside: %s", strerror(errno));
}

static void remove_tree(void) {
    const char *names[] = {"www/sub/alias.js", "www/sub/up-link.txt", "www/sub/index.html", "www/out-link.txt",
                           "www/index.html", "www/app.js", "www/style.css", "www/logo.png", "secret.txt"};
    char p[512];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", BASE, names[i]);
        unlink(p);
    }
    snprintf(p, sizeof p, "%s/sub", ROOT);
    rmdir(p);
    rmdir(ROOT);
    rmdir(BASE);
}

/* ---- raw HTTP over the test client ---- */

typedef struct hresp {
    int status;
    char head[8192];
    unsigned char *body;
    size_t body_len;
} hresp;

static void hresp_free(hresp *r) {
    free(r->body);
    r->body = NULL;
    r->body_len = 0;
}

static void drop(wsc *c, size_t n) {
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

/* The value of header `name` in r's head (copied to a static buffer, one
 * of 4 in rotation), or NULL. */
static const char *rh(const hresp *r, const char *name) {
    static char bufs[4][1024];
    static int k;
    char *out = bufs[k++ & 3];
    size_t nl = strlen(name);
    for (const char *line = strstr(r->head, "\r\n"); line && line[2] && line[2] != '\r';
         line = strstr(line + 2, "\r\n")) {
        const char *l = line + 2;
        if (strncasecmp(l, name, nl) == 0 && l[nl] == ':') {
            const char *v = l + nl + 1;
            while (*v == ' ' || *v == '\t') v++;
            const char *end = strstr(v, "\r\n");
            size_t vl = end ? (size_t)(end - v) : strlen(v);
            if (vl >= sizeof bufs[0]) vl = sizeof bufs[0] - 1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return out;
        }
    }
    return NULL;
}

static int rh_count(const hresp *r, const char *name) {
    int n = 0;
    size_t nl = strlen(name);
    for (const char *p = strstr(r->head, "\r\n"); p != NULL; p = strstr(p + 2, "\r\n"))
        if (strncasecmp(p + 2, name, nl) == 0 && p[2 + nl] == ':') n++;
    return n;
}

static const char *S(const char *s) { return s ? s : "(NULL)"; }

/* Reads one response: the head, then Content-Length bytes of body (none
 * for HEAD, 1xx, 204, 304). Returns the status, or -1 (r->head says why). */
static int http_read(wsc *c, hresp *r, int head_only, int timeout_ms) {
    memset(r, 0, sizeof *r);
    r->status = -1;
    int64_t deadline = now_ms() + timeout_ms;
    char *end;
    for (;;) {
        end = c->len ? memmem(c->buf, c->len, "\r\n\r\n", 4) : NULL;
        if (end) break;
        int left = (int)(deadline - now_ms());
        int res = c->len >= sizeof r->head - 1 ? WSC_ERROR : wsc_read_some(c, 1, left > 0 ? left : 0);
        if (res != WSC_OK) {
            snprintf(r->head, sizeof r->head, "(no response: %s)",
                     res == WSC_TIMEOUT ? "timeout" : res == WSC_EOF ? "EOF" : "error");
            return -1;
        }
    }
    size_t hl = (size_t)(end - (char *)c->buf) + 4;
    memcpy(r->head, c->buf, hl);
    r->head[hl] = '\0';
    drop(c, hl);
    if (sscanf(r->head, "HTTP/1.1 %d", &r->status) != 1) r->status = -1;
    size_t want = 0;
    const char *cl = rh(r, "Content-Length");
    int bodiless = head_only || r->status == 304 || r->status == 204 || (r->status >= 100 && r->status < 200);
    if (cl && !bodiless) want = (size_t)strtoull(cl, NULL, 10);
    if (want > 0) {
        if (c->len < want) {
            int left = (int)(deadline - now_ms());
            if (wsc_read_some(c, want - c->len, left > 0 ? left : 0) != WSC_OK) {
                snprintf(r->head + hl, sizeof r->head - hl, "(body cut short)");
                return -1;
            }
        }
    }
    r->body = malloc(want + 1);
    memcpy(r->body, c->buf, want);
    r->body[want] = '\0';
    r->body_len = want;
    drop(c, want);
    return r->status;
}

static int http_connect(wsc *c, uint16_t port) {
    int fd = wsc_tcp_connect("127.0.0.1", port, 0);
    wsc_init(c, fd);
    return CHECK(fd >= 0, "connect to %u", (unsigned)port);
}

/* 1 if bytes (or EOF) arrive on c within timeout_ms, or are buffered. */
static int fd_readable_or_eof(wsc *c, int timeout_ms) {
    if (c->len > 0) return 1;
    struct pollfd p = {c->fd, POLLIN, 0};
    return poll(&p, 1, timeout_ms) == 1;
}

static int http_send(wsc *c, const char *raw) { return wsc_send_raw(c, raw, strlen(raw)); }

static int body_is(const hresp *r, const void *want, size_t len) {
    return r->body_len == len && memcmp(r->body, want, len) == 0;
}

static int body_has_secret(const hresp *r) { return r->body && memmem(r->body, r->body_len, "TOP-SECRET", 10) != NULL; }

/* One request on its own connection with "Connection: close": the status;
 * *eof says whether the server then closed the connection. */
static int http_once(uint16_t port, const char *method, const char *target, const char *extra, hresp *r, int *eof) {
    wsc c;
    memset(r, 0, sizeof *r);
    r->status = -1;
    if (!http_connect(&c, port)) return -1;
    char req[4096];
    snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: test\r\nConnection: close\r\n%s\r\n", method, target,
             extra ? extra : "");
    http_send(&c, req);
    int st = http_read(&c, r, strcmp(method, "HEAD") == 0, scaled(5000));
    int closed = wsc_wait_eof(&c, scaled(3000));
    if (eof) *eof = closed;
    wsc_free(&c);
    return st;
}

/* ---- callbacks ---- */

static ws_server *cur; /* the callback-mode server under test */

static int on_open(void *ud, uint64_t conn, const ws_request *req) {
    (void)ud;
    (void)req;
    ev_enter(conn, 1);
    ev_record_open(conn, 1);
    ev_leave();
    return 0;
}

static void on_message(void *ud, uint64_t conn, const uint8_t *data, size_t len, ws_kind kind) {
    (void)ud;
    ws_server *s = cur;
    ev_enter(conn, 0);
    ev_record_message(conn);
    ws_server_send(s, conn, data, len, kind);
    ev_leave();
}

/* What on_http saw (under ev_mu). */
static struct {
    int calls, wrong_thread;
    char last_path[256];
    /* /api/echo */
    char method[16], path[128], query[128], xtest[64], ctype[64];
    char body[256];
    size_t body_len;
    int body_nonnull;
    int bad_res[8];
    int respond_res, again_res, hdr_after_res, hdr_res;
    /* /later and /never */
    uint64_t later_id, never_id, echo_id;
} H;

static int on_http(void *ud, uint64_t id, const ws_request *req) {
    (void)ud;
    ws_server *s = cur;
    char name[32] = "";
    pthread_getname_np(pthread_self(), name, sizeof name);
    const char *path = S(ws_request_path(req));
    pthread_mutex_lock(&ev_mu);
    H.calls++;
    if (strcmp(name, "wsserver-io") != 0) H.wrong_thread++;
    snprintf(H.last_path, sizeof H.last_path, "%s", path);
    int ret = 0;
    if (strcmp(path, "/api/echo") == 0) {
        H.echo_id = id;
        snprintf(H.method, sizeof H.method, "%s", S(ws_request_method(req)));
        snprintf(H.path, sizeof H.path, "%s", path);
        snprintf(H.query, sizeof H.query, "%s", S(ws_request_query(req)));
        snprintf(H.xtest, sizeof H.xtest, "%s", S(ws_request_header(req, "x-TEST")));
        snprintf(H.ctype, sizeof H.ctype, "%s", S(ws_request_header(req, "Content-Type")));
        size_t blen = 12345;
        const uint8_t *b = ws_request_body(req, &blen);
        H.body_nonnull = b != NULL;
        H.body_len = blen;
        if (b && blen < sizeof H.body) {
            memcpy(H.body, b, blen);
            H.body[blen] = '\0';
        }
        int k = 0;
        H.bad_res[k++] = ws_http_respond(s, id, 99, "text/plain", (const uint8_t *)"x", 1);
        H.bad_res[k++] = ws_http_respond(s, id, 600, "text/plain", (const uint8_t *)"x", 1);
        H.bad_res[k++] = ws_http_respond(s, id, 200, "text/plain\r\nX-Injected: 1", (const uint8_t *)"x", 1);
        H.bad_res[k++] = ws_http_respond(s, id, 200, "text/plain", NULL, 3);
        H.bad_res[k++] = ws_http_respond(NULL, id, 200, "text/plain", (const uint8_t *)"x", 1);
        H.bad_res[k++] = ws_conn_add_header(s, id, "Content-Length", "3");
        H.bad_res[k++] = ws_conn_add_header(s, id, "X-Bad", "a\r\nX-Injected: 1");
        H.hdr_res = ws_conn_add_header(s, id, "X-Seen", S(ws_request_method(req)));
        char out[512];
        int n = snprintf(out, sizeof out, "%s %s?%s [%s]", H.method, path, H.query, b ? H.body : "");
        H.respond_res = ws_http_respond(s, id, 201, "text/x-echo", (const uint8_t *)out, (size_t)n);
        H.again_res = ws_http_respond(s, id, 200, "text/plain", (const uint8_t *)"twice", 5);
        H.hdr_after_res = ws_conn_add_header(s, id, "X-After", "1");
    } else if (strcmp(path, "/api/teapot") == 0) {
        ret = 418;
    } else if (strcmp(path, "/api/notype") == 0) {
        ws_http_respond(s, id, 200, NULL, (const uint8_t *)"raw", 3);
    } else if (strcmp(path, "/later") == 0) {
        H.later_id = id;
    } else if (strcmp(path, "/never") == 0) {
        H.never_id = id;
    } else {
        char out[300];
        int n = snprintf(out, sizeof out, "handler: %s %s", S(ws_request_method(req)), path);
        ws_http_respond(s, id, 200, "text/plain", (const uint8_t *)out, (size_t)n);
    }
    pthread_mutex_unlock(&ev_mu);
    return ret;
}

static int h_calls(void) {
    pthread_mutex_lock(&ev_mu);
    int n = H.calls;
    pthread_mutex_unlock(&ev_mu);
    return n;
}

static uint64_t wait_id(uint64_t *field, int timeout_ms) {
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        pthread_mutex_lock(&ev_mu);
        uint64_t id = *field;
        pthread_mutex_unlock(&ev_mu);
        if (id != 0 || now_ms() > deadline) return id;
        sleep_ms(1);
    }
}


static uint16_t listen_port(ws_server *s) {
    uint16_t port = 0;
    CHECK_RES(ws_server_listen(s, "127.0.0.1", 0), WS_OK);
    CHECK_RES(ws_server_port(s, &port), WS_OK);
    return port;
}

/* The media type of r's Content-Type (before any ';'). */
static const char *media(const hresp *r) {
    static char out[128];
    const char *ct = rh(r, "Content-Type");
    if (!ct) return "(none)";
    snprintf(out, sizeof out, "%s", ct);
    char *semi = strchr(out, ';');
    if (semi) *semi = '\0';
    return out;
}

/* A WebSocket client's echo round trip. */
static int echo_ok(wsc *c, const char *text) {
    if (wsc_send_text(c, text) != 0) return 0;
    wsc_frame f;
    int r = wsc_recv(c, &f, scaled(3000));
    int ok = r == WSC_OK && f.opcode == WSC_TEXT && f.len == strlen(text) && memcmp(f.data, text, f.len) == 0;
    if (r == WSC_OK) wsc_frame_free(&f);
    return ok;
}

static void ws_bye(wsc *c, const char *what) {
    wsc_send_close(c, 1000, NULL);
    CHECK(wsc_recv_close(c, scaled(3000), NULL, NULL, 0) == 1000, "%s: close handshake", what);
}

/* ---- static files, health, bad input (no host handler) ---- */

static void test_static(void) {
    events_reset();
    ws_callbacks cb = ev_callbacks(on_open, on_message);
    cb.on_http = on_http; /* set, but WS_OPT_HTTP_HANDLER stays 0: never called */
    ws_server *s = ws_server_new(&cb, NULL);
    cur = s;
    memset(&H, 0, sizeof H);
    char file[512];
    snprintf(file, sizeof file, "%s/index.html", ROOT);
    CHECK_RES(ws_server_set_static_dir(s, "/nonexistent/wsserver-nowhere"), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_server_set_static_dir(s, file), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_server_set_static_dir(NULL, ROOT), WS_ERR_NULL);
    CHECK_RES(ws_server_set_static_dir(s, "/tmp/\xff\xfe"), WS_ERR_INVALID_UTF8);
    CHECK_RES(ws_server_set_static_dir(s, NULL), WS_OK);
    CHECK_RES(ws_server_set_static_dir(s, ROOT), WS_OK);
    CHECK_RES(ws_server_set_health_path(s, "healthz"), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_server_set_health_path(s, ""), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_server_set_health_path(NULL, "/healthz"), WS_ERR_NULL);
    CHECK_RES(ws_server_set_health_path(s, "/\xff"), WS_ERR_INVALID_UTF8);
    CHECK_RES(ws_server_set_health_path(s, NULL), WS_OK);
    CHECK_RES(ws_server_set_health_path(s, "/healthz"), WS_OK);
    CHECK_RES(ws_server_set_option(s, WS_OPT_HTTP_MAX_BODY, 10), WS_OK);
    CHECK_RES(ws_server_set_option(s, WS_OPT_CLOSE_TIMEOUT_MS, (uint64_t)scaled(3000)), WS_OK);
    uint16_t port = listen_port(s);
    CHECK_RES(ws_server_set_health_path(s, "/h2"), WS_ERR_STATE);
    CHECK_RES(ws_server_set_health_path(s, NULL), WS_ERR_STATE);
    CHECK_RES(ws_server_set_static_dir(s, ROOT), WS_ERR_STATE);
    CHECK_RES(ws_server_set_static_dir(s, NULL), WS_ERR_STATE);

    /* A WebSocket client connected before everything else. */
    wsc ws0;
    uint64_t ws0_id = ev_open_client(&ws0, port, "/chat", 0);
    CHECK(ws0_id && echo_ok(&ws0, "before"), "WebSocket client on the HTTP port echoes");

    /* ---- files, types, bodies ---- */
    struct {
        const char *target, *type;
        const void *body;
        size_t len;
    } files[] = {
        {"/", "text/html", IDX, sizeof IDX - 1},
        {"/index.html", "text/html", IDX, sizeof IDX - 1},
        {"/app.js", "text/javascript", JS, sizeof JS - 1},
        {"/app.js?v=3&x", "text/javascript", JS, sizeof JS - 1},
        {"/style.css", "text/css", CSS, sizeof CSS - 1},
        {"/logo.png", "image/png", PNG, sizeof PNG},
        {"/sub/", "text/html", SUBIDX, sizeof SUBIDX - 1},
        {"/sub", "text/html", SUBIDX, sizeof SUBIDX - 1},
        {"/sub/index.html", "text/html", SUBIDX, sizeof SUBIDX - 1},
        {"/sub/alias.js", "text/javascript", JS, sizeof JS - 1}, /* symlink inside the root */
        {"//sub//index.html", "text/html", SUBIDX, sizeof SUBIDX - 1},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        hresp r;
        int eof = 0;
        int st = http_once(port, "GET", files[i].target, NULL, &r, &eof);
        CHECK(st == 200, "GET %s: 200 (got %d) %.80s", files[i].target, st, r.head);
        CHECK(strcmp(media(&r), files[i].type) == 0, "GET %s: Content-Type %s (got %s)", files[i].target,
              files[i].type, S(rh(&r, "Content-Type")));
        CHECK(body_is(&r, files[i].body, files[i].len), "GET %s: the file's %zu bytes (got %zu)", files[i].target,
              files[i].len, r.body_len);
        CHECK(rh(&r, "ETag") != NULL, "GET %s: an ETag", files[i].target);
        CHECK(eof, "GET %s with Connection: close: closed after", files[i].target);
        hresp_free(&r);
    }
    hresp r;
    int st = http_once(port, "GET", "/missing.html", NULL, &r, NULL);
    CHECK(st == 404, "GET /missing.html: 404 (got %d)", st);
    hresp_free(&r);
    st = http_once(port, "GET", "/sub/missing/", NULL, &r, NULL);
    CHECK(st == 404, "GET /sub/missing/: 404 (got %d)", st);
    hresp_free(&r);

    /* ---- HEAD: headers, no body (the next response follows at once) ---- */
    wsc c;
    if (http_connect(&c, port)) {
        http_send(&c, "HEAD /app.js HTTP/1.1\r\nHost: t\r\n\r\nHEAD / HTTP/1.1\r\nHost: t\r\n\r\n"
                      "GET /style.css HTTP/1.1\r\nHost: t\r\n\r\n");
        char want[32];
        st = http_read(&c, &r, 1, scaled(5000));
        snprintf(want, sizeof want, "%zu", sizeof JS - 1);
        CHECK(st == 200, "HEAD /app.js: 200 (got %d)", st);
        CHECK_STR(rh(&r, "Content-Length"), want);
        CHECK_STR(media(&r), "text/javascript");
        hresp_free(&r);
        st = http_read(&c, &r, 1, scaled(5000));
        snprintf(want, sizeof want, "%zu", sizeof IDX - 1);
        CHECK(st == 200, "HEAD /: 200 (got %d)", st);
        CHECK_STR(rh(&r, "Content-Length"), want);
        hresp_free(&r);
        st = http_read(&c, &r, 0, scaled(5000));
        CHECK(st == 200 && body_is(&r, CSS, sizeof CSS - 1),
              "after two HEADs the next response starts right away (no body was sent): %d %.60s", st, r.head);
        hresp_free(&r);
        CHECK(!fd_readable_or_eof(&c, 50), "nothing more after the three responses");
    }
    wsc_free(&c);

    /* ---- ETag / If-None-Match ---- */
    st = http_once(port, "GET", "/index.html", NULL, &r, NULL);
    char etag[256] = "";
    snprintf(etag, sizeof etag, "%s", S(rh(&r, "ETag")));
    hresp_free(&r);
    CHECK(st == 200 && etag[0] == '"', "ETag is a quoted string (%s)", etag);
    if (http_connect(&c, port)) {
        char req[1024];
        snprintf(req, sizeof req,
                 "GET /index.html HTTP/1.1\r\nHost: t\r\nIf-None-Match: %s\r\n\r\n"
                 "GET /index.html HTTP/1.1\r\nHost: t\r\nIf-None-Match: \"other\", %s\r\n\r\n"
                 "GET /index.html HTTP/1.1\r\nHost: t\r\nIf-None-Match: \"other\"\r\n\r\n"
                 "GET /app.js HTTP/1.1\r\nHost: t\r\nIf-None-Match: %s\r\n\r\n",
                 etag, etag, etag);
        http_send(&c, req);
        st = http_read(&c, &r, 0, scaled(5000));
        CHECK(st == 304, "If-None-Match with the ETag: 304 (got %d)", st);
        CHECK(r.body_len == 0 && rh(&r, "Content-Type") == NULL, "304: no body, no Content-Type");
        CHECK_STR(rh(&r, "ETag"), etag);
        hresp_free(&r);
        st = http_read(&c, &r, 0, scaled(5000));
        CHECK(st == 304, "If-None-Match with a list holding the ETag: 304 (got %d)", st);
        hresp_free(&r);
        st = http_read(&c, &r, 0, scaled(5000));
        CHECK(st == 200 && body_is(&r, IDX, sizeof IDX - 1), "If-None-Match with another tag: 200 and the file (%d)",
              st);
        hresp_free(&r);
        st = http_read(&c, &r, 0, scaled(5000));
        CHECK(st == 200 && body_is(&r, JS, sizeof JS - 1), "another file's ETag: 200 (%d)", st);
        CHECK(strcmp(S(rh(&r, "ETag")), etag) != 0, "files have different ETags");
        hresp_free(&r);
    }
    wsc_free(&c);

    /* ---- no request leaves the root ---- */
    const char *evil[] = {
        "/../secret.txt",
        "/sub/../../secret.txt",
        "/sub/../index.html/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/%2E%2e/secret.txt",
        "/.%2e/secret.txt",
        "/%2e./secret.txt",
        "/sub/%2e%2e/%2e%2e/secret.txt",
        "/%2e%2e%2fsecret.txt",
        "/sub%2f..%2f..%2fsecret.txt",
        "/sub%2F%2E%2E%2F%2E%2E%2Fsecret.txt",
        "/%252e%252e/secret.txt",
        "/%252e%252e%252fsecret.txt",
        "/sub/%252e%252e/%252e%252e/secret.txt",
        "/index.html%00",
        "/secret.txt%00.html",
        "/%00../secret.txt",
        "/..%5csecret.txt",
        "/sub%5c..%5c..%5csecret.txt",
        "/%5c..%5csecret.txt",
        "/out-link.txt",
        "/sub/up-link.txt",
        "/..",
        "/%2e%2e",
        "/.",
        "/%",
        "/%zz",
    };
    int leaks = 0;
    for (size_t i = 0; i < sizeof evil / sizeof evil[0]; i++) {
        st = http_once(port, "GET", evil[i], NULL, &r, NULL);
        CHECK(st == 404, "GET %s: 404 (got %d)", evil[i], st);
        if (body_has_secret(&r)) leaks++;
        CHECK(!body_has_secret(&r), "GET %s: not the outside file's content", evil[i]);
        hresp_free(&r);
    }
    CHECK_INT(leaks, 0);

    /* ---- other methods on static paths without the handler: 405 ---- */
    const char *posts[] = {
        "POST /index.html HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
        "PUT /app.js HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        "DELETE /missing HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        /* Content-Length exactly WS_OPT_HTTP_MAX_BODY: not 413 */
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\nConnection: close\r\n\r\n0123456789",
    };
    for (size_t i = 0; i < sizeof posts / sizeof posts[0]; i++) {
        if (!http_connect(&c, port)) continue;
        http_send(&c, posts[i]);
        st = http_read(&c, &r, 0, scaled(5000));
        CHECK(st == 405, "%.20s...: 405 (got %d)", posts[i], st);
        CHECK(rh(&r, "Allow") && strstr(rh(&r, "Allow"), "GET"), "405 names the allowed methods (%s)",
              S(rh(&r, "Allow")));
        CHECK(!memmem(r.body, r.body_len, "root index", 10), "405: not the file");
        hresp_free(&r);
        wsc_free(&c);
    }
    CHECK_INT(h_calls(), 0);

    /* ---- health ---- */
    st = http_once(port, "GET", "/healthz", NULL, &r, NULL);
    CHECK(st == 200, "GET /healthz: 200 (got %d)", st);
    CHECK(r.body_len >= 2 && memcmp(r.body, "ok", 2) == 0 && r.body_len <= 3, "health body \"ok\" (got \"%s\")",
          r.body ? (char *)r.body : "");
    hresp_free(&r);
    st = http_once(port, "GET", "/healthz?probe=1", NULL, &r, NULL);
    CHECK(st == 200, "GET /healthz?probe=1: 200 (got %d)", st);
    hresp_free(&r);
    st = http_once(port, "GET", "/healthz/x", NULL, &r, NULL);
    CHECK(st == 404, "GET /healthz/x: 404 (got %d)", st);
    hresp_free(&r);

    /* ---- pipelining: answered in order on one connection ---- */
    if (http_connect(&c, port)) {
        http_send(&c, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
                      "GET /app.js HTTP/1.1\r\nHost: t\r\n\r\n"
                      "HEAD /style.css HTTP/1.1\r\nHost: t\r\n\r\n"
                      "GET /missing HTTP/1.1\r\nHost: t\r\n\r\n"
                      "GET /sub/ HTTP/1.1\r\nHost: t\r\n\r\n"
                      "GET /logo.png HTTP/1.1\r\nHost: t\r\n\r\n");
        int ok = 1;
        ok &= http_read(&c, &r, 0, scaled(5000)) == 200 && r.body_len >= 2 && memcmp(r.body, "ok", 2) == 0;
        hresp_free(&r);
        ok &= http_read(&c, &r, 0, scaled(5000)) == 200 && body_is(&r, JS, sizeof JS - 1);
        hresp_free(&r);
        ok &= http_read(&c, &r, 1, scaled(5000)) == 200 && strcmp(media(&r), "text/css") == 0;
        hresp_free(&r);
        ok &= http_read(&c, &r, 0, scaled(5000)) == 404;
        hresp_free(&r);
        ok &= http_read(&c, &r, 0, scaled(5000)) == 200 && body_is(&r, SUBIDX, sizeof SUBIDX - 1);
        hresp_free(&r);
        ok &= http_read(&c, &r, 0, scaled(5000)) == 200 && body_is(&r, PNG, sizeof PNG);
        CHECK(rh(&r, "Connection") == NULL, "keep-alive: no Connection: close (%s)", S(rh(&r, "Connection")));
        hresp_free(&r);
        CHECK(ok, "six pipelined requests in one write answered in order");
        /* ---- then an upgrade on the same connection ---- */
        ev_forget_open();
        st = wsc_handshake(&c, "127.0.0.1", port, "/chat", NULL, scaled(5000));
        CHECK(st == 101, "upgrade after HTTP requests on the same connection: 101 (got %d) %s", st, c.why);
        if (st == 101) {
            uint64_t id = ev_wait_open(scaled(3000));
            CHECK(id != 0, "on_open for the upgraded connection");
            CHECK(echo_ok(&c, "after http"), "the upgraded connection echoes");
            ws_bye(&c, "upgraded");
            CHECK(ev_wait_closed(id, scaled(3000)), "upgraded connection closed");
        }
    }
    wsc_free(&c);

    /* ---- bad input: 4xx, closed; the server keeps serving ---- */
    struct {
        const char *what;
        const char *raw;
        size_t pad; /* bytes of 'a' appended */
        int want;
    } bad[] = {
        {"head over 8 KiB", "GET / HTTP/1.1\r\nHost: t\r\nX-Big: ", 9000, 431},
        {"many headers over 8 KiB", NULL, 0, 431},
        {"garbage", "NOT HTTP AT ALL\r\n\r\n", 0, 400},
        {"binary garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 0, 400},
        {"chunked body", "POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n", 0, 411},
        {"body over WS_OPT_HTTP_MAX_BODY", "POST /index.html HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\n01234567890",
         0, 413},
        {"huge Content-Length", "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999\r\n\r\n", 0, 413},
        {"bad Content-Length", "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1x\r\n\r\n", 0, 400},
        {"garbage after a good request", "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n\x01\x02 nonsense\r\n\r\n", 0, 400},
    };
    char many[12000];
    {
        size_t n = (size_t)snprintf(many, sizeof many, "GET / HTTP/1.1\r\nHost: t\r\n");
        for (int i = 0; n + 64 < sizeof many && i < 300; i++)
            n += (size_t)snprintf(many + n, sizeof many - n, "X-H%03d: %030d\r\n", i, i);
        snprintf(many + n, sizeof many - n, "\r\n");
        bad[1].raw = many;
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (!http_connect(&c, port)) continue;
        wsc_send_raw(&c, bad[i].raw, strlen(bad[i].raw));
        if (bad[i].pad) {
            char *pad = malloc(bad[i].pad);
            memset(pad, 'a', bad[i].pad);
            wsc_send_raw(&c, pad, bad[i].pad); /* may fail once the server has answered */
            free(pad);
        }
        st = http_read(&c, &r, 0, scaled(5000));
        if (strncmp(bad[i].what, "garbage after", 13) == 0) {
            CHECK(st == 200, "%s: the good one first (got %d)", bad[i].what, st);
            hresp_free(&r);
            st = http_read(&c, &r, 0, scaled(5000));
        }
        CHECK(st == bad[i].want, "%s: %d (got %d) %.60s", bad[i].what, bad[i].want, st, r.head);
        CHECK_STR(rh(&r, "Connection"), "close");
        hresp_free(&r);
        CHECK(wsc_wait_eof(&c, scaled(3000)), "%s: connection closed", bad[i].what);
        wsc_free(&c);
    }
    CHECK(echo_ok(&ws0, "still fine"), "the WebSocket client connected before still echoes");
    st = http_once(port, "GET", "/healthz", NULL, &r, NULL);
    CHECK(st == 200, "GET /healthz after the bad requests: 200 (got %d)", st);
    hresp_free(&r);
    ws_bye(&ws0, "ws0");
    CHECK(ev_wait_closed(ws0_id, scaled(3000)), "ws0 closed");
    wsc_free(&ws0);
    CHECK_INT(h_calls(), 0);
    ev_stop_server(s, (uint32_t)scaled(2000), "static");
    cur = NULL;
}

/* ---- the host's handler, callback mode ---- */

#define B_TIMEOUT 500 /* WS_OPT_HANDSHAKE_TIMEOUT_MS of the handler server (scaled) */

static void test_handler(void) {
    events_reset();
    memset(&H, 0, sizeof H);
    ws_callbacks cb = ev_callbacks(on_open, on_message);
    cb.on_http = on_http;
    ws_server *s = ws_server_new(&cb, NULL);
    cur = s;
    CHECK_RES(ws_server_set_static_dir(s, ROOT), WS_OK);
    CHECK_RES(ws_server_set_health_path(s, "/healthz"), WS_OK);
    CHECK_RES(ws_server_set_option(s, WS_OPT_HTTP_HANDLER, 1), WS_OK);
    CHECK_RES(ws_server_set_option(s, WS_OPT_HANDSHAKE_TIMEOUT_MS, (uint64_t)scaled(B_TIMEOUT)), WS_OK);
    CHECK_RES(ws_server_set_option(s, WS_OPT_CLOSE_TIMEOUT_MS, (uint64_t)scaled(3000)), WS_OK);
    uint16_t port = listen_port(s);
    hresp r;
    wsc c;
    int st;

    /* ---- on_http sees the request; answers inside with headers ---- */
    if (http_connect(&c, port)) {
        http_send(&c, "POST /api/echo?a=1&b=two HTTP/1.1\r\nHost: t\r\nX-Test: hello\r\n"
                      "Content-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world");
        st = http_read(&c, &r, 0, scaled(5000));
        CHECK(st == 201, "POST /api/echo: the handler's 201 (got %d) %.80s", st, r.head);
        const char *want = "POST /api/echo?a=1&b=two [hello world]";
        CHECK(body_is(&r, want, strlen(want)), "the handler's body (got \"%s\")", r.body ? (char *)r.body : "");
        CHECK_STR(rh(&r, "Content-Type"), "text/x-echo");
        CHECK_INT(rh_count(&r, "Content-Type"), 1);
        CHECK_STR(rh(&r, "X-Seen"), "POST");
        CHECK_INT(rh_count(&r, "X-Injected"), 0);
        CHECK_INT(rh_count(&r, "X-After"), 0);
        CHECK_INT(rh_count(&r, "X-Bad"), 0);
        CHECK_INT(rh_count(&r, "Content-Length"), 1);
        hresp_free(&r);
        pthread_mutex_lock(&ev_mu);
        CHECK_STR(H.method, "POST");
        CHECK_STR(H.path, "/api/echo");
        CHECK_STR(H.query, "a=1&b=two");
        CHECK_STR(H.xtest, "hello");
        CHECK_STR(H.ctype, "text/plain");
        CHECK(H.body_nonnull && H.body_len == 11 && strcmp(H.body, "hello world") == 0,
              "ws_request_body: the 11 bytes (got %zu \"%s\")", H.body_len, H.body);
        CHECK_RES(H.bad_res[0], WS_ERR_INVALID_ARGUMENT); /* status 99 */
        CHECK_RES(H.bad_res[1], WS_ERR_INVALID_ARGUMENT); /* status 600 */
        CHECK_RES(H.bad_res[2], WS_ERR_INVALID_ARGUMENT); /* CR/LF in the content type */
        CHECK_RES(H.bad_res[3], WS_ERR_NULL);             /* NULL body with a length */
        CHECK_RES(H.bad_res[4], WS_ERR_NULL);             /* NULL server */
        CHECK_RES(H.bad_res[5], WS_ERR_INVALID_ARGUMENT); /* Content-Length: the server's */
        CHECK_RES(H.bad_res[6], WS_ERR_INVALID_ARGUMENT); /* CR/LF in a value */
        CHECK_RES(H.hdr_res, WS_OK);
        CHECK_RES(H.respond_res, WS_OK);
        CHECK_RES(H.again_res, WS_ERR_STATE);
        CHECK_RES(H.hdr_after_res, WS_ERR_STATE);
        CHECK_INT(H.wrong_thread, 0);
        uint64_t echo_id = H.echo_id;
        pthread_mutex_unlock(&ev_mu);
        CHECK(echo_id != 0, "on_http got an id");
        /* Answered and sent: the id no longer waits. */
        st = ws_http_respond(s, echo_id, 200, NULL, NULL, 0);
        CHECK(st == WS_ERR_STATE || st == WS_ERR_CLOSED, "answering again later: STATE or CLOSED (got %s)",
              ws_result_name(st));

        /* GET: an empty body, non-NULL */
        http_send(&c, "GET /api/echo HTTP/1.1\r\nHost: t\r\n\r\n");
        st = http_read(&c, &r, 0, scaled(5000));
        want = "GET /api/echo? []";
        CHECK(st == 201 && body_is(&r, want, strlen(want)), "GET /api/echo: %d \"%s\"", st,
              r.body ? (char *)r.body : "");
        hresp_free(&r);
        pthread_mutex_lock(&ev_mu);
        CHECK(H.body_nonnull && H.body_len == 0, "no body: ws_request_body non-NULL with length 0 (%d, %zu)",
              H.body_nonnull, H.body_len);
        CHECK_STR(H.query, "");
        CHECK_STR(H.xtest, "(NULL)");
        pthread_mutex_unlock(&ev_mu);

        /* content_type NULL: no Content-Type */
        http_send(&c, "GET /api/notype HTTP/1.1\r\nHost: t\r\n\r\n");
        st = http_read(&c, &r, 0, scaled(5000));
        CHECK(st == 200 && body_is(&r, "raw", 3), "content_type NULL: answered (%d)", st);
        CHECK_INT(rh_count(&r, "Content-Type"), 0);
        hresp_free(&r);

        /* ---- a status returned from on_http ---- */
        http_send(&c, "GET /api/teapot HTTP/1.1\r\nHost: t\r\n\r\n");
        st = http_read(&c, &r, 0, scaled(5000));
        CHECK(st == 418, "on_http returning 418: 418 (got %d)", st);
        CHECK(r.body_len == 0, "a returned status has no body (%zu)", r.body_len);
        hresp_free(&r);
    }
    wsc_free(&c);

    /* ---- answered 100 ms later from this thread ---- */
    if (http_connect(&c, port)) {
        int64_t t0 = now_ms();
        http_send(&c, "GET /later?x=1 HTTP/1.1\r\nHost: t\r\n\r\n");
        uint64_t id = wait_id(&H.later_id, scaled(5000));
        CHECK(id != 0, "on_http for /later");
        CHECK(!fd_readable_or_eof(&c, 100), "nothing sent before the host answers");
        CHECK_RES(ws_conn_add_header(s, id, "X-Later", "yes"), WS_OK);
        CHECK_RES(ws_http_respond(s, id, 200, "text/plain", (const uint8_t *)"later", 5), WS_OK);
        st = ws_http_respond(s, id, 200, "text/plain", (const uint8_t *)"twice", 5);
        CHECK(st == WS_ERR_STATE || st == WS_ERR_CLOSED, "answering /later twice: STATE or CLOSED (got %s)",
              ws_result_name(st));
        st = http_read(&c, &r, 0, scaled(5000));
        CHECK(st == 200 && body_is(&r, "later", 5), "the later answer: %d \"%s\"", st, r.body ? (char *)r.body : "");
        CHECK_STR(rh(&r, "X-Later"), "yes");
        CHECK(now_ms() - t0 >= 100, "the answer came after the host's 100 ms");
        hresp_free(&r);
        /* the keep-alive connection goes on */
        http_send(&c, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
        CHECK_INT(http_read(&c, &r, 0, scaled(5000)), 200);
        hresp_free(&r);
    }
    wsc_free(&c);

    /* ---- never answered: 503 at the handshake timeout; late answer: CLOSED ---- */
    if (http_connect(&c, port)) {
        int64_t t0 = now_ms();
        http_send(&c, "GET /never HTTP/1.1\r\nHost: t\r\n\r\n");
        uint64_t id = wait_id(&H.never_id, scaled(5000));
        CHECK(id != 0, "on_http for /never");
        st = http_read(&c, &r, 0, scaled(B_TIMEOUT) + scaled(5000));
        int64_t took = now_ms() - t0;
        CHECK(st == 503, "never answered: 503 (got %d)", st);
        CHECK(took >= scaled(B_TIMEOUT) * 8 / 10, "503 after the handshake timeout (%lld ms, timeout %d)",
              (long long)took, scaled(B_TIMEOUT));
        hresp_free(&r);
        CHECK_RES(ws_http_respond(s, id, 200, "text/plain", (const uint8_t *)"late", 4), WS_ERR_CLOSED);
        CHECK_RES(ws_conn_add_header(s, id, "X-Late", "1"), WS_ERR_CLOSED);
    }
    wsc_free(&c);

    /* ---- ids never issued ---- */
    CHECK_RES(ws_http_respond(s, 0, 200, NULL, NULL, 0), WS_ERR_NO_SUCH_CONN);
    CHECK_RES(ws_http_respond(s, 999999, 200, NULL, NULL, 0), WS_ERR_NO_SUCH_CONN);
    CHECK_RES(ws_http_respond(s, (uint64_t)1 << 62, 200, "text/plain", (const uint8_t *)"x", 1), WS_ERR_NO_SUCH_CONN);
    CHECK_RES(ws_conn_add_header(s, 999999, "X-A", "1"), WS_ERR_NO_SUCH_CONN);
    CHECK_RES(ws_http_respond(NULL, 1, 200, NULL, NULL, 0), WS_ERR_NULL);

    /* ---- static files win; the handler gets the misses ---- */
    int calls0 = h_calls();
    int eof;
    st = http_once(port, "GET", "/index.html", NULL, &r, &eof);
    CHECK(st == 200 && body_is(&r, IDX, sizeof IDX - 1), "with the handler on, /index.html is the file (%d)", st);
    hresp_free(&r);
    st = http_once(port, "GET", "/sub/", NULL, &r, &eof);
    CHECK(st == 200 && body_is(&r, SUBIDX, sizeof SUBIDX - 1), "with the handler on, /sub/ is its index (%d)", st);
    hresp_free(&r);
    st = http_once(port, "GET", "/healthz", NULL, &r, &eof);
    CHECK(st == 200, "with the handler on, /healthz: 200 (%d)", st);
    hresp_free(&r);
    CHECK_INT(h_calls() - calls0, 0);
    st = http_once(port, "GET", "/nope.html", NULL, &r, &eof);
    CHECK(st == 200 && body_is(&r, "handler: GET /nope.html", 23), "a miss goes to the handler: %d \"%s\"", st,
          r.body ? (char *)r.body : "");
    CHECK(eof, "Connection: close honoured for a handler's answer");
    hresp_free(&r);
    st = http_once(port, "GET", "/../secret.txt", NULL, &r, &eof);
    CHECK(st == 200 && !body_has_secret(&r) && body_is(&r, "handler: GET /../secret.txt", 27),
          "a traversal attempt is a miss for the handler, not the file: %d \"%s\"", st, r.body ? (char *)r.body : "");
    hresp_free(&r);
    st = http_once(port, "HEAD", "/nope.html", NULL, &r, &eof);
    CHECK(st == 200 && r.body_len == 0 && strcmp(S(rh(&r, "Content-Length")), "24") == 0,
          "HEAD to the handler: its Content-Length (%s), no body", S(rh(&r, "Content-Length")));
    hresp_free(&r);
    st = http_once(port, "POST", "/index.html", "Content-Length: 0\r\n", &r, &eof);
    CHECK(st == 200 && body_is(&r, "handler: POST /index.html", 25),
          "POST to a static path goes to the handler (not 405): %d \"%s\"", st, r.body ? (char *)r.body : "");
    hresp_free(&r);
    CHECK_INT(h_calls() - calls0, 4);

    /* ---- pipelined: health, handler, returned status, file, miss; then an upgrade ---- */
    if (http_connect(&c, port)) {
        http_send(&c, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
                      "POST /api/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
                      "GET /api/teapot HTTP/1.1\r\nHost: t\r\n\r\n"
                      "GET /app.js HTTP/1.1\r\nHost: t\r\n\r\n"
                      "DELETE /thing HTTP/1.1\r\nHost: t\r\n\r\n");
        int sts[5];
        char bodies[5][64];
        for (int i = 0; i < 5; i++) {
            sts[i] = http_read(&c, &r, 0, scaled(5000));
            snprintf(bodies[i], sizeof bodies[i], "%s", r.body ? (char *)r.body : "");
            hresp_free(&r);
        }
        CHECK(sts[0] == 200 && strncmp(bodies[0], "ok", 2) == 0, "pipelined 1: health (%d %s)", sts[0], bodies[0]);
        CHECK(sts[1] == 201 && strcmp(bodies[1], "POST /api/echo? [hello]") == 0, "pipelined 2: the handler (%d %s)",
              sts[1], bodies[1]);
        CHECK(sts[2] == 418, "pipelined 3: 418 (%d)", sts[2]);
        CHECK(sts[3] == 200 && strcmp(bodies[3], JS) == 0, "pipelined 4: the file (%d)", sts[3]);
        CHECK(sts[4] == 200 && strcmp(bodies[4], "handler: DELETE /thing") == 0, "pipelined 5: a miss (%d %s)",
              sts[4], bodies[4]);
        ev_forget_open();
        st = wsc_handshake(&c, "127.0.0.1", port, "/chat?after=http", NULL, scaled(5000));
        CHECK(st == 101, "handler server: upgrade after HTTP requests: 101 (got %d) %s", st, c.why);
        if (st == 101) {
            uint64_t id = ev_wait_open(scaled(3000));
            CHECK(echo_ok(&c, "still here"), "the upgraded connection echoes");
            ws_bye(&c, "upgraded (handler)");
            CHECK(ev_wait_closed(id, scaled(3000)), "closed");
        }
    }
    wsc_free(&c);
    CHECK_INT(H.wrong_thread, 0);
    ev_stop_server(s, (uint32_t)scaled(2000), "handler");
    cur = NULL;
}

/* ---- the option on, on_http NULL: 404 ---- */

static void test_null_handler(void) {
    events_reset();
    ws_callbacks cb = ev_callbacks(on_open, on_message); /* on_http NULL */
    ws_server *s = ws_server_new(&cb, NULL);
    cur = s;
    CHECK_RES(ws_server_set_option(s, WS_OPT_HTTP_HANDLER, 1), WS_OK);
    uint16_t port = listen_port(s);
    hresp r;
    int st = http_once(port, "GET", "/anything", NULL, &r, NULL);
    CHECK(st == 404, "on_http NULL: 404 (got %d)", st);
    hresp_free(&r);
    wsc c;
    if (http_connect(&c, port)) {
        http_send(&c, "POST /form HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nabcd"
                      "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
        CHECK_INT(http_read(&c, &r, 0, scaled(5000)), 404);
        hresp_free(&r);
        CHECK_INT(http_read(&c, &r, 0, scaled(5000)), 404);
        hresp_free(&r);
        /* an upgrade still works */
        ev_forget_open();
        st = wsc_handshake(&c, "127.0.0.1", port, "/chat", NULL, scaled(5000));
        CHECK(st == 101, "on_http NULL: upgrade after 404s: 101 (got %d)", st);
        if (st == 101) {
            uint64_t id = ev_wait_open(scaled(3000));
            CHECK(echo_ok(&c, "x"), "echoes");
            ws_bye(&c, "null handler");
            CHECK(ev_wait_closed(id, scaled(3000)), "closed");
        }
    }
    wsc_free(&c);
    ws_stats stt;
    CHECK_RES(ws_server_stats(s, &stt), WS_OK);
    CHECK_INT(stt.http_requests, 3);
    CHECK_INT(stt.handshakes_accepted, 1);
    ev_stop_server(s, (uint32_t)scaled(2000), "on_http NULL");
    cur = NULL;
}

/* ---- keep-alive limits and statistics ---- */

static void test_limits(void) {
    events_reset();
    ws_callbacks cb = ev_callbacks(on_open, on_message);
    ws_server *s = ws_server_new(&cb, NULL);
    cur = s;
    CHECK_RES(ws_server_set_static_dir(s, ROOT), WS_OK);
    CHECK_RES(ws_server_set_health_path(s, "/healthz"), WS_OK);
    CHECK_RES(ws_server_set_option(s, WS_OPT_HTTP_MAX_REQUESTS, 2), WS_OK);
    CHECK_RES(ws_server_set_option(s, WS_OPT_HTTP_IDLE_TIMEOUT_MS, 200), WS_OK);
    CHECK_RES(ws_server_set_option(s, WS_OPT_HTTP_MAX_REQUESTS, 0), WS_ERR_INVALID_ARGUMENT);
    CHECK_RES(ws_server_set_option(s, WS_OPT_HTTP_IDLE_TIMEOUT_MS, 0), WS_ERR_INVALID_ARGUMENT);
    ws_stats stt;
    memset(&stt, 0xff, sizeof stt);
    CHECK_RES(ws_server_stats(s, &stt), WS_OK);
    CHECK_INT(stt.http_requests, 0);
    uint16_t port = listen_port(s);
    uint64_t v = 0;
    CHECK_RES(ws_server_get_option(s, WS_OPT_HTTP_MAX_REQUESTS, &v), WS_OK);
    CHECK_INT(v, 2);
    hresp r;
    wsc c;
    int st;

    /* WS_OPT_HTTP_MAX_REQUESTS 2: the second answer says close, then EOF */
    if (http_connect(&c, port)) {
        http_send(&c, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\nGET /app.js HTTP/1.1\r\nHost: t\r\n\r\n"
                      "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
        st = http_read(&c, &r, 0, scaled(5000));
        CHECK(st == 200 && rh(&r, "Connection") == NULL, "request 1 of 2: 200, kept alive (%d, %s)", st,
              S(rh(&r, "Connection")));
        hresp_free(&r);
        st = http_read(&c, &r, 0, scaled(5000));
        CHECK(st == 200 && body_is(&r, JS, sizeof JS - 1), "request 2 of 2: 200 (%d)", st);
        CHECK_STR(rh(&r, "Connection"), "close");
        hresp_free(&r);
        CHECK(c.len == 0, "no third response (%zu bytes)", c.len);
        CHECK(wsc_wait_eof(&c, scaled(3000)), "closed after the request limit");
    }
    wsc_free(&c);

    /* WS_OPT_HTTP_IDLE_TIMEOUT_MS 200: an idle keep-alive connection is closed */
    if (http_connect(&c, port)) {
        http_send(&c, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
        st = http_read(&c, &r, 0, scaled(5000));
        CHECK(st == 200 && rh(&r, "Connection") == NULL, "keep-alive answer (%d)", st);
        hresp_free(&r);
        int64_t t0 = now_ms();
        int closed = wsc_wait_eof(&c, scaled(3000));
        int64_t took = now_ms() - t0;
        CHECK(closed, "an idle keep-alive connection is closed");
        CHECK(took >= 150 && took <= scaled(1000), "closed after the 200 ms idle timeout (%lld ms)", (long long)took);
    }
    wsc_free(&c);

    /* Connection: close from the client */
    int eof = 0;
    st = http_once(port, "GET", "/style.css", NULL, &r, &eof);
    CHECK(st == 200 && body_is(&r, CSS, sizeof CSS - 1), "Connection: close: answered (%d)", st);
    CHECK_STR(rh(&r, "Connection"), "close");
    CHECK(eof, "Connection: close: closed after the answer");
    hresp_free(&r);

    /* HTTP/1.0: answered and closed */
    if (http_connect(&c, port)) {
        int64_t t0 = now_ms();
        http_send(&c, "GET /app.js HTTP/1.0\r\n\r\n");
        st = http_read(&c, &r, 0, scaled(5000));
        CHECK(st == 200 && body_is(&r, JS, sizeof JS - 1), "HTTP/1.0: answered (%d) %.40s", st, r.head);
        CHECK_STR(rh(&r, "Connection"), "close");
        hresp_free(&r);
        CHECK(wsc_wait_eof(&c, scaled(3000)), "HTTP/1.0: closed after the answer");
        CHECK(now_ms() - t0 < scaled(150), "HTTP/1.0: closed at once, not at the idle timeout (%lld ms)",
              (long long)(now_ms() - t0));
    }
    wsc_free(&c);

    CHECK_RES(ws_server_stats(s, &stt), WS_OK);
    CHECK_INT(stt.http_requests, 5);
    CHECK_INT(stt.handshakes_accepted, 0);
    CHECK_INT(stt.open_connections, 0);
    ev_stop_server(s, (uint32_t)scaled(2000), "limits");
    cur = NULL;
}

/* ---- event mode ---- */

/* Events seen by the polling thread. */
static struct {
    int bad;          /* data NULL or not NUL-terminated, request where none belongs */
    uint64_t http_ids[4096];
    int nhttp;
    int after_http;   /* non-HTTP events for an id given by WS_EVENT_HTTP */
} E;

static void e_track(const ws_event *ev) {
    if (ev->data == NULL || ev->data[ev->len] != '\0') E.bad++;
    if (ev->type == WS_EVENT_HTTP) {
        if (ev->request == NULL || ev->conn == 0 || ev->kind != 0) E.bad++;
        if (E.nhttp < 4096) E.http_ids[E.nhttp] = ev->conn;
        E.nhttp++;
        return;
    }
    if ((ev->type == WS_EVENT_OPEN) != (ev->request != NULL)) E.bad++;
    for (int i = 0; i < E.nhttp && i < 4096; i++)
        if (ev->conn != 0 && ev->conn == E.http_ids[i]) E.after_http++;
}

/* Polls (tracking everything) until an event of `type`; NULL on timeout. */
static ws_event *e_wait(ws_server *s, uint32_t type, int timeout_ms) {
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        int left = (int)(deadline - now_ms());
        if (left < 0) return NULL;
        ws_event *ev = NULL;
        int r = ws_server_poll(s, left, &ev);
        if (r == WS_ERR_TIMEOUT) continue;
        if (r != WS_OK) return NULL;
        e_track(ev);
        if (ev->type == type) return ev;
        ws_event_free(ev);
    }
}

static void test_event_mode(void) {
    memset(&E, 0, sizeof E);
    ws_server *s = ws_server_new(NULL, NULL);
    CHECK_RES(ws_server_set_option(s, WS_OPT_EVENT_QUEUE, 1), WS_OK);
    CHECK_RES(ws_server_set_option(s, WS_OPT_AUTO_ACCEPT, 1), WS_OK);
    CHECK_RES(ws_server_set_option(s, WS_OPT_HTTP_HANDLER, 1), WS_OK);
    CHECK_RES(ws_server_set_option(s, WS_OPT_HANDSHAKE_TIMEOUT_MS, (uint64_t)scaled(B_TIMEOUT)), WS_OK);
    CHECK_RES(ws_server_set_option(s, WS_OPT_CLOSE_TIMEOUT_MS, (uint64_t)scaled(3000)), WS_OK);
    CHECK_RES(ws_server_set_static_dir(s, ROOT), WS_OK);
    CHECK_RES(ws_server_set_option(s, WS_OPT_HTTP_MAX_REQUESTS, 1000000), WS_OK); /* the race rounds */
    uint16_t port = listen_port(s);
    hresp r;
    wsc c;
    int st;
    if (http_connect(&c, port)) {
        http_send(&c, "POST /ev/submit?x=1 HTTP/1.1\r\nHost: t\r\nX-Test: ev\r\nContent-Length: 7\r\n\r\npayload");
        ws_event *ev = e_wait(s, WS_EVENT_HTTP, scaled(5000));
        uint64_t id = 0;
        if (CHECK(ev != NULL, "WS_EVENT_HTTP")) {
            id = ev->conn;
            CHECK(id != 0 && ev->request != NULL, "the event carries the id and the request");
            CHECK_STR(ws_request_method(ev->request), "POST");
            CHECK_STR(ws_request_path(ev->request), "/ev/submit");
            CHECK_STR(ws_request_query(ev->request), "x=1");
            CHECK_STR(ws_request_header(ev->request, "x-test"), "ev");
            size_t blen = 0;
            const uint8_t *b = ws_request_body(ev->request, &blen);
            CHECK(b && blen == 7 && memcmp(b, "payload", 7) == 0, "event request body (%zu bytes)", blen);
            CHECK(ws_request_body(ev->request, NULL) == NULL, "ws_request_body with NULL out_len: NULL");
            blen = 99;
            CHECK(ws_request_body(NULL, &blen) == NULL, "ws_request_body(NULL): NULL");
            CHECK(!fd_readable_or_eof(&c, 20), "nothing sent before the host answers");
            CHECK_RES(ws_conn_add_header(s, id, "X-Ev", "1"), WS_OK);
            CHECK_RES(ws_conn_add_header(s, id, "Connection", "close"), WS_ERR_INVALID_ARGUMENT);
            CHECK_RES(ws_http_respond(s, id, 600, NULL, NULL, 0), WS_ERR_INVALID_ARGUMENT);
            CHECK_RES(ws_http_respond(s, id, 200, "application/json", (const uint8_t *)"{\"ok\":true}", 11), WS_OK);
            int again = ws_http_respond(s, id, 200, NULL, NULL, 0);
            CHECK(again == WS_ERR_STATE || again == WS_ERR_CLOSED, "answering twice: STATE or CLOSED (got %s)",
                  ws_result_name(again));
            /* still readable after the answer, until ws_event_free */
            st = http_read(&c, &r, 0, scaled(5000));
            CHECK_STR(ws_request_path(ev->request), "/ev/submit");
            b = ws_request_body(ev->request, &blen);
            CHECK(b && blen == 7 && memcmp(b, "payload", 7) == 0, "the body still readable after the answer");
            ws_event_free(ev);
            CHECK(st == 200 && body_is(&r, "{\"ok\":true}", 11), "event-mode answer: %d \"%s\"", st,
                  r.body ? (char *)r.body : "");
            CHECK_STR(rh(&r, "Content-Type"), "application/json");
            CHECK_STR(rh(&r, "X-Ev"), "1");
            hresp_free(&r);
        }
        /* a static file on the same connection: no event */
        http_send(&c, "GET /app.js HTTP/1.1\r\nHost: t\r\n\r\n");
        st = http_read(&c, &r, 0, scaled(5000));
        CHECK(st == 200 && body_is(&r, JS, sizeof JS - 1), "event mode: static file (%d)", st);
        hresp_free(&r);
        /* never answered: 503; a late answer: CLOSED */
        http_send(&c, "GET /ev/never HTTP/1.1\r\nHost: t\r\n\r\n");
        ev = e_wait(s, WS_EVENT_HTTP, scaled(5000));
        uint64_t nid = 0;
        if (CHECK(ev != NULL, "WS_EVENT_HTTP for /ev/never")) {
            nid = ev->conn;
            CHECK(nid != id, "each request has its own id");
            CHECK_STR(ws_request_method(ev->request), "GET");
            ws_event_free(ev);
        }
        st = http_read(&c, &r, 0, scaled(B_TIMEOUT) + scaled(5000));
        CHECK(st == 503, "event mode, never answered: 503 (got %d)", st);
        hresp_free(&r);
        CHECK_RES(ws_http_respond(s, nid, 200, NULL, NULL, 0), WS_ERR_CLOSED);
        /* then an upgrade on the same connection (auto-accepted) */
        st = wsc_handshake(&c, "127.0.0.1", port, "/ws", NULL, scaled(5000));
        CHECK(st == 101, "event mode: upgrade after HTTP requests: 101 (got %d)", st);
        ev = e_wait(s, WS_EVENT_OPEN, scaled(5000));
        if (CHECK(ev != NULL, "WS_EVENT_OPEN after the HTTP requests")) {
            CHECK(ev->conn != id && ev->conn != nid, "the connection's id is not a request's id");
            ws_event_free(ev);
        }
        wsc_send_close(&c, 1000, NULL);
        CHECK_INT(wsc_recv_close(&c, scaled(3000), NULL, NULL, 0), 1000);
        ev = e_wait(s, WS_EVENT_CLOSE, scaled(5000));
        CHECK(ev != NULL, "WS_EVENT_CLOSE for the upgraded connection");
        ws_event_free(ev);
    }
    wsc_free(&c);

    /* A second answer right after the first, many times: never WS_OK (the
     * I/O thread takes the answer, then forgets the request: a second
     * answer in between must not be taken and dropped). 2000 rounds
     * natively, fewer under valgrind (where the window is wider). */
    int oks = 0, others = 0, rounds = 0, lost = 0;
    int want_rounds = 16000 / scaled(8);
    if (want_rounds < 50) want_rounds = 50;
    if (http_connect(&c, port)) {
        for (int i = 0; i < want_rounds; i++) {
            http_send(&c, "GET /ev/race HTTP/1.1\r\nHost: t\r\n\r\n");
            ws_event *ev = e_wait(s, WS_EVENT_HTTP, scaled(5000));
            if (!ev) break;
            uint64_t id = ev->conn;
            ws_event_free(ev);
            if (ws_http_respond(s, id, 200, "text/plain", (const uint8_t *)"first", 5) != WS_OK) break;
            for (int k = 0; k < 200000; k++) {
                int a = ws_http_respond(s, id, 200, "text/plain", (const uint8_t *)"second", 6);
                if (a == WS_ERR_STATE) {
                    sched_yield(); /* let the I/O thread run (valgrind runs one thread at a time) */
                    continue;
                }
                if (a == WS_OK) oks++;
                else if (a != WS_ERR_CLOSED) others++;
                break;
            }
            st = http_read(&c, &r, 0, scaled(5000));
            if (!(st == 200 && body_is(&r, "first", 5))) lost++;
            hresp_free(&r);
            rounds++;
        }
    }
    wsc_free(&c);
    CHECK_INT(rounds, want_rounds);
    CHECK_INT(lost, 0);
    CHECK(oks == 0, "a second ws_http_respond never returns WS_OK (it did %d times in %d rounds, the answer "
                    "being dropped)", oks, rounds);
    CHECK_INT(others, 0);

    CHECK_RES(ws_server_close(s, (uint32_t)scaled(2000)), WS_OK);
    ws_event *ev;
    while (ws_server_poll(s, 0, &ev) == WS_OK) {
        e_track(ev);
        ws_event_free(ev);
    }
    CHECK_INT(E.bad, 0);
    CHECK_INT(E.after_http, 0);
    CHECK(E.nhttp == want_rounds + 2, "one WS_EVENT_HTTP per request for the host (%d)", E.nhttp);
    ws_stats stt;
    CHECK_RES(ws_server_stats(s, &stt), WS_OK);
    CHECK_INT(stt.http_requests, want_rounds + 3);
    ws_server_free(s);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    make_tree();
    int64_t t0 = now_ms();
    test_static();
    int64_t t1 = now_ms();
    test_handler();
    int64_t t2 = now_ms();
    test_null_handler();
    test_limits();
    int64_t t3 = now_ms();
    test_event_mode();
    printf("static %lld ms, handler %lld ms, limits %lld ms, events %lld ms\n", (long long)(t1 - t0),
           (long long)(t2 - t1), (long long)(t3 - t2), (long long)(now_ms() - t3));
    remove_tree();
    return check_summary("test_http");
}
