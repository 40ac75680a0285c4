/*
 * tls_echo_server CERT KEY [host] [port] [--key-password PW] [--ca CA_PEM]
 * An echo server over wss://. With --ca, clients must present a certificate
 * from that CA (mutual TLS). Prints "listening on wss://HOST:PORT" when
 * ready; exits 0 on SIGINT/SIGTERM. Try it with `make certs`:
 *   build/examples/tls_echo_server build/certs/server.pem build/certs/server.key
 */
#include "example_common.h"

static ws_server *server;

static void on_message(void *user_data, uint64_t conn, const uint8_t *data, size_t len, ws_kind kind) {
    (void)user_data;
    ws_server_send(server, conn, data, len, kind);
}

static int on_open(void *user_data, uint64_t conn, const ws_request *request) {
    (void)user_data;
    const char *subject = ws_request_client_subject(request);
    if (subject) fprintf(stderr, "#%llu: client certificate %s\n", (unsigned long long)conn, subject);
    return 0;
}

static int usage(const char *argv0) {
    fprintf(stderr, "usage: %s CERT KEY [host] [port] [--key-password PW] [--ca CA_PEM]\n", argv0);
    return 2;
}

/* Loads the TLS material; prints what is wrong and returns -1 on error. */
static int configure_tls(const char *cert, const char *key, const char *password, const char *ca) {
    ws_tls_config *tls = ws_tls_config_new();
    int ok = ws_tls_config_set_cert_file(tls, cert) == WS_OK && ws_tls_config_set_key_file(tls, key, password) == WS_OK &&
             (ca == NULL || ws_tls_config_set_ca_file(tls, ca) == WS_OK) && ws_server_set_tls(server, tls) == WS_OK;
    if (!ok) fprintf(stderr, "tls_echo_server: %s\n", ws_last_error());
    ws_tls_config_free(tls);
    return ok ? 0 : -1;
}

int main(int argc, char **argv) {
    const char *positional[4] = {NULL, NULL, NULL, NULL};
    const char *password = NULL, *ca = NULL;
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--key-password") == 0 && i + 1 < argc) {
            password = argv[++i];
        } else if (strcmp(argv[i], "--ca") == 0 && i + 1 < argc) {
            ca = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1] == '-') {
            return usage(argv[0]);
        } else if (npos < 4) {
            positional[npos++] = argv[i];
        } else {
            return usage(argv[0]);
        }
    }
    if (npos < 2) return usage(argv[0]);
    char *host_port[3] = {argv[0], (char *)positional[2], (char *)positional[3]};
    const char *host;
    uint16_t port;
    sigset_t signals;
    if (example_args(npos - 1, host_port, &host, &port) != 0) return 2;
    if (npos < 3) host = "127.0.0.1";
    example_block_signals(&signals);

    ws_callbacks callbacks = {0};
    callbacks.on_open = on_open;
    callbacks.on_message = on_message;
    callbacks.on_log = example_log;
    server = ws_server_new(&callbacks, NULL);
    ws_server_set_option(server, WS_OPT_LOG_LEVEL, WS_LOG_WARN);
    if (configure_tls(positional[0], positional[1], password, ca) != 0) {
        ws_server_free(server);
        return 1;
    }
    return example_serve(server, "tls_echo_server", "wss", host, port, &signals);
}
