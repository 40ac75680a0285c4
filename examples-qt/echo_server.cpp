// An echo server on wsserver::QtServer, on the Qt event loop:
//   qt_echo_server [IP [PORT]]      (default 127.0.0.1 8080; port 0 picks one)
// Refuses paths other than "/" and "/echo" with 404 from the newConnection
// slot; SIGINT/SIGTERM close the server and exit 0.
#include <wsserver/QtServer.h>

#include <QCoreApplication>

#include <cstdio>

#include "seed000_chat/StopOnSignal.h"

int main(int argc, char *argv[]) {
    QCoreApplication app(argc, argv);
    const QString ip = argc > 1 ? QString(argv[1]) : QStringLiteral("127.0.0.1");
    const quint16 port = argc > 2 ? quint16(QString(argv[2]).toUInt()) : 8080;

    wsserver::QtServer server;
    QObject::connect(&server, &wsserver::QtServer::newConnection, &server, [&](quint64 id, const QString &path) {
        if (path != "/" && path != "/echo") server.refuse(id, 404); // else accepted when the slot returns
    });
    QObject::connect(&server, &wsserver::QtServer::textMessageReceived, &server,
                     [&](quint64 id, const QString &text) { server.sendText(id, text); });
    QObject::connect(&server, &wsserver::QtServer::binaryMessageReceived, &server,
                     [&](quint64 id, const QByteArray &data) { server.sendBinary(id, data); });
    if (!server.listen(QHostAddress(ip), port)) {
        fprintf(stderr, "listen: %s\n", qPrintable(server.errorString()));
        return 1;
    }
    printf("listening on ws://%s:%u\n", qPrintable(ip), unsigned(server.serverPort()));
    fflush(stdout);
    installStopOnSignal(app);
    const int rc = app.exec();
    server.close();
    return rc;
}
