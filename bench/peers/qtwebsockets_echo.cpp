// QtWebSockets peer for the wsserver benchmark (the qtwebsockets row).
//
//   qtwebsockets_echo PORT [--broadcast]
//
// The plain QWebSocketServer echo on one Qt event loop (QCoreApplication),
// default settings: every message goes back to its sender with the same
// kind; broadcast mode relays every text message to every connected
// client. A QTcpServer accepts and hands each socket to the
// QWebSocketServer (handleConnection), so TCP_NODELAY can be set on it as
// on every other peer. SIGINT/SIGTERM quit.
#include <QCoreApplication>
#include <QHostAddress>
#include <QList>
#include <QTcpServer>
#include <QTcpSocket>
#include <QWebSocket>
#include <QWebSocketServer>

#include <csignal>
#include <cstdio>
#include <cstring>

static void quit(int) { QCoreApplication::quit(); }

int main(int argc, char *argv[]) {
    QCoreApplication app(argc, argv);
    if (argc < 2) {
        fprintf(stderr, "usage: %s PORT [--broadcast]\n", argv[0]);
        return 2;
    }
    const quint16 port = quint16(atoi(argv[1]));
    const bool broadcast = argc > 2 && strcmp(argv[2], "--broadcast") == 0;

    QWebSocketServer ws(QStringLiteral("qtwebsockets_echo"), QWebSocketServer::NonSecureMode);
    QList<QWebSocket *> clients;
    QObject::connect(&ws, &QWebSocketServer::newConnection, [&]() {
        while (QWebSocket *c = ws.nextPendingConnection()) {
            clients.append(c);
            if (broadcast) {
                QObject::connect(c, &QWebSocket::textMessageReceived, [&clients](const QString &m) {
                    for (QWebSocket *o : clients) o->sendTextMessage(m);
                });
            } else {
                QObject::connect(c, &QWebSocket::textMessageReceived, c, &QWebSocket::sendTextMessage);
                QObject::connect(c, &QWebSocket::binaryMessageReceived, c, &QWebSocket::sendBinaryMessage);
            }
            QObject::connect(c, &QWebSocket::disconnected, [c, &clients]() {
                clients.removeOne(c);
                c->deleteLater();
            });
        }
    });

    QTcpServer tcp;
    tcp.setMaxPendingConnections(1 << 16);
    QObject::connect(&tcp, &QTcpServer::newConnection, [&]() {
        while (QTcpSocket *s = tcp.nextPendingConnection()) {
            s->setSocketOption(QAbstractSocket::LowDelayOption, 1);
            ws.handleConnection(s); // ws takes ownership
        }
    });
    if (!tcp.listen(QHostAddress::LocalHost, port)) {
        fprintf(stderr, "listen: %s\n", qPrintable(tcp.errorString()));
        return 1;
    }
    printf("qtwebsockets_echo (Qt %s) on ws://127.0.0.1:%u%s\n", qVersion(), unsigned(port),
           broadcast ? " (broadcast)" : "");
    fflush(stdout);
    signal(SIGINT, quit);
    signal(SIGTERM, quit);
    return app.exec();
}
