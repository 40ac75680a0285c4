/* Built by the CMake consumer test against wsserver::wsserver: listens on
 * a free loopback port, checks the version and the bound port, closes.
 * Prints "consumer_c ok <version>" and exits 0, or says what failed. */
#include <stdio.h>
#include <string.h>
#include <wsserver.h>

int main(void) {
    if (strcmp(ws_version(), WS_VERSION_STRING) != 0) {
        printf("consumer_c: library %s, header %s\n", ws_version(), WS_VERSION_STRING);
        return 1;
    }
    ws_server *srv = ws_server_new(NULL, NULL);
    uint16_t port = 0;
    if (srv == NULL || ws_server_listen(srv, "127.0.0.1", 0) != WS_OK || ws_server_port(srv, &port) != WS_OK ||
        port == 0) {
        printf("consumer_c: %s\n", ws_last_error());
        return 1;
    }
    ws_server_close(srv, 100);
    ws_server_free(srv);
    printf("consumer_c ok %s\n", ws_version());
    return 0;
}
