// Seed 000's chat server on the WebsocketServer facade (bindings/qt):
//   seed000_chat IP PORT                        ws://
//   seed000_chat IP PORT CERT KEY [CA]          wss:// (CA: clients need a certificate from it)
// The key's password, if any, comes from $WSSERVER_KEY_PASSWORD. The chat
// page (chat.html, next to this file; $WSSERVER_WEB names another
// directory) is served from the same port: open the "page:" address it
// prints. SIGINT/SIGTERM close the server (1001 to every client) and exit 0.
#include <QCoreApplication>

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include <wsserver/QtServer.h>

#include "ClientSocketHandler.h"
#include "SslHandler.h"
#include "StopOnSignal.h"
#include "WebsocketServer.h"

int main(int argc, char *argv[]) {
    QCoreApplication app(argc, argv);
    if (argc != 3 && argc != 5 && argc != 6) {
        std::cerr << "usage: " << argv[0] << " IP PORT [CERT KEY [CA]]" << std::endl;
        return 2;
    }
    const char *ip = argv[1];
    const int port = atoi(argv[2]);
    const bool ssl = argc >= 5;

    WebsocketServer server;
    ClientSocketHandler *clientHandler = new ClientSocketHandler();
    if (ssl) {
        const char *pass = getenv("WSSERVER_KEY_PASSWORD");
        server.setSSL(true);
        server.setPublicCert(SslHandler::retrieveCertFromFile(argv[3]));
        server.setPrivateCert(SslHandler::retrieveKeyCertFile(argv[4], pass ? pass : ""));
        if (argc == 6) server.setCaCert(SslHandler::retrieveveCaCertListFromFile(argv[5]));
    }
    server.addClientEventListener(clientHandler);
    // The page and the WebSocket share the port (the library serves plain HTTP).
    const char *web = getenv("WSSERVER_WEB");
    const QString pages = web ? QString::fromUtf8(web) : QStringLiteral(SEED000_CHAT_WEB);
    const bool page = server.qtServer().setStaticDir(pages);
    if (!page) std::cerr << "no chat page: " << server.qtServer().errorString().toStdString() << std::endl;

    bool success = server.listen(QHostAddress(ip), quint16(port));
    if (!success) {
        std::cerr << "listen failed: " << server.errorString().toStdString() << std::endl;
        return 1;
    }
    std::cout << "listening on " << (ssl ? "wss" : "ws") << "://" << ip << ":" << server.serverPort() << std::endl;
    if (page) std::cout << "page: " << (ssl ? "https" : "http") << "://" << ip << ":" << server.serverPort() << "/chat.html" << std::endl;
    installStopOnSignal(app);
    int rc = app.exec();
    server.close();
    delete clientHandler;
    return rc;
}
