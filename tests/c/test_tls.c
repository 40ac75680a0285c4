/*
 * test_tls: the TLS part of the C API without a TLS client: argument and
 * state checks for ws_tls_config_* / ws_server_set_ssl / set_tls /
 * reload_tls / ws_request_client_subject, and, with certificates from
 * scripts/make-certs.sh in $WSTEST_CERTS, every key form, wrong password,
 * unusable key, mismatched key, PEM from memory, listen over TLS, reload
 * while listening (and a failed reload), and that a plain-text client
 * gets no WebSocket answer from a TLS listener.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "client.h"

static const char *certs;
static char pathbuf[8][512];
static int pathi;

static const char *cert(const char *name) {
    char *p = pathbuf[pathi++ % 8];
    snprintf(p, 512, "%s/%s", certs, name);
    return p;
}

static unsigned char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    *len = fread(b, 1, (size_t)n, f);
    fclose(f);
    return b;
}

static void test_arguments(void) {
    const uint8_t pem[] = "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n";
    CHECK_RES(ws_server_set_ssl(NULL, 1), WS_ERR_NULL);
    CHECK_RES(ws_server_set_tls(NULL, NULL), WS_ERR_NULL);
    CHECK_RES(ws_server_reload_tls(NULL, NULL), WS_ERR_NULL);
    CHECK_RES(ws_tls_config_set_cert_file(NULL, "x"), WS_ERR_NULL);
    CHECK_RES(ws_tls_config_set_cert_pem(NULL, pem, sizeof pem), WS_ERR_NULL);
    CHECK_RES(ws_tls_config_set_key_file(NULL, "x", NULL), WS_ERR_NULL);
    CHECK_RES(ws_tls_config_set_key_pem(NULL, pem, sizeof pem, NULL), WS_ERR_NULL);
    CHECK_RES(ws_tls_config_set_ca_file(NULL, "x"), WS_ERR_NULL);
    CHECK_RES(ws_tls_config_set_ca_pem(NULL, pem, sizeof pem), WS_ERR_NULL);
    ws_tls_config_free(NULL);
    CHECK(ws_request_client_subject(NULL) == NULL, "ws_request_client_subject(NULL) == NULL");

    ws_tls_config *cfg = ws_tls_config_new();
    CHECK(cfg != NULL, "ws_tls_config_new");
    CHECK_RES(ws_tls_config_set_cert_file(cfg, NULL), WS_ERR_NULL);
    CHECK_RES(ws_tls_config_set_key_file(cfg, NULL, NULL), WS_ERR_NULL);
    CHECK_RES(ws_tls_config_set_ca_file(cfg, NULL), WS_ERR_NULL);
    CHECK_RES(ws_tls_config_set_cert_pem(cfg, NULL, 10), WS_ERR_NULL);
    CHECK_RES(ws_tls_config_set_key_pem(cfg, NULL, 10, NULL), WS_ERR_NULL);
    CHECK_RES(ws_tls_config_set_ca_pem(cfg, NULL, 10), WS_ERR_NULL);
    CHECK_RES(ws_tls_config_set_cert_file(cfg, "/nonexistent/cert.pem"), WS_ERR_TLS);
    CHECK(strstr(ws_last_error(), "/nonexistent/cert.pem") != NULL, "the message names the file: %s", ws_last_error());
    CHECK_RES(ws_tls_config_set_key_file(cfg, "/nonexistent/key.pem", NULL), WS_ERR_TLS);
    CHECK_RES(ws_tls_config_set_ca_file(cfg, "/nonexistent/ca.pem"), WS_ERR_TLS);
    CHECK_RES(ws_tls_config_set_cert_pem(cfg, pem, sizeof pem - 1), WS_ERR_TLS);
    CHECK_RES(ws_tls_config_set_cert_pem(cfg, (const uint8_t *)"hello", 5), WS_ERR_TLS);
    CHECK_RES(ws_tls_config_set_cert_pem(cfg, pem, 0), WS_ERR_TLS);
    CHECK_RES(ws_tls_config_set_key_pem(cfg, (const uint8_t *)"hello", 5, NULL), WS_ERR_TLS);
    CHECK_RES(ws_tls_config_set_ca_pem(cfg, (const uint8_t *)"hello", 5), WS_ERR_TLS);

    ws_server *srv = ws_server_new(NULL, NULL);
    CHECK_RES(ws_server_set_tls(srv, NULL), WS_ERR_NULL);
    CHECK_RES(ws_server_set_tls(srv, cfg), WS_ERR_TLS); /* no certificate or key */
    CHECK_RES(ws_server_reload_tls(srv, cfg), WS_ERR_TLS);
    CHECK_RES(ws_server_set_ssl(srv, 1), WS_OK);
    CHECK_RES(ws_server_listen(srv, "127.0.0.1", 0), WS_ERR_TLS); /* TLS on, nothing to serve with */
    CHECK_RES(ws_server_set_ssl(srv, 0), WS_OK);
    CHECK_RES(ws_server_listen(srv, "127.0.0.1", 0), WS_OK);
    CHECK_RES(ws_server_set_ssl(srv, 1), WS_ERR_STATE);
    CHECK_RES(ws_server_set_ssl(srv, 0), WS_ERR_STATE);
    ws_server_free(srv);
    ws_tls_config_free(cfg);
}

static ws_tls_config *config(const char *cert_name, const char *key_name, const char *password) {
    ws_tls_config *cfg = ws_tls_config_new();
    CHECK_RES(ws_tls_config_set_cert_file(cfg, cert(cert_name)), WS_OK);
    CHECK_RES(ws_tls_config_set_key_file(cfg, cert(key_name), password), WS_OK);
    return cfg;
}

static void test_with_certificates(void) {
    /* Every key form the header names. */
    struct { const char *cert, *key, *password; } forms[] = {
        {"server.pem", "server.key", NULL},           /* PKCS#8 */
        {"server-rsa.pem", "server-rsa.key", NULL},   /* PKCS#1 */
        {"server-sec1.pem", "server-sec1.key", NULL}, /* SEC1 */
        {"server.pem", "server-enc.key", "secret"},   /* encrypted PKCS#8 */
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        ws_tls_config *cfg = config(forms[i].cert, forms[i].key, forms[i].password);
        ws_server *srv = ws_server_new(NULL, NULL);
        CHECK(ws_server_set_tls(srv, cfg) == WS_OK, "set_tls with %s + %s: %s", forms[i].cert, forms[i].key,
              ws_last_error());
        ws_tls_config_free(cfg); /* the server keeps what it needs */
        CHECK_RES(ws_server_listen(srv, "127.0.0.1", 0), WS_OK);
        ws_server_free(srv);
    }
    /* Wrong or missing password, unusable key type, key of another certificate. */
    ws_tls_config *cfg = ws_tls_config_new();
    CHECK_RES(ws_tls_config_set_key_file(cfg, cert("server-enc.key"), "wrong"), WS_ERR_TLS);
    int r = ws_tls_config_set_key_file(cfg, cert("server-enc.key"), NULL);
    CHECK(r == WS_ERR_TLS, "an encrypted key without a password is refused (%s)", ws_result_name(r));
    CHECK_RES(ws_tls_config_set_cert_file(cfg, cert("server.key")), WS_ERR_TLS); /* a key is no certificate */
    r = ws_tls_config_set_key_file(cfg, cert("ed448.key"), NULL);
    if (r == WS_OK) {
        CHECK_RES(ws_tls_config_set_cert_file(cfg, cert("server.pem")), WS_OK);
        ws_server *srv = ws_server_new(NULL, NULL);
        CHECK_RES(ws_server_set_tls(srv, cfg), WS_ERR_TLS);
        ws_server_free(srv);
    } else {
        CHECK_RES(r, WS_ERR_TLS);
    }
    ws_tls_config_free(cfg);
    cfg = config("server.pem", "server2.key", NULL); /* key of server2.pem */
    ws_server *srv = ws_server_new(NULL, NULL);
    CHECK_RES(ws_server_set_tls(srv, cfg), WS_ERR_TLS);
    ws_server_free(srv);
    ws_tls_config_free(cfg);

    /* PEM from memory, CA for mutual TLS. */
    size_t cl = 0, kl = 0, al = 0;
    unsigned char *c = slurp(cert("server.pem"), &cl), *k = slurp(cert("server.key"), &kl), *a = slurp(cert("ca.pem"), &al);
    CHECK(c && k && a, "certificates readable");
    if (!c || !k || !a) return;
    cfg = ws_tls_config_new();
    CHECK_RES(ws_tls_config_set_cert_pem(cfg, c, cl), WS_OK);
    CHECK_RES(ws_tls_config_set_key_pem(cfg, k, kl, NULL), WS_OK);
    CHECK_RES(ws_tls_config_set_ca_pem(cfg, a, al), WS_OK);
    CHECK_RES(ws_tls_config_set_ca_file(cfg, cert("ca.pem")), WS_OK);
    memset(c, 0, cl); /* copied: the caller's buffers may go */
    free(c);
    free(k);
    free(a);
    srv = ws_server_new(NULL, NULL);
    CHECK_RES(ws_server_set_tls(srv, cfg), WS_OK);
    ws_tls_config_free(cfg);
    CHECK_RES(ws_server_listen(srv, "127.0.0.1", 0), WS_OK);
    uint16_t port = 0;
    ws_server_port(srv, &port);
    /* After listen: set_tls is refused, reload works, a failed reload keeps the old one. */
    ws_tls_config *renewed = config("server2.pem", "server2.key", NULL);
    CHECK_RES(ws_server_set_tls(srv, renewed), WS_ERR_STATE);
    CHECK_RES(ws_server_reload_tls(srv, renewed), WS_OK);
    ws_tls_config *empty = ws_tls_config_new();
    CHECK_RES(ws_server_reload_tls(srv, empty), WS_ERR_TLS);
    ws_tls_config_free(empty);
    /* A plain-text WebSocket client gets no 101 from a TLS listener. */
    wsc w;
    int status = wsc_open(&w, "127.0.0.1", port, "/", NULL, 0, scaled(3000));
    CHECK(status != 101, "plain ws:// to a TLS listener does not upgrade (status %d)", status);
    wsc_free(&w);
    CHECK_RES(ws_server_close(srv, 500), WS_OK);
    ws_server_free(srv);

    /* set_ssl(0) after set_tls: the staged TLS is kept aside and plain ws:// is served. */
    srv = ws_server_new(NULL, NULL);
    CHECK_RES(ws_server_set_tls(srv, renewed), WS_OK);
    CHECK_RES(ws_server_set_ssl(srv, 0), WS_OK);
    CHECK_RES(ws_server_listen(srv, "127.0.0.1", 0), WS_OK);
    ws_server_port(srv, &port);
    status = wsc_open(&w, "127.0.0.1", port, "/", NULL, 0, scaled(3000));
    CHECK(status == 101, "set_ssl(0) serves plain ws:// (status %d)", status);
    wsc_free(&w);
    CHECK_RES(ws_server_reload_tls(srv, renewed), WS_ERR_STATE); /* listening without TLS */
    ws_server_free(srv);

    /* set_ssl(0) then any non-zero value: TLS is on again with the staged configuration. */
    srv = ws_server_new(NULL, NULL);
    CHECK_RES(ws_server_set_tls(srv, renewed), WS_OK);
    CHECK_RES(ws_server_set_ssl(srv, 0), WS_OK);
    CHECK_RES(ws_server_set_ssl(srv, 7), WS_OK);
    CHECK_RES(ws_server_listen(srv, "127.0.0.1", 0), WS_OK);
    CHECK_RES(ws_server_port(srv, &port), WS_OK);
    status = wsc_open(&w, "127.0.0.1", port, "/", NULL, 0, scaled(3000));
    CHECK(status != 101, "set_ssl(0) then set_ssl(7): TLS again, plain ws:// does not upgrade (status %d)", status);
    wsc_free(&w);
    CHECK_RES(ws_server_reload_tls(srv, renewed), WS_OK); /* listening with TLS */
    ws_server_free(srv);

    /* reload_tls on a server listening without TLS: WS_ERR_STATE. */
    srv = ws_server_new(NULL, NULL);
    CHECK_RES(ws_server_reload_tls(srv, renewed), WS_ERR_STATE); /* not listening */
    CHECK_RES(ws_server_listen(srv, "127.0.0.1", 0), WS_OK);
    CHECK_RES(ws_server_reload_tls(srv, renewed), WS_ERR_STATE); /* listening, but without TLS */
    ws_server_free(srv);
    ws_tls_config_free(renewed);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    test_arguments();
    certs = getenv("WSTEST_CERTS");
    if (certs && *certs && access(cert("server.pem"), R_OK) == 0) {
        test_with_certificates();
    } else {
        printf("note: WSTEST_CERTS not set (scripts/make-certs.sh output): certificate tests skipped\n");
    }
    return check_summary("test_tls");
}
