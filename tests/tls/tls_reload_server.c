/*
 * A wss echo server for tests/tls/test_wss.py, configured and reloaded
 * through the C ABI. Usage: tls_reload_server CERTDIR [--ca | --ca-pem | --pem]
 * (--ca loads ca.pem as a file, --ca-pem reads it into memory first,
 * --pem loads the certificate and the encrypted key from memory instead of
 * from their files).
 * Text commands from a client: "reload-good" swaps to server2.pem/key,
 * "reload-bad" tries a mismatched pair; the reply is "reload:" + the
 * result name (+ ":" + ws_last_error()). "push:N" makes another thread,
 * outside any callback, send N binary messages (message i: 20,000 bytes
 * for odd i, else 1 + i % 7, every byte i % 256), then "pushed:" + the
 * result of the sends (WS_BACKPRESSURE: queued, and the thread waits). With mutual TLS, each client
 * first gets "subject:" + its certificate subject. Everything else echoes.
 * Each TLS refusal the server logs is printed on stdout as "log: " + the
 * line, after the "listening on" line.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wsserver.h"

static ws_server *server;
static char dir[512];

static const char *path(const char *name) {
    static char buf[4][600];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof buf[i], "%s/%s", dir, name);
    return buf[i];
}

static void reply(uint64_t conn, const char *text) {
    ws_server_send(server, conn, (const uint8_t *)text, strlen(text), WS_TEXT);
}

static int on_open(void *ud, uint64_t conn, const ws_request *req) {
    (void)ud;
    const char *subject = ws_request_client_subject(req);
    if (subject) {
        char buf[512];
        snprintf(buf, sizeof buf, "subject:%s", subject);
        reply(conn, buf);
    }
    return 0;
}

static void on_log(void *ud, ws_log_level level, const char *message) {
    (void)ud;
    (void)level;
    if (strstr(message, "TLS handshake failed")) {
        printf("log: %s\n", message);
        fflush(stdout);
    }
}

static void reload(uint64_t conn, const char *cert, const char *key) {
    ws_tls_config *c = ws_tls_config_new();
    ws_tls_config_set_cert_file(c, path(cert));
    ws_tls_config_set_key_file(c, path(key), NULL);
    ws_result r = ws_server_reload_tls(server, c); /* from inside a callback */
    ws_tls_config_free(c);
    char buf[600];
    snprintf(buf, sizeof buf, "reload:%s%s%s", ws_result_name(r), r == WS_OK ? "" : ":", r == WS_OK ? "" : ws_last_error());
    reply(conn, buf);
}

struct push {
    uint64_t conn;
    int count;
};

/* The "push:N" thread: sends from outside the server's threads. */
static void *push_thread(void *arg) {
    struct push *p = arg;
    static uint8_t msg[20000];
    ws_result r = WS_OK;
    for (int i = 0; i < p->count && r == WS_OK; i++) {
        size_t len = i % 2 ? sizeof msg : (size_t)(1 + i % 7);
        memset(msg, i % 256, len);
        r = ws_server_send(server, p->conn, msg, len, WS_BINARY);
        if (r == WS_BACKPRESSURE) { /* queued; a host that honours it waits */
            nanosleep(&(struct timespec){.tv_nsec = 2000000}, NULL);
            r = WS_OK;
        }
    }
    char buf[64];
    snprintf(buf, sizeof buf, "pushed:%s", ws_result_name(r));
    ws_server_send(server, p->conn, (const uint8_t *)buf, strlen(buf), WS_TEXT);
    free(p);
    return NULL;
}

static void on_message(void *ud, uint64_t conn, const uint8_t *data, size_t len, ws_kind kind) {
    (void)ud;
    pthread_t t;
    struct push *p;
    if (kind == WS_TEXT && len > 5 && memcmp(data, "push:", 5) == 0 && (p = malloc(sizeof *p)) != NULL) {
        p->conn = conn;
        p->count = 0;
        for (size_t i = 5; i < len && data[i] >= '0' && data[i] <= '9' && p->count < 100000; i++) {
            p->count = p->count * 10 + (data[i] - '0');
        }
        if (pthread_create(&t, NULL, push_thread, p) == 0) {
            pthread_detach(t);
        } else {
            free(p);
            reply(conn, "pushed:no thread");
        }
    } else if (kind == WS_TEXT && len == 11 && memcmp(data, "reload-good", 11) == 0) {
        reload(conn, "server2.pem", "server2.key");
    } else if (kind == WS_TEXT && len == 10 && memcmp(data, "reload-bad", 10) == 0) {
        reload(conn, "server.pem", "server2.key");
    } else {
        ws_server_send(server, conn, data, len, kind);
    }
}

/* Reads CERTDIR/name into a static buffer; returns its length (0 on error). */
static size_t slurp(const char *name, uint8_t *pem, size_t cap) {
    FILE *f = fopen(path(name), "rb");
    size_t n = f ? fread(pem, 1, cap, f) : 0;
    if (f) fclose(f);
    return n;
}

/* Hands the bytes of ca.pem to the configuration. */
static ws_result set_ca_from_memory(ws_tls_config *c) {
    static uint8_t pem[64 * 1024];
    return ws_tls_config_set_ca_pem(c, pem, slurp("ca.pem", pem, sizeof pem));
}

/* The certificate and the encrypted key from memory (ws_tls_config_set_*_pem). */
static int set_cert_and_key(ws_tls_config *c, int from_memory) {
    if (!from_memory) {
        return ws_tls_config_set_cert_file(c, path("server.pem")) == WS_OK &&
               ws_tls_config_set_key_file(c, path("server-enc.key"), "secret") == WS_OK;
    }
    static uint8_t cert[64 * 1024], key[64 * 1024];
    return ws_tls_config_set_cert_pem(c, cert, slurp("server.pem", cert, sizeof cert)) == WS_OK &&
           ws_tls_config_set_key_pem(c, key, slurp("server-enc.key", key, sizeof key), "secret") == WS_OK;
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    snprintf(dir, sizeof dir, "%s", argv[1]);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    ws_callbacks cb = {0};
    cb.on_open = on_open;
    cb.on_message = on_message;
    cb.on_log = on_log;
    server = ws_server_new(&cb, NULL);
    ws_server_set_option(server, WS_OPT_HANDSHAKE_TIMEOUT_MS, 1000);
    ws_tls_config *c = ws_tls_config_new();
    if (!set_cert_and_key(c, argc > 2 && strcmp(argv[2], "--pem") == 0) ||
        (argc > 2 && strcmp(argv[2], "--ca") == 0 && ws_tls_config_set_ca_file(c, path("ca.pem")) != WS_OK) ||
        (argc > 2 && strcmp(argv[2], "--ca-pem") == 0 && set_ca_from_memory(c) != WS_OK) ||
        ws_server_set_tls(server, c) != WS_OK || ws_server_listen(server, "127.0.0.1", 0) != WS_OK) {
        fprintf(stderr, "tls_reload_server: %s\n", ws_last_error());
        return 1;
    }
    ws_tls_config_free(c);
    uint16_t port = 0;
    ws_server_port(server, &port);
    printf("listening on wss://127.0.0.1:%u\n", (unsigned)port);
    fflush(stdout);
    int sig;
    sigwait(&set, &sig);
    ws_server_close(server, 1000);
    ws_server_free(server);
    return 0;
}
