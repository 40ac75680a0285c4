/*
 * Every TLS configuration error through the C ABI: the call that can know
 * it returns WS_ERR_TLS (or WS_ERR_NULL / WS_ERR_STATE) with a message that
 * names the file and the reason. Usage: tls_config_errors CERTDIR
 */
#include <stdio.h>
#include <string.h>

#include "wsserver.h"

static int passed, failed;
static char dir[512];

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        if (cond) {                                                        \
            passed++;                                                      \
        } else {                                                           \
            failed++;                                                      \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                  \
            fprintf(stderr, "\n");                                         \
        }                                                                  \
    } while (0)

static const char *path(const char *name) {
    static char buf[8][600];
    static int i;
    i = (i + 1) % 8;
    snprintf(buf[i], sizeof buf[i], "%s/%s", dir, name);
    return buf[i];
}

/* The call returned `want` and ws_last_error() contains every needle. */
static void expect(ws_result got, ws_result want, const char *needle1, const char *needle2, const char *what) {
    const char *msg = ws_last_error();
    CHECK(got == want, "%s: got %s, want %s (%s)", what, ws_result_name(got), ws_result_name(want), msg);
    if (needle1) CHECK(strstr(msg, needle1) != NULL, "%s: '%s' lacks '%s'", what, msg, needle1);
    if (needle2) CHECK(strstr(msg, needle2) != NULL, "%s: '%s' lacks '%s'", what, msg, needle2);
}

static ws_tls_config *good_config(void) {
    ws_tls_config *c = ws_tls_config_new();
    expect(ws_tls_config_set_cert_file(c, path("server.pem")), WS_OK, NULL, NULL, "good config: cert");
    expect(ws_tls_config_set_key_file(c, path("server.key"), NULL), WS_OK, NULL, NULL, "good config: key");
    return c;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s CERTDIR\n", argv[0]);
        return 2;
    }
    snprintf(dir, sizeof dir, "%s", argv[1]);
    ws_tls_config *c = ws_tls_config_new();

    /* NULL arguments */
    expect(ws_tls_config_set_cert_file(NULL, path("server.pem")), WS_ERR_NULL, "cfg", NULL, "NULL cfg");
    expect(ws_tls_config_set_cert_file(c, NULL), WS_ERR_NULL, "path", NULL, "NULL path");
    expect(ws_tls_config_set_cert_pem(c, NULL, 10), WS_ERR_NULL, "pem", NULL, "NULL pem");
    expect(ws_server_set_tls(NULL, c), WS_ERR_NULL, "srv", NULL, "NULL srv");

    /* certificate: missing file, no certificate in it, garbage in memory */
    expect(ws_tls_config_set_cert_file(c, path("missing.pem")), WS_ERR_TLS, "missing.pem", "No such file",
           "missing cert file");
    expect(ws_tls_config_set_cert_file(c, path("server.key")), WS_ERR_TLS, "server.key", "no certificate",
           "key file given as cert");
    static const char junk[] = "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n";
    expect(ws_tls_config_set_cert_pem(c, (const uint8_t *)junk, sizeof junk - 1), WS_ERR_TLS, "certificate PEM",
           NULL, "malformed cert PEM");
    expect(ws_tls_config_set_ca_file(c, path("nope-ca.pem")), WS_ERR_TLS, "nope-ca.pem", NULL, "missing CA");

    /* key: missing, none in file, wrong/no password, unsupported type */
    expect(ws_tls_config_set_key_file(c, path("missing.key"), NULL), WS_ERR_TLS, "missing.key", NULL, "missing key");
    expect(ws_tls_config_set_key_file(c, path("server.pem"), NULL), WS_ERR_TLS, "server.pem", "no private key",
           "cert given as key");
    expect(ws_tls_config_set_key_file(c, path("server-enc.key"), "wrong"), WS_ERR_TLS, "server-enc.key",
           "wrong password", "wrong password");
    expect(ws_tls_config_set_key_file(c, path("server-enc.key"), NULL), WS_ERR_TLS, "server-enc.key", "encrypted",
           "missing password");
    expect(ws_tls_config_set_key_file(c, path("ed448.key"), NULL), WS_ERR_TLS, "ed448.key", "unsupported key type",
           "ed448 key");

    /* incomplete configuration, then a key that does not match */
    ws_server *srv = ws_server_new(NULL, NULL);
    expect(ws_server_set_tls(srv, c), WS_ERR_TLS, "no certificate", NULL, "empty config");
    expect(ws_tls_config_set_cert_file(c, path("server.pem")), WS_OK, NULL, NULL, "good cert");
    expect(ws_tls_config_set_key_file(c, path("server-enc.key"), "secret"), WS_OK, NULL, NULL, "right password");
    expect(ws_tls_config_set_key_file(c, path("server2.key"), NULL), WS_OK, NULL, NULL, "another key");
    expect(ws_server_set_tls(srv, c), WS_ERR_TLS, "server2.key", "does not match", "mismatched key");

    /* set_ssl without a configuration fails at listen, not at a handshake */
    expect(ws_server_set_ssl(srv, 1), WS_OK, NULL, NULL, "set_ssl on");
    expect(ws_server_listen(srv, "127.0.0.1", 0), WS_ERR_TLS, "no certificate", NULL, "listen without cert");
    ws_server_free(srv);

    /* in-memory PEM, every key form, then the state rules */
    ws_tls_config *g = good_config();
    FILE *f = fopen(path("server-rsa.key"), "rb");
    char pem[8192];
    size_t n = f ? fread(pem, 1, sizeof pem, f) : 0;
    if (f) fclose(f);
    expect(ws_tls_config_set_key_pem(c, (const uint8_t *)pem, n, NULL), WS_OK, NULL, NULL, "RSA key from memory");
    expect(ws_tls_config_set_key_file(c, path("server-sec1.key"), NULL), WS_OK, NULL, NULL, "SEC1 key");
    srv = ws_server_new(NULL, NULL);
    expect(ws_server_reload_tls(srv, g), WS_ERR_STATE, "listening", NULL, "reload before listen");
    expect(ws_server_set_tls(srv, g), WS_OK, NULL, NULL, "set_tls");
    expect(ws_server_listen(srv, "127.0.0.1", 0), WS_OK, NULL, NULL, "listen with TLS");
    expect(ws_server_set_tls(srv, g), WS_ERR_STATE, NULL, NULL, "set_tls after listen");
    expect(ws_server_set_ssl(srv, 0), WS_ERR_STATE, NULL, NULL, "set_ssl after listen");
    expect(ws_server_reload_tls(srv, c), WS_ERR_TLS, "does not match", NULL, "failed reload");
    expect(ws_server_reload_tls(srv, g), WS_OK, NULL, NULL, "good reload");
    ws_server_free(srv);

    /* a plain server cannot reload TLS */
    srv = ws_server_new(NULL, NULL);
    expect(ws_server_listen(srv, "127.0.0.1", 0), WS_OK, NULL, NULL, "plain listen");
    expect(ws_server_reload_tls(srv, g), WS_ERR_STATE, "not started with TLS", NULL, "reload on plain server");
    ws_server_free(srv);

    ws_tls_config_free(g);
    ws_tls_config_free(c);
    ws_tls_config_free(NULL);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
