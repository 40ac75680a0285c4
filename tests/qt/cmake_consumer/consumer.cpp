// Listens with both APIs of the installed Qt binding; prints "qt_consumer ok".
#include <wsserver/QtServer.h>

#include "SslHandler.h"
#include "WebsocketServer.h"

#include <QCoreApplication>
#include <cstdio>

int main(int argc, char **argv) {
    QCoreApplication app(argc, argv);
    wsserver::QtServer server;
    WebsocketServer seed;
    if (!server.listen(QHostAddress::LocalHost, 0) || !seed.listen(QHostAddress::LocalHost, 0)) return 1;
    if (server.serverPort() == 0 || seed.serverPort() == 0) return 1;
    server.close();
    seed.close();
    printf("qt_consumer ok (Qt %s, wsserver %s)\n", qVersion(), ws_version());
    return 0;
}
