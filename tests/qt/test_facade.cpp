// Seed 000's API (WebsocketServer, IClientEventListener, IWebsocketClient,
// SslHandler) and the examples-qt programs, against Qt's QWebSocket.
#include <wsserver/QtServer.h>

#include "SslHandler.h"
#include "WebsocketServer.h"

#include <QFile>
#include <QProcess>
#include <QSignalSpy>
#include <QSslConfiguration>
#include <QWebSocket>
#include <QtTest>
#include <QTcpSocket>

#include <string>
#include <vector>

namespace {
QByteArray certs(const char *name) { return (qEnvironmentVariable("WSSERVER_CERTS") + "/" + name).toLocal8Bit(); }
QUrl url(quint16 port, const char *scheme = "ws", const char *host = "127.0.0.1") {
    return QUrl(QStringLiteral("%1://%2:%3/").arg(scheme, host).arg(port));
}
bool open(QWebSocket &ws, const QUrl &u, int ms = 5000) {
    QSignalSpy connected(&ws, &QWebSocket::connected);
    QSignalSpy gone(&ws, &QWebSocket::disconnected);
    ws.open(u);
    QElapsedTimer t;
    t.start();
    while (connected.isEmpty() && gone.isEmpty() && t.elapsed() < ms) QTest::qWait(5);
    return !connected.isEmpty();
}
QSslConfiguration trustingCa() {
    QSslConfiguration ssl = QSslConfiguration::defaultConfiguration();
    ssl.setCaCertificates(SslHandler::retrieveveCaCertListFromFile(certs("ca.pem").constData()));
    return ssl;
}

// The seed's README listener: answers every message.
struct Handler : IClientEventListener {
    std::vector<unsigned long long> connected, closed;
    std::vector<std::string> messages;
    int lastSend = -100;
    void onClientConnection(IWebsocketClient &client) override { connected.push_back(client.id()); }
    void onMessageReceivedFromClient(IWebsocketClient &client, std::string message) override {
        messages.push_back(message);
        if (message == "close me") {
            client.close(4000, "as asked");
            return;
        }
        lastSend = client.sendMessage("OK I received your message !");
    }
    void onClientClose(IWebsocketClient &client) override { closed.push_back(client.id()); }
};

// Runs an examples-qt program; waits for its "listening on" line.
struct Example {
    QProcess proc;
    quint16 port = 0;
    bool start(const QString &program, const QStringList &args) {
        proc.setProgram(program);
        proc.setArguments(args);
        proc.setProcessChannelMode(QProcess::SeparateChannels);
        proc.start();
        if (!proc.waitForStarted(5000)) return false;
        QElapsedTimer t;
        t.start();
        while (t.elapsed() < 10000) {
            if (proc.canReadLine()) {
                const QString line = QString::fromUtf8(proc.readLine()).trimmed();
                const int colon = line.lastIndexOf(':');
                if (line.startsWith("listening on ")) {
                    port = quint16(line.mid(colon + 1).toUInt());
                    return port != 0;
                }
            } else if (!proc.waitForReadyRead(100) && proc.state() != QProcess::Running) {
                return false;
            }
        }
        return false;
    }
    // SIGTERM: the example closes and exits 0.
    bool stop() {
        proc.terminate();
        return proc.waitForFinished(10000) && proc.exitStatus() == QProcess::NormalExit && proc.exitCode() == 0;
    }
    ~Example() {
        if (proc.state() != QProcess::NotRunning) {
            proc.kill();
            proc.waitForFinished(3000);
        }
    }
};
} // namespace

class TestFacade : public QObject {
    Q_OBJECT
private slots:
    void initTestCase() { QVERIFY2(QFile::exists(certs("ca.pem")), "WSSERVER_CERTS must name a make-certs.sh directory"); }

    // The seed's flow: listener added, listen, a message answered, close.
    void plain() {
        WebsocketServer server;
        Handler h;
        server.addClientEventListener(&h);
        QVERIFY2(server.listen(QHostAddress("127.0.0.1"), 0), qPrintable(server.errorString()));
        QVERIFY(server.isListening());
        QWebSocket ws;
        QVERIFY(open(ws, url(server.serverPort())));
        QTRY_COMPARE_WITH_TIMEOUT(h.connected.size(), size_t(1), 5000);
        QSignalSpy got(&ws, &QWebSocket::textMessageReceived);
        ws.sendTextMessage(QString::fromUtf8("hello \xc3\xa9"));
        QVERIFY(got.wait(5000));
        QCOMPARE(got.at(0).at(0).toString(), QString("OK I received your message !"));
        QCOMPARE(h.messages.at(0), std::string("hello \xc3\xa9"));
        QCOMPARE(h.lastSend, 0);
        // Binary messages reach the listener as their bytes.
        ws.sendBinaryMessage(QByteArray("\x01\x02", 2));
        QTRY_COMPARE_WITH_TIMEOUT(h.messages.size(), size_t(2), 5000);
        QCOMPARE(h.messages.at(1), std::string("\x01\x02", 2));
        // IWebsocketClient::close from the listener.
        QSignalSpy gone(&ws, &QWebSocket::disconnected);
        ws.sendTextMessage("close me");
        QVERIFY(gone.wait(5000));
        QCOMPARE(int(ws.closeCode()), 4000);
        QTRY_COMPARE_WITH_TIMEOUT(h.closed.size(), size_t(1), 5000);
        QCOMPARE(h.closed.at(0), h.connected.at(0));
        // close(): 1001 to the clients, onClientClose for each.
        QWebSocket a, b;
        QVERIFY(open(a, url(server.serverPort())) && open(b, url(server.serverPort())));
        QTRY_COMPARE_WITH_TIMEOUT(h.connected.size(), size_t(3), 5000);
        QSignalSpy aGone(&a, &QWebSocket::disconnected);
        server.close();
        QCOMPARE(h.closed.size(), size_t(3));
        QTRY_VERIFY_WITH_TIMEOUT(!aGone.isEmpty(), 5000);
        QCOMPARE(int(a.closeCode()), 1001);
    }

    void listenFails() {
        WebsocketServer first, second;
        QVERIFY(first.listen(QHostAddress::LocalHost, 0));
        QVERIFY(!second.listen(QHostAddress::LocalHost, first.serverPort()));
        QVERIFY(!second.errorString().isEmpty());
        WebsocketServer tls;
        tls.setSSL(true); // no certificate set
        QVERIFY(!tls.listen(QHostAddress::LocalHost, 0));
        QVERIFY(!tls.errorString().isEmpty());
    }

    // setSSL + the SslHandler helpers, as in the seed's README (encrypted key).
    void ssl() {
        QVERIFY(!SslHandler::retrieveCertFromFile(certs("server.pem").constData()).isNull());
        QVERIFY(SslHandler::retrieveKeyCertFile(certs("server-enc.key").constData(), "wrong").isNull());
        QVERIFY(SslHandler::retrieveCertFromFile("/nonexistent").isNull());
        QCOMPARE(SslHandler::retrieveveCaCertListFromFile(certs("ca.pem").constData()).size(), 1);
        WebsocketServer server;
        Handler h;
        server.setSSL(true);
        server.setPublicCert(SslHandler::retrieveCertFromFile(certs("server.pem").constData()));
        server.setPrivateCert(SslHandler::retrieveKeyCertFile(certs("server-enc.key").constData(), "secret"));
        server.addClientEventListener(&h);
        QVERIFY2(server.listen(QHostAddress("127.0.0.1"), 0), qPrintable(server.errorString()));
        QWebSocket ws;
        ws.setSslConfiguration(trustingCa());
        QVERIFY(open(ws, url(server.serverPort(), "wss", "localhost")));
        QSignalSpy got(&ws, &QWebSocket::textMessageReceived);
        ws.sendTextMessage("over tls");
        QVERIFY(got.wait(5000));
        QCOMPARE(h.messages.at(0), std::string("over tls"));
        QWebSocket plain; // ws:// to a wss:// server fails
        QVERIFY(!open(plain, url(server.serverPort())));
    }

    // setCaCert: mutual TLS; with the client certificate, and without it.
    void caCertMutualTls() {
        WebsocketServer server;
        Handler h;
        server.setSSL(true);
        server.setPublicCert(SslHandler::retrieveCertFromFile(certs("server.pem").constData()));
        server.setPrivateCert(SslHandler::retrieveKeyCertFile(certs("server.key").constData(), ""));
        server.setCaCert(SslHandler::retrieveveCaCertListFromFile(certs("ca.pem").constData()));
        server.addClientEventListener(&h);
        QVERIFY2(server.listen(QHostAddress("127.0.0.1"), 0), qPrintable(server.errorString()));
        QWebSocket anonymous;
        anonymous.setSslConfiguration(trustingCa());
        QVERIFY(!open(anonymous, url(server.serverPort(), "wss", "localhost")));
        QCOMPARE(h.connected.size(), size_t(0));
        QSslConfiguration c = trustingCa();
        c.setLocalCertificate(SslHandler::retrieveCertFromFile(certs("client.pem").constData()));
        c.setPrivateKey(SslHandler::retrieveKeyCertFile(certs("client.key").constData(), nullptr));
        QWebSocket alice;
        alice.setSslConfiguration(c);
        QVERIFY(open(alice, url(server.serverPort(), "wss", "localhost")));
        QTRY_COMPARE_WITH_TIMEOUT(h.connected.size(), size_t(1), 5000);
    }

    // examples-qt/seed000_chat: two QWebSocket clients chat through it.
    void chatExample_data() {
        QTest::addColumn<bool>("tls");
        QTest::newRow("ws") << false;
        QTest::newRow("wss") << true;
    }
    void chatExample() {
        QFETCH(bool, tls);
        Example chat;
        QStringList args{"127.0.0.1", "0"};
        if (tls) args << certs("server.pem") << certs("server.key");
        QVERIFY2(chat.start(QStringLiteral(CHAT_EXAMPLE), args), chat.proc.readAllStandardError().constData());
        QWebSocket a, b;
        if (tls) {
            a.setSslConfiguration(trustingCa());
            b.setSslConfiguration(trustingCa());
        }
        const char *scheme = tls ? "wss" : "ws";
        if (!tls) {
            // The page comes from the same port, over plain HTTP.
            QTcpSocket http;
            http.connectToHost(QHostAddress::LocalHost, chat.port);
            QVERIFY(http.waitForConnected(5000));
            http.write("GET /chat.html HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
            QByteArray page;
            while (http.waitForReadyRead(5000)) page += http.readAll();
            QVERIFY2(page.startsWith("HTTP/1.1 200"), page.left(200).constData());
            QVERIFY2(page.contains("Content-Type: text/html"), page.left(300).constData());
            QVERIFY2(page.contains("new WebSocket("), "the chat page's script");
        }
        QVERIFY(open(a, url(chat.port, scheme, "localhost")));
        QVERIFY(open(b, url(chat.port, scheme, "localhost")));
        QSignalSpy ga(&a, &QWebSocket::textMessageReceived), gb(&b, &QWebSocket::textMessageReceived);
        a.sendTextMessage("hello from a");
        QTRY_COMPARE_WITH_TIMEOUT(ga.count() + gb.count(), 2, 5000);
        QVERIFY2(gb.at(0).at(0).toString().endsWith(": hello from a"), qPrintable(gb.at(0).at(0).toString()));
        QCOMPARE(ga.at(0).at(0).toString(), gb.at(0).at(0).toString()); // the sender too
        QSignalSpy aGone(&a, &QWebSocket::disconnected);
        QVERIFY(chat.stop());
        QTRY_VERIFY_WITH_TIMEOUT(!aGone.isEmpty(), 5000);
        QCOMPARE(int(a.closeCode()), 1001);
        const QByteArray out = chat.proc.readAllStandardOutput();
        QVERIFY2(out.contains("Client socket message received : hello from a"), out.constData());
    }

    // examples-qt/echo_server.cpp: echoes on "/", refuses other paths.
    void echoExample() {
        Example echo;
        QVERIFY(echo.start(QStringLiteral(ECHO_EXAMPLE), {"127.0.0.1", "0"}));
        QWebSocket ws, refused;
        QVERIFY(open(ws, url(echo.port)));
        QSignalSpy got(&ws, &QWebSocket::binaryMessageReceived);
        ws.sendBinaryMessage(QByteArray(70000, 'z'));
        QVERIFY(got.wait(5000));
        QCOMPARE(got.at(0).at(0).toByteArray(), QByteArray(70000, 'z'));
        QVERIFY(!open(refused, QUrl(QStringLiteral("ws://127.0.0.1:%1/other").arg(echo.port))));
        QVERIFY(echo.stop());
    }
};

QTEST_GUILESS_MAIN(TestFacade)
#include "test_facade.moc"
