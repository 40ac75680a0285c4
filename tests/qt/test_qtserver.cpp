// The QObject server (wsserver::QtServer) against Qt's own QWebSocket
// client, in one real event loop on the test's thread. Certificates come
// from scripts/make-certs.sh, run by tests/qt/run.sh into $WSSERVER_CERTS.
#include <wsserver/QtServer.h>

#include <QElapsedTimer>
#include <QFile>
#include <QDir>
#include <QNetworkAccessManager>
#include <QNetworkProxy>
#include <QNetworkReply>
#include <QNetworkRequest>
#include <QProcess>
#include <QTemporaryDir>
#include <QSignalSpy>
#include <QSslConfiguration>
#include <QTcpServer>
#include <QTcpSocket>
#include <QTimer>
#include <QWebSocket>
#include <QtTest>

#include <memory>
#include <vector>

using wsserver::QtServer;
using wsserver::QtTlsConfig;

namespace {
QString certs(const char *name) { return qEnvironmentVariable("WSSERVER_CERTS") + "/" + name; }
QSslCertificate cert(const char *name) { return QSslCertificate::fromPath(certs(name)).value(0); }
QSslKey ecKey(const char *name) {
    QFile f(certs(name));
    if (!f.open(QIODevice::ReadOnly)) return QSslKey();
    return QSslKey(f.readAll(), QSsl::Ec);
}
QUrl url(const QtServer &s, const QString &path = "/", const char *scheme = "ws", const char *host = "127.0.0.1") {
    return QUrl(QStringLiteral("%1://%2:%3%4").arg(scheme, host).arg(s.serverPort()).arg(path));
}
// Echo server: accepts everything (the default mode), echoes both kinds.
void echo(QtServer &s) {
    QObject::connect(&s, &QtServer::textMessageReceived, &s, [&s](quint64 id, const QString &t) { s.sendText(id, t); });
    QObject::connect(&s, &QtServer::binaryMessageReceived, &s,
                     [&s](quint64 id, const QByteArray &b) { s.sendBinary(id, b); });
}
// One HTTP exchange with QNetworkAccessManager (no proxy): status, body,
// headers; status 0 when no answer came in time.
struct HttpReply {
    int status = 0;
    QByteArray body;
    QNetworkReply::NetworkError error = QNetworkReply::NoError;
    QList<QNetworkReply::RawHeaderPair> headers;
    QByteArray header(const QByteArray &name) const {
        for (const auto &h : headers)
            if (h.first.compare(name, Qt::CaseInsensitive) == 0) return h.second;
        return QByteArray();
    }
};
HttpReply http(QNetworkAccessManager &nam, const QUrl &u, const QByteArray &method = "GET",
               const QByteArray &body = QByteArray(), const QList<QPair<QByteArray, QByteArray>> &extra = {}) {
    QNetworkRequest req(u);
    for (const auto &h : extra) req.setRawHeader(h.first, h.second);
    if (!body.isEmpty()) req.setHeader(QNetworkRequest::ContentTypeHeader, "application/octet-stream");
    QNetworkReply *reply = nam.sendCustomRequest(req, method, body);
    QSignalSpy done(reply, &QNetworkReply::finished);
    HttpReply r;
    if (done.isEmpty() && !done.wait(5000)) {
        reply->abort();
        reply->deleteLater();
        return r;
    }
    r.status = reply->attribute(QNetworkRequest::HttpStatusCodeAttribute).toInt();
    r.body = reply->readAll();
    r.error = reply->error();
    r.headers = reply->rawHeaderPairs();
    reply->deleteLater();
    return r;
}
// Reads one HTTP answer (head, then Content-Length bytes) from a raw socket,
// spinning this thread's loop (the server runs on it); "" when none came.
QByteArray readAnswer(QTcpSocket &s, QByteArray &pending, int ms = 5000) {
    QElapsedTimer t;
    t.start();
    while (t.elapsed() < ms) {
        pending += s.readAll();
        const int end = pending.indexOf("\r\n\r\n");
        if (end >= 0) {
            qint64 length = 0;
            for (const QByteArray &line : pending.left(end).split('\n'))
                if (line.toLower().startsWith("content-length:")) length = line.mid(15).trimmed().toLongLong();
            if (pending.size() >= end + 4 + length) {
                QByteArray one = pending.left(int(end + 4 + length));
                pending.remove(0, one.size());
                return one;
            }
        }
        QTest::qWait(5);
    }
    return QByteArray();
}
// Opens a connection and waits for it (true) or for its failure (false).
bool open(QWebSocket &ws, const QUrl &u, int ms = 5000) {
    QSignalSpy connected(&ws, &QWebSocket::connected);
    QSignalSpy gone(&ws, &QWebSocket::disconnected);
    ws.open(u);
    QElapsedTimer t;
    t.start();
    while (connected.isEmpty() && gone.isEmpty() && t.elapsed() < ms) QTest::qWait(5);
    return !connected.isEmpty();
}
// Raw HTTP upgrade: the status line the server answers with.
QByteArray rawStatus(quint16 port, const QByteArray &path) {
    QTcpSocket s;
    s.connectToHost(QHostAddress::LocalHost, port);
    if (!s.waitForConnected(3000)) return "no connection";
    s.write("GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    QElapsedTimer t;
    t.start();
    while (!s.canReadLine() && t.elapsed() < 5000) QTest::qWait(5); // the server runs on this thread
    return s.readLine().trimmed();
}
// Raw HTTP upgrade with `extra` header lines: the whole answer, head and
// body (Content-Length bytes), or "" when none came in time.
QByteArray rawAnswer(quint16 port, const QByteArray &path, const QByteArray &extra = QByteArray()) {
    QTcpSocket s;
    s.connectToHost(QHostAddress::LocalHost, port);
    if (!s.waitForConnected(3000)) return QByteArray();
    s.write("GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" + extra + "\r\n");
    QByteArray got;
    QElapsedTimer t;
    t.start();
    while (t.elapsed() < 5000) {
        QTest::qWait(5); // the server runs on this thread
        got += s.readAll();
        const int end = got.indexOf("\r\n\r\n");
        if (end < 0) continue;
        qint64 length = 0;
        for (const QByteArray &line : got.left(end).split('\n'))
            if (line.toLower().startsWith("content-length:")) length = line.mid(15).trimmed().toLongLong();
        if (got.size() >= end + 4 + length) return got;
    }
    return QByteArray();
}
// The value of header `name` in a raw answer's head (null when absent).
QByteArray answerHeader(const QByteArray &answer, const QByteArray &name) {
    const QByteArray head = answer.left(answer.indexOf("\r\n\r\n"));
    for (const QByteArray &line : head.split('\n')) {
        const int colon = line.indexOf(':');
        if (colon > 0 && line.left(colon).trimmed().toLower() == name.toLower()) return line.mid(colon + 1).trimmed();
    }
    return QByteArray();
}
QByteArray answerBody(const QByteArray &answer) { return answer.mid(answer.indexOf("\r\n\r\n") + 4); }
} // namespace

class TestQtServer : public QObject {
    Q_OBJECT
private slots:
    void initTestCase() {
        QVERIFY2(QFile::exists(certs("ca.pem")), "WSSERVER_CERTS must name a scripts/make-certs.sh directory");
        QVERIFY(QSslSocket::supportsSsl());
    }

    // Text round trip; the request as newConnection and currentRequest see it.
    void textAndRequest() {
        QtServer s;
        echo(s);
        wsserver::QtRequest seen;
        QtServer::AcceptMode modeSeen = QtServer::Manual;
        connect(&s, &QtServer::newConnection, &s,
                [&](quint64 id, const QString &path, const wsserver::QtHeaders &headers, const QString &peer) {
                    seen = s.currentRequest();
                    QCOMPARE(seen.id, id);
                    QCOMPARE(seen.path, path);
                    QCOMPARE(seen.headers, headers);
                    QCOMPARE(seen.peer, peer);
                    modeSeen = s.acceptMode();
                });
        QVERIFY2(s.listen(QHostAddress::LocalHost, 0), qPrintable(s.errorString()));
        QVERIFY(s.isListening());
        QVERIFY(s.serverPort() != 0);
        QWebSocket ws;
        QNetworkRequest req(url(s, "/chat?room=1"));
        req.setRawHeader("X-Test", "42");
        QSignalSpy connected(&ws, &QWebSocket::connected);
        ws.open(req);
        QVERIFY(connected.wait(5000));
        QCOMPARE(modeSeen, QtServer::AcceptAfterSignal);
        QCOMPARE(seen.path, QString("/chat"));
        QCOMPARE(seen.query, QString("room=1"));
        QCOMPARE(seen.header("x-test"), QByteArray("42"));
        QVERIFY(!seen.header("Host").isEmpty());
        QVERIFY(seen.header("Missing").isNull());
        QVERIFY2(seen.peer.startsWith("127.0.0.1:"), qPrintable(seen.peer));
        QVERIFY(s.currentRequest().id == 0); // only during the signal
        QSignalSpy got(&ws, &QWebSocket::textMessageReceived);
        const QString text = QString::fromUtf8("h\xc3\xa9llo \xe2\x82\xac");
        ws.sendTextMessage(text);
        QVERIFY(got.wait(5000));
        QCOMPARE(got.takeFirst().at(0).toString(), text);
    }

    void binary() {
        QtServer s;
        echo(s);
        QSignalSpy srvGot(&s, &QtServer::binaryMessageReceived);
        QVERIFY(s.listen(QHostAddress::LocalHost, 0));
        QWebSocket ws;
        QVERIFY(open(ws, url(s)));
        QByteArray data(200000, '\0');
        for (int i = 0; i < data.size(); ++i) data[i] = char(i * 7);
        QSignalSpy got(&ws, &QWebSocket::binaryMessageReceived);
        ws.sendBinaryMessage(data);
        QVERIFY(got.wait(5000));
        QCOMPARE(got.takeFirst().at(0).toByteArray(), data);
        QCOMPARE(srvGot.count(), 1);
        QCOMPARE(srvGot.at(0).at(1).toByteArray().size(), data.size());
    }

    // Deflate on: QWebSocket offers no extension, so it gets plain frames;
    // both send flavours reach it (compress=false included).
    void deflateWithAClientWithout() {
        QtServer s;
        QVERIFY(s.setOption(WS_OPT_DEFLATE, 1));
        ws_result plainResult = WS_ERR_PANIC, rawResult = WS_ERR_PANIC;
        connect(&s, &QtServer::textMessageReceived, &s, [&](quint64 id, const QString &t) {
            plainResult = s.sendText(id, t.repeated(100));
            rawResult = s.sendBinary(id, t.toUtf8(), false);
        });
        QVERIFY(s.listen(QHostAddress::LocalHost, 0));
        QWebSocket ws;
        QVERIFY(open(ws, url(s)));
        QSignalSpy texts(&ws, &QWebSocket::textMessageReceived);
        QSignalSpy bins(&ws, &QWebSocket::binaryMessageReceived);
        ws.sendTextMessage("abc");
        QVERIFY(bins.count() == 1 || bins.wait(5000));
        QCOMPARE(texts.count(), 1);
        QCOMPARE(texts.at(0).at(0).toString(), QString("abc").repeated(100));
        QCOMPARE(bins.at(0).at(0).toByteArray(), QByteArray("abc"));
        QCOMPARE(plainResult, WS_OK);
        QCOMPARE(rawResult, WS_OK);
    }

    // broadcast to all but the sender; the count says how many queued it.
    void broadcast() {
        QtServer s;
        qint64 queued = -100;
        connect(&s, &QtServer::textMessageReceived, &s,
                [&](quint64 id, const QString &t) { queued = s.broadcastText("all: " + t, id); });
        QSignalSpy bins(&s, &QtServer::binaryMessageReceived);
        QVERIFY(s.listen(QHostAddress::LocalHost, 0));
        QWebSocket a, b, c;
        QVERIFY(open(a, url(s)) && open(b, url(s)) && open(c, url(s)));
        QSignalSpy ga(&a, &QWebSocket::textMessageReceived), gb(&b, &QWebSocket::textMessageReceived),
            gc(&c, &QWebSocket::textMessageReceived);
        a.sendTextMessage("hi");
        QTRY_COMPARE_WITH_TIMEOUT(gb.count() + gc.count(), 2, 5000);
        QCOMPARE(queued, qint64(2));
        QCOMPARE(gb.at(0).at(0).toString(), QString("all: hi"));
        QCOMPARE(gc.at(0).at(0).toString(), QString("all: hi"));
        QTest::qWait(100); // nothing more may come to the sender
        QCOMPARE(ga.count(), 0);
        QSignalSpy bb(&b, &QWebSocket::binaryMessageReceived), bc(&c, &QWebSocket::binaryMessageReceived);
        QCOMPARE(s.broadcastBinary(QByteArray("\x00\x01", 2)), qint64(3));
        QTRY_COMPARE_WITH_TIMEOUT(bb.count() + bc.count(), 2, 5000);
        QCOMPARE(bb.at(0).at(0).toByteArray(), QByteArray("\x00\x01", 2));
    }

    void disconnectCodes() {
        QtServer s;
        quint64 last = 0;
        connect(&s, &QtServer::newConnection, &s, [&](quint64 id) { last = id; });
        QSignalSpy gone(&s, &QtServer::disconnected);
        QVERIFY(s.listen(QHostAddress::LocalHost, 0));
        // Server-initiated, with a code and reason.
        QWebSocket ws;
        QVERIFY(open(ws, url(s)));
        const quint64 first = last;
        QCOMPARE(s.disconnectClient(first, 1005), WS_ERR_BAD_CLOSE_CODE); // may not be sent
        QCOMPARE(s.disconnectClient(first, 4001, "bye"), WS_OK);
        QSignalSpy wsGone(&ws, &QWebSocket::disconnected);
        QVERIFY(wsGone.wait(5000));
        QCOMPARE(int(ws.closeCode()), 4001);
        QCOMPARE(ws.closeReason(), QString("bye"));
        QTRY_COMPARE_WITH_TIMEOUT(gone.count(), 1, 5000);
        QCOMPARE(gone.at(0).at(0).toULongLong(), first);
        QCOMPARE(gone.at(0).at(1).toInt(), 4001);
        QCOMPARE(s.sendText(first, "late"), WS_ERR_CLOSED);
        QCOMPARE(s.sendText(9999, "never"), WS_ERR_NO_SUCH_CONN);
        // Client-initiated.
        QWebSocket ws2;
        QVERIFY(open(ws2, url(s)));
        QVERIFY(last != first); // ids are never reused
        ws2.close(QWebSocketProtocol::CloseCodeGoingAway, "later");
        QTRY_COMPARE_WITH_TIMEOUT(gone.count(), 2, 5000);
        QCOMPARE(gone.at(1).at(0).toULongLong(), last);
        QCOMPARE(gone.at(1).at(1).toInt(), 1001);
        QCOMPARE(gone.at(1).at(2).toString(), QString("later"));
    }

    // refuse() from the slot: the client gets that HTTP status and no
    // disconnected() follows; unanswered opens are accepted after the signal.
    void refuseFromSlot() {
        QtServer s;
        connect(&s, &QtServer::newConnection, &s, [&](quint64 id, const QString &path) {
            if (path == "/private") QCOMPARE(s.refuse(id, 403), WS_OK);
            if (path == "/twice") {
                QCOMPARE(s.refuse(id, 404), WS_OK);
                // Already answered: WS_ERR_STATE, or WS_ERR_CLOSED once the I/O
                // thread has let the refused connection go (the header says either).
                const ws_result again = s.accept(id);
                QVERIFY2(again == WS_ERR_STATE || again == WS_ERR_CLOSED, ws_result_name(again));
            }
            if (path == "/bad") QCOMPARE(s.refuse(id, 200), WS_ERR_INVALID_ARGUMENT); // then accepted
        });
        QSignalSpy gone(&s, &QtServer::disconnected);
        QVERIFY(s.listen(QHostAddress::LocalHost, 0));
        QCOMPARE(rawStatus(s.serverPort(), "/private").left(12), QByteArray("HTTP/1.1 403"));
        QCOMPARE(rawStatus(s.serverPort(), "/twice").left(12), QByteArray("HTTP/1.1 404"));
        QCOMPARE(rawStatus(s.serverPort(), "/public").left(12), QByteArray("HTTP/1.1 101"));
        QWebSocket refused, bad;
        QVERIFY(!open(refused, url(s, "/private")));
        QVERIFY(open(bad, url(s, "/bad")));
        QTest::qWait(100);
        // Only the accepted raw upgrade (/public, dropped) reported a close.
        QTRY_COMPARE_WITH_TIMEOUT(gone.count(), 1, 5000);
        QCOMPARE(gone.at(0).at(1).toInt(), 1006);
    }

    // Manual: the answer may come later, from anywhere on this thread.
    void manualAndImmediate() {
        QtServer s;
        s.setAcceptMode(QtServer::Manual);
        QList<quint64> waiting;
        connect(&s, &QtServer::newConnection, &s, [&](quint64 id) { waiting.append(id); });
        QVERIFY(s.listen(QHostAddress::LocalHost, 0));
        QWebSocket ws;
        QSignalSpy connected(&ws, &QWebSocket::connected);
        ws.open(url(s));
        QTRY_COMPARE_WITH_TIMEOUT(waiting.size(), 1, 5000);
        QTest::qWait(200);
        QCOMPARE(connected.count(), 0); // still waiting for the host
        QCOMPARE(s.accept(waiting.at(0)), WS_OK);
        QVERIFY(connected.wait(5000));
        QTimer::singleShot(50, &s, [&] { s.refuse(waiting.last(), 429); });
        QCOMPARE(rawStatus(s.serverPort(), "/").left(12), QByteArray("HTTP/1.1 429"));

        QtServer im;
        im.setAcceptMode(QtServer::Immediate);
        QCOMPARE(im.option(WS_OPT_AUTO_ACCEPT), quint64(1));
        QSignalSpy news(&im, &QtServer::newConnection);
        QVERIFY(im.listen(QHostAddress::LocalHost, 0));
        QWebSocket ws2;
        QVERIFY(open(ws2, url(im)));
        QTRY_COMPARE_WITH_TIMEOUT(news.count(), 1, 5000);
    }

    void listenErrors() {
        QTcpServer taken;
        QVERIFY(taken.listen(QHostAddress::LocalHost, 0));
        QtServer s;
        QVERIFY(!s.listen(QHostAddress::LocalHost, taken.serverPort()));
        QCOMPARE(s.lastResult(), WS_ERR_ADDR_IN_USE);
        QVERIFY(!s.errorString().isEmpty());
        QVERIFY(!s.isListening());
        QtServer s2;
        QVERIFY(!s2.setOption(WS_OPT_EVENT_QUEUE, 0));
        QVERIFY(!s2.setOption(WS_OPT_MAX_MESSAGE_SIZE, 0));
        QCOMPARE(s2.lastResult(), WS_ERR_INVALID_ARGUMENT);
        QVERIFY(s2.setOption(WS_OPT_MAX_MESSAGE_SIZE, 1024));
        QCOMPARE(s2.option(WS_OPT_MAX_MESSAGE_SIZE), quint64(1024));
        QVERIFY(s2.listen(QHostAddress::LocalHost, 0));
        QVERIFY(!s2.listen(QHostAddress::LocalHost, 0));
        QCOMPARE(s2.lastResult(), WS_ERR_STATE);
        QVERIFY(!s2.setOption(WS_OPT_MAX_MESSAGE_SIZE, 2048)); // after listen
    }

    // An oversize message: errorOccurred(WS_ERR_TOO_BIG), then 1009.
    void errorAndTooBig() {
        QtServer s;
        QVERIFY(s.setOption(WS_OPT_MAX_MESSAGE_SIZE, 1024));
        QSignalSpy errs(&s, &QtServer::errorOccurred);
        QSignalSpy gone(&s, &QtServer::disconnected);
        QVERIFY(s.listen(QHostAddress::LocalHost, 0));
        QWebSocket ws;
        QVERIFY(open(ws, url(s)));
        ws.sendBinaryMessage(QByteArray(2048, 'x'));
        QTRY_COMPARE_WITH_TIMEOUT(gone.count(), 1, 5000);
        QCOMPARE(errs.count(), 1);
        QCOMPARE(errs.at(0).at(1).toInt(), int(WS_ERR_TOO_BIG));
        QCOMPARE(gone.at(0).at(1).toInt(), 1009);
        QTRY_COMPARE_WITH_TIMEOUT(int(ws.closeCode()), 1009, 5000);
    }

    // Backpressure and drained(): a 1-byte soft limit.
    void drained() {
        QtServer s;
        QVERIFY(s.setOption(WS_OPT_SEND_QUEUE_LIMIT, 1));
        quint64 conn = 0;
        connect(&s, &QtServer::newConnection, &s, [&](quint64 id) { conn = id; });
        QSignalSpy drains(&s, &QtServer::drained);
        QVERIFY(s.listen(QHostAddress::LocalHost, 0));
        QWebSocket ws;
        QVERIFY(open(ws, url(s)));
        QSignalSpy got(&ws, &QWebSocket::binaryMessageReceived);
        QCOMPARE(s.sendBinary(conn, QByteArray(100000, 'y')), WS_BACKPRESSURE);
        QVERIFY(drains.wait(5000));
        QCOMPARE(drains.at(0).at(0).toULongLong(), conn);
        QTRY_COMPARE_WITH_TIMEOUT(got.count(), 1, 5000);
        QCOMPARE(s.queuedBytes(conn), qint64(0));
    }

    // close(): 1001 to every client, the last disconnected(), then closed().
    void closeServer() {
        QtServer s;
        QSignalSpy gone(&s, &QtServer::disconnected);
        QSignalSpy closed(&s, &QtServer::closed);
        QVERIFY(s.listen(QHostAddress::LocalHost, 0));
        QWebSocket a, b;
        QVERIFY(open(a, url(s)) && open(b, url(s)));
        QSignalSpy aGone(&a, &QWebSocket::disconnected);
        // From a slot: the close starts inside the event loop.
        QTimer::singleShot(0, &s, [&] { s.close(); });
        QVERIFY(closed.wait(5000));
        QCOMPARE(gone.count(), 2);
        QCOMPARE(gone.at(0).at(1).toInt() == 1001 || gone.at(0).at(1).toInt() == 1006, true);
        QTRY_VERIFY_WITH_TIMEOUT(!aGone.isEmpty(), 5000);
        QCOMPARE(int(a.closeCode()), 1001);
        QVERIFY(s.sendText(1, "x") < 0);
    }

    // wss:// from QSslCertificate + QSslKey, the CA trusted by the client.
    void tlsFromQt() {
        QtServer s;
        echo(s);
        QVERIFY2(s.setTls(QtTlsConfig::fromQt(cert("server.pem"), ecKey("server.key"))), qPrintable(s.errorString()));
        QVERIFY(s.listen(QHostAddress::LocalHost, 0));
        QWebSocket ws;
        QSslConfiguration ssl = QSslConfiguration::defaultConfiguration();
        ssl.setCaCertificates({cert("ca.pem")});
        ws.setSslConfiguration(ssl);
        QVERIFY(open(ws, url(s, "/", "wss", "localhost")));
        QCOMPARE(ws.sslConfiguration().peerCertificate(), cert("server.pem"));
        QSignalSpy got(&ws, &QWebSocket::textMessageReceived);
        ws.sendTextMessage("secret hello");
        QVERIFY(got.wait(5000));
        QCOMPARE(got.at(0).at(0).toString(), QString("secret hello"));
        // Without the CA the client refuses the server.
        QWebSocket untrusting;
        QSignalSpy errors(&untrusting, &QWebSocket::sslErrors);
        QVERIFY(!open(untrusting, url(s, "/", "wss", "localhost")));
        QVERIFY(errors.count() >= 1);
        // Not a key for this certificate: refused at once.
        QtServer bad;
        QVERIFY(!bad.setTls(QtTlsConfig::fromQt(cert("server.pem"), ecKey("server2.key"))));
        QCOMPARE(bad.lastResult(), WS_ERR_TLS);
        QVERIFY(!bad.errorString().isEmpty());
    }

    // From files (encrypted PKCS#8 key), then reload to another certificate.
    void tlsFilesAndReload() {
        QtServer s;
        echo(s);
        QVERIFY(!s.setTls(QtTlsConfig::fromFiles(certs("server.pem"), certs("server-enc.key"), "wrong")));
        QVERIFY2(s.setTls(QtTlsConfig::fromFiles(certs("server.pem"), certs("server-enc.key"), "secret")),
                 qPrintable(s.errorString()));
        QVERIFY(s.listen(QHostAddress::LocalHost, 0));
        QSslConfiguration ssl = QSslConfiguration::defaultConfiguration();
        ssl.setCaCertificates({cert("ca.pem")});
        QWebSocket one;
        one.setSslConfiguration(ssl);
        QVERIFY(open(one, url(s, "/", "wss", "localhost")));
        QCOMPARE(one.sslConfiguration().peerCertificate(), cert("server.pem"));
        QVERIFY(!s.reloadTls(QtTlsConfig::fromFiles(certs("server2.pem"), certs("server.key"))));
        QVERIFY2(s.reloadTls(QtTlsConfig::fromFiles(certs("server2.pem"), certs("server2.key"))),
                 qPrintable(s.errorString()));
        QWebSocket two;
        two.setSslConfiguration(ssl);
        QVERIFY(open(two, url(s, "/", "wss", "localhost")));
        QCOMPARE(two.sslConfiguration().peerCertificate(), cert("server2.pem"));
        QSignalSpy got(&one, &QWebSocket::textMessageReceived); // the old connection carries on
        one.sendTextMessage("still here");
        QVERIFY(got.wait(5000));
        QtServer plain;
        QVERIFY(plain.listen(QHostAddress::LocalHost, 0));
        QVERIFY(!plain.reloadTls(QtTlsConfig::fromFiles(certs("server2.pem"), certs("server2.key"))));
        QCOMPARE(plain.lastResult(), WS_ERR_STATE);
    }

    // A CA list turns on mutual TLS: with the client certificate the
    // connection opens (subject in currentRequest()), without it it fails.
    void mutualTls() {
        QtServer s;
        echo(s);
        QString subject;
        connect(&s, &QtServer::newConnection, &s, [&] { subject = s.currentRequest().clientSubject; });
        QVERIFY2(s.setTls(QtTlsConfig::fromQt(cert("server.pem"), ecKey("server.key"), {cert("ca.pem")})),
                 qPrintable(s.errorString()));
        QVERIFY(s.listen(QHostAddress::LocalHost, 0));
        QSslConfiguration ssl = QSslConfiguration::defaultConfiguration();
        ssl.setCaCertificates({cert("ca.pem")});
        QWebSocket anonymous;
        anonymous.setSslConfiguration(ssl);
        QVERIFY(!open(anonymous, url(s, "/", "wss", "localhost")));
        QVERIFY(subject.isEmpty());
        QSslConfiguration withCert = ssl;
        withCert.setLocalCertificate(cert("client.pem"));
        withCert.setPrivateKey(ecKey("client.key"));
        QWebSocket alice;
        alice.setSslConfiguration(withCert);
        QVERIFY(open(alice, url(s, "/", "wss", "localhost")));
        QVERIFY2(subject.contains("CN=alice"), qPrintable(subject));
        QSignalSpy got(&alice, &QWebSocket::textMessageReceived);
        alice.sendTextMessage("mtls");
        QVERIFY(got.wait(5000));
        // A certificate from another CA is refused too.
        QSslConfiguration other = ssl;
        other.setLocalCertificate(cert("other-client.pem"));
        other.setPrivateKey(ecKey("other-client.key"));
        QWebSocket mallory;
        mallory.setSslConfiguration(other);
        QVERIFY(!open(mallory, url(s, "/", "wss", "localhost")));
    }

    // Topics: three clients, publish with an exception, counts after a close.
    // Two servers on a real redis-server (started here on a free port):
    // a publish on A reaches B's subscriber; bad URLs and late calls fail.
    void backplane() {
        QTcpServer probe; // a free port for the broker
        QVERIFY(probe.listen(QHostAddress::LocalHost, 0));
        const quint16 port = probe.serverPort();
        probe.close();
        QProcess redis;
        redis.start("redis-server", {"--port", QString::number(port), "--bind", "127.0.0.1", "--save", "",
                                     "--appendonly", "no", "--dir", QDir::tempPath()});
        QVERIFY2(redis.waitForStarted(5000), "redis-server (Debian package redis-server) must be installed");
        QTRY_VERIFY_WITH_TIMEOUT(
            [&] {
                QTcpSocket t;
                t.connectToHost(QHostAddress::LocalHost, port);
                return t.waitForConnected(200);
            }(),
            5000);
        const QString bp = QString("redis://127.0.0.1:%1?prefix=qt-test:").arg(port);
        QtServer a, b;
        QVERIFY(!a.setBackplane("redis://127.0.0.1:1?channel=x"));
        QCOMPARE(a.lastResult(), WS_ERR_INVALID_ARGUMENT);
        QVERIFY2(a.errorString().contains("channel"), qPrintable(a.errorString()));
        QVERIFY2(a.setBackplane(bp) && b.setBackplane(bp), qPrintable(a.errorString()));
        connect(&b, &QtServer::newConnection, &b,
                [&](quint64 id, const QString &, const wsserver::QtHeaders &, const QString &) { b.subscribe(id, "news"); });
        QVERIFY2(a.listen(QHostAddress::LocalHost, 0), qPrintable(a.errorString()));
        QVERIFY2(b.listen(QHostAddress::LocalHost, 0), qPrintable(b.errorString()));
        QVERIFY(!a.setBackplane(bp));
        QCOMPARE(a.lastResult(), WS_ERR_STATE);
        QWebSocket ws;
        QVERIFY(open(ws, url(b)));
        QSignalSpy got(&ws, &QWebSocket::textMessageReceived);
        QTRY_VERIFY_WITH_TIMEOUT((a.publishText("news", "probe"), got.wait(50)), 5000); // B's subscription reached A
        QTRY_COMPARE_WITH_TIMEOUT(b.stats().backplane_received, a.stats().backplane_published, 5000);
        got.clear();
        a.publishText("news", "from A");
        QTRY_COMPARE_WITH_TIMEOUT(got.size(), 1, 5000);
        QCOMPARE(got.at(0).at(0).toString(), QString("from A"));
        QCOMPARE(a.stats().backplane_connected, quint64(1));
        redis.kill();
        redis.waitForFinished(5000);
    }

    void topics() {
        QtServer s;
        QList<quint64> ids;
        connect(&s, &QtServer::newConnection, &s,
                [&](quint64 id, const QString &, const wsserver::QtHeaders &, const QString &) { ids.append(id); });
        // Subscribing from a slot, as a chat room's "join" would.
        connect(&s, &QtServer::textMessageReceived, &s, [&](quint64 id, const QString &t) {
            if (t.startsWith("join ")) QCOMPARE(s.subscribe(id, t.mid(5)), WS_OK);
            s.sendText(id, "ok " + t);
        });
        QSignalSpy gone(&s, &QtServer::disconnected);
        QVERIFY(s.listen(QHostAddress::LocalHost, 0));
        QWebSocket a, b;
        auto c = std::make_unique<QWebSocket>();
        QVERIFY(open(a, url(s)) && open(b, url(s)) && open(*c, url(s)));
        QCOMPARE(ids.size(), 3);
        QSignalSpy ga(&a, &QWebSocket::textMessageReceived), gb(&b, &QWebSocket::textMessageReceived),
            gc(c.get(), &QWebSocket::textMessageReceived);
        QSignalSpy bb(&b, &QWebSocket::binaryMessageReceived);
        QCOMPARE(s.subscribers("news"), qint64(0));
        QCOMPARE(s.subscribe(ids[0], "news"), WS_OK);
        QCOMPARE(s.subscribe(ids[1], "news"), WS_OK);
        QCOMPARE(s.subscribe(ids[1], "news"), WS_OK); // twice is fine
        c->sendTextMessage("join news");
        QTRY_COMPARE_WITH_TIMEOUT(gc.size(), 1, 5000);
        QCOMPARE(s.subscribers("news"), qint64(3));
        QCOMPARE(s.publishText("news", "headline", ids[0]), qint64(2));
        QTRY_COMPARE_WITH_TIMEOUT(gb.size(), 1, 5000);
        QTRY_COMPARE_WITH_TIMEOUT(gc.size(), 2, 5000);
        QCOMPARE(gb.at(0).at(0).toString(), QString("headline"));
        QCOMPARE(gc.at(1).at(0).toString(), QString("headline"));
        s.sendText(ids[0], "direct");
        QTRY_COMPARE_WITH_TIMEOUT(ga.size(), 1, 5000);
        QCOMPARE(ga.at(0).at(0).toString(), QString("direct")); // nothing published reached a
        QCOMPARE(s.publishBinary("news", QByteArray("\0\1", 2)), qint64(3));
        QTRY_COMPARE_WITH_TIMEOUT(bb.size(), 1, 5000);
        QCOMPARE(bb.at(0).at(0).toByteArray(), QByteArray("\0\1", 2));
        QCOMPARE(s.publishText("nobody", "x"), qint64(0));
        QCOMPARE(s.publishText("", "x"), qint64(WS_ERR_INVALID_ARGUMENT));
        QCOMPARE(s.subscribe(ids[0], ""), WS_ERR_INVALID_ARGUMENT);
        QCOMPARE(s.unsubscribe(ids[1], "news"), WS_OK);
        QCOMPARE(s.subscribers("news"), qint64(2));
        c->close();
        QTRY_COMPARE_WITH_TIMEOUT(gone.size(), 1, 5000);
        QCOMPARE(gone.at(0).at(0).toULongLong(), ids[2]);
        QCOMPARE(s.subscribers("news"), qint64(1)); // c's subscription ended with it
        QCOMPARE(s.subscribe(ids[2], "news"), WS_ERR_CLOSED);
        QCOMPARE(s.publishText("news", "last"), qint64(1));
        QTRY_COMPARE_WITH_TIMEOUT(ga.size(), 2, 5000);
        QCOMPARE(ga.at(1).at(0).toString(), QString("last"));
    }

    void stats() {
        QtServer s;
        echo(s);
        quint64 last = 0;
        connect(&s, &QtServer::newConnection, &s,
                [&](quint64 id, const QString &path, const wsserver::QtHeaders &, const QString &) {
                    if (path == "/no") s.refuse(id, 403);
                    else last = id;
                });
        QVERIFY(s.listen(QHostAddress::LocalHost, 0));
        const wsserver::QtStats zero = s.stats();
        QCOMPARE(zero.open_connections, quint64(0));
        QCOMPARE(zero.handshakes_accepted, quint64(0));
        QCOMPARE(zero.messages_in, quint64(0));
        {
            QWebSocket ws;
            QVERIFY(open(ws, url(s)));
            QSignalSpy got(&ws, &QWebSocket::textMessageReceived);
            ws.sendTextMessage("12345");
            QVERIFY(got.wait(5000));
            // A count moves right after what it counts: the reply may arrive first.
            QTRY_VERIFY_WITH_TIMEOUT(s.stats().bytes_out > zero.bytes_out, 5000);
            wsserver::QtStats st = s.stats();
            QCOMPARE(st.open_connections, quint64(1));
            QCOMPARE(st.handshakes_accepted, quint64(1));
            QCOMPARE(st.messages_in, quint64(1));
            QCOMPARE(st.bytes_in, quint64(5));
            QVERIFY(st.messages_out >= 1 && st.bytes_out > zero.bytes_out);
            s.subscribe(last, "t1");
            s.subscribe(last, "t2");
            st = s.stats();
            QCOMPARE(st.topics, quint64(2));
            QCOMPARE(st.subscriptions, quint64(2));
            QCOMPARE(rawStatus(s.serverPort(), "/no"), QByteArray("HTTP/1.1 403 Forbidden"));
            ws.close();
            QTRY_COMPARE_WITH_TIMEOUT(s.stats().open_connections, quint64(0), 5000);
        }
        const wsserver::QtStats st = s.stats();
        QCOMPARE(st.handshakes_refused, quint64(1));
        QCOMPARE(st.topics, quint64(0));
        QCOMPARE(st.subscriptions, quint64(0));
    }

    // Origins: QWebSocket sends the Origin set on its QNetworkRequest.
    void allowedOriginsAndPaths() {
        QtServer s;
        echo(s);
        QVERIFY(s.setAllowedOrigins({"https://good.example", "http://localhost:8080"}));
        QVERIFY(s.setPaths({"/chat", "/feed"}));
        QVERIFY(!s.setPaths({"no-slash"}));
        QCOMPARE(s.lastResult(), WS_ERR_INVALID_ARGUMENT);
        QVERIFY(!s.setAllowedOrigins({""}));
        QVERIFY(s.setPaths({"/chat", "/feed"}));
        QVERIFY(s.listen(QHostAddress::LocalHost, 0));
        auto withOrigin = [&](const QString &path, const QByteArray &origin) {
            QNetworkRequest req(url(s, path));
            if (!origin.isEmpty()) req.setRawHeader("Origin", origin);
            QWebSocket ws;
            QSignalSpy connected(&ws, &QWebSocket::connected);
            QSignalSpy gone(&ws, &QWebSocket::disconnected);
            ws.open(req);
            QElapsedTimer t;
            t.start();
            while (connected.isEmpty() && gone.isEmpty() && t.elapsed() < 5000) QTest::qWait(5);
            return !connected.isEmpty();
        };
        QVERIFY(withOrigin("/chat", "https://good.example"));
        QVERIFY(withOrigin("/feed?x=1", "HTTPS://GOOD.EXAMPLE")); // ignoring case; path without the query
        QVERIFY(!withOrigin("/chat", "https://evil.example"));
        QVERIFY(!withOrigin("/other", "https://good.example"));
        const quint16 port = s.serverPort();
        QVERIFY(rawStatus(port, "/chat").startsWith("HTTP/1.1 101")); // no Origin passes
        QVERIFY(rawAnswer(port, "/chat", "Origin: https://evil.example\r\n").startsWith("HTTP/1.1 403"));
        QVERIFY(rawAnswer(port, "/other").startsWith("HTTP/1.1 404"));
        QVERIFY(rawAnswer(port, "/").startsWith("HTTP/1.1 404"));
    }

    // Extra headers and refusal bodies, seen on a raw TCP handshake (QWebSocket
    // shows no response headers): from newConnection, and later in Manual mode.
    void answerHeadersAndBodies() {
        QtServer s;
        QList<quint64> waiting;
        connect(&s, &QtServer::newConnection, &s,
                [&](quint64 id, const QString &path, const wsserver::QtHeaders &, const QString &) {
                    if (path == "/cookie") {
                        QCOMPARE(s.addHeader(id, "Set-Cookie", "session=abc123; HttpOnly"), WS_OK);
                        QCOMPARE(s.accept(id), WS_OK);
                    } else if (path == "/auto") {
                        s.addHeader(id, "Set-Cookie", "auto=1"); // then accepted when the signal returns
                    } else if (path == "/secret") {
                        s.addHeader(id, "WWW-Authenticate", "Bearer");
                        QCOMPARE(s.refuse(id, 401, "token required"), WS_OK);
                    } else if (path == "/bad") {
                        QCOMPARE(s.addHeader(id, "Content-Length", "5"), WS_ERR_INVALID_ARGUMENT);
                        QCOMPARE(s.addHeader(id, "X-A", "a\r\nb"), WS_ERR_INVALID_ARGUMENT);
                        s.refuse(id, 400);
                    } else {
                        waiting.append(id);
                    }
                });
        QVERIFY(s.listen(QHostAddress::LocalHost, 0));
        const quint16 port = s.serverPort();
        QByteArray a = rawAnswer(port, "/cookie");
        QVERIFY2(a.startsWith("HTTP/1.1 101"), a.constData());
        QCOMPARE(answerHeader(a, "Set-Cookie"), QByteArray("session=abc123; HttpOnly"));
        a = rawAnswer(port, "/auto");
        QVERIFY2(a.startsWith("HTTP/1.1 101"), a.constData());
        QCOMPARE(answerHeader(a, "Set-Cookie"), QByteArray("auto=1"));
        a = rawAnswer(port, "/secret");
        QVERIFY2(a.startsWith("HTTP/1.1 401"), a.constData());
        QCOMPARE(answerBody(a), QByteArray("token required"));
        QCOMPARE(answerHeader(a, "WWW-Authenticate"), QByteArray("Bearer"));
        QVERIFY(answerHeader(a, "Content-Type").startsWith("text/plain"));
        QVERIFY(rawAnswer(port, "/bad").startsWith("HTTP/1.1 400"));
        QCOMPARE(s.addHeader(12345, "X-A", "b"), WS_ERR_NO_SUCH_CONN);

        // Manual: the answer comes later, from a timer, with a header and a body.
        QtServer m;
        m.setAcceptMode(QtServer::Manual);
        connect(&m, &QtServer::newConnection, &m,
                [&](quint64 id, const QString &path, const wsserver::QtHeaders &, const QString &) {
                    QTimer::singleShot(30, &m, [&m, id, path] {
                        m.addHeader(id, "Content-Type", "application/json");
                        if (path == "/later-ok") {
                            m.addHeader(id, "Set-Cookie", "later=1");
                            m.accept(id);
                        } else {
                            m.refuse(id, 429, "{\"retry\":1}");
                        }
                    });
                });
        QVERIFY(m.listen(QHostAddress::LocalHost, 0));
        a = rawAnswer(m.serverPort(), "/later-ok");
        QVERIFY2(a.startsWith("HTTP/1.1 101"), a.constData());
        QCOMPARE(answerHeader(a, "Set-Cookie"), QByteArray("later=1"));
        a = rawAnswer(m.serverPort(), "/later-no");
        QVERIFY2(a.startsWith("HTTP/1.1 429"), a.constData());
        QCOMPARE(answerBody(a), QByteArray("{\"retry\":1}"));
        QCOMPARE(answerHeader(a, "Content-Type"), QByteArray("application/json"));
    }

    // newConnection's headers: every line, in the client's order, repeats kept.
    void everyHeaderListed() {
        QtServer s;
        wsserver::QtHeaders seen;
        connect(&s, &QtServer::newConnection, &s,
                [&](quint64, const QString &, const wsserver::QtHeaders &headers, const QString &) { seen = headers; });
        QVERIFY(s.listen(QHostAddress::LocalHost, 0));
        QByteArray a = rawAnswer(s.serverPort(), "/", "X-First: 1\r\nX-Custom-Thing: hello world\r\nX-First: 2\r\n");
        QVERIFY2(a.startsWith("HTTP/1.1 101"), a.constData());
        QCOMPARE(seen.size(), 8); // the 5 of rawAnswer and these 3
        QCOMPARE(seen.at(0), qMakePair(QByteArray("Host"), QByteArray("127.0.0.1")));
        QCOMPARE(seen.at(1), qMakePair(QByteArray("Upgrade"), QByteArray("websocket")));
        QCOMPARE(seen.at(5), qMakePair(QByteArray("X-First"), QByteArray("1")));
        QCOMPARE(seen.at(6), qMakePair(QByteArray("X-Custom-Thing"), QByteArray("hello world")));
        QCOMPARE(seen.at(7), qMakePair(QByteArray("X-First"), QByteArray("2")));
    }

    // Plain HTTP: static files (with their types) and health with
    // QNetworkAccessManager, traversal over a raw socket (QUrl would
    // normalise the path), on the same port as WebSockets.
    void httpStaticAndHealth() {
        QTemporaryDir tmp;
        QVERIFY(tmp.isValid());
        QVERIFY(QDir(tmp.path()).mkpath("www/js"));
        const QString www = tmp.path() + "/www";
        auto write = [](const QString &path, const QByteArray &text) {
            QFile f(path);
            return f.open(QIODevice::WriteOnly) && f.write(text) == text.size();
        };
        QVERIFY(write(www + "/hello.txt", "hello, file"));
        QVERIFY(write(www + "/index.html", "<!doctype html><p>hi</p>"));
        QVERIFY(write(www + "/js/app.js", "console.log(1)"));
        QVERIFY(write(tmp.path() + "/secret.txt", "SECRET"));

        QtServer s;
        echo(s);
        QVERIFY(!s.setStaticDir(tmp.path() + "/no-such-dir"));
        QCOMPARE(s.lastResult(), WS_ERR_INVALID_ARGUMENT);
        QVERIFY(!s.setHealthPath("healthz"));
        QCOMPARE(s.lastResult(), WS_ERR_INVALID_ARGUMENT);
        QVERIFY2(s.setStaticDir(www), qPrintable(s.errorString()));
        QVERIFY(s.setHealthPath("/healthz"));
        QVERIFY(s.listen(QHostAddress::LocalHost, 0));
        QCOMPARE(s.option(WS_OPT_HTTP_HANDLER), quint64(0)); // nothing connected to httpRequest

        QNetworkAccessManager nam;
        nam.setProxy(QNetworkProxy::NoProxy);
        HttpReply r = http(nam, url(s, "/hello.txt", "http"));
        QCOMPARE(r.status, 200);
        QCOMPARE(r.body, QByteArray("hello, file"));
        QVERIFY2(r.header("Content-Type").startsWith("text/plain"), r.header("Content-Type").constData());
        r = http(nam, url(s, "/js/app.js", "http"));
        QCOMPARE(r.status, 200);
        QVERIFY(r.header("Content-Type").startsWith("text/javascript"));
        r = http(nam, url(s, "/", "http"));
        QCOMPARE(r.status, 200);
        QCOMPARE(r.body, QByteArray("<!doctype html><p>hi</p>"));
        QVERIFY(r.header("Content-Type").startsWith("text/html"));
        r = http(nam, url(s, "/healthz", "http"));
        QCOMPARE(r.status, 200);
        QCOMPARE(r.body, QByteArray("ok\n"));
        r = http(nam, url(s, "/missing.txt", "http"));
        QCOMPARE(r.status, 404);

        QTcpSocket raw;
        raw.connectToHost(QHostAddress::LocalHost, s.serverPort());
        QVERIFY(raw.waitForConnected(3000));
        QByteArray pending;
        for (const char *evil : {"/..%2fsecret.txt", "/../secret.txt", "/js/..%2f..%2fsecret.txt", "/%2e%2e/secret.txt"}) {
            raw.write(QByteArray("GET ") + evil + " HTTP/1.1\r\nHost: x\r\n\r\n");
            const QByteArray a = readAnswer(raw, pending);
            QVERIFY2(a.startsWith("HTTP/1.1 404") && !a.contains("SECRET"), evil);
        }
        QWebSocket ws;
        QVERIFY(open(ws, url(s, "/chat")));
        QSignalSpy got(&ws, &QWebSocket::textMessageReceived);
        ws.sendTextMessage("beside the files");
        QVERIFY(got.wait(5000));
        QCOMPARE(got.at(0).at(0).toString(), QString("beside the files"));
        QVERIFY(s.stats().http_requests >= 9);
    }

    // Plain HTTP for the host: httpRequest, answered from the slot or later
    // (a timer), with headers; keep-alive on one raw socket.
    void httpHandlerFromSlot() {
        QtServer s;
        QVERIFY(s.setHealthPath("/healthz"));
        QString seenQuery, seenPeer, seenToken;
        int requests = 0;
        connect(&s, &QtServer::httpRequest, &s,
                [&](quint64 id, const QString &method, const QString &path, const wsserver::QtHeaders &headers,
                    const QByteArray &body) {
                    ++requests;
                    QCOMPARE(s.currentRequest().id, id);
                    QCOMPARE(s.currentRequest().method, method);
                    if (path == "/echo") {
                        seenQuery = s.currentRequest().query;
                        seenPeer = s.currentRequest().peer;
                        for (const auto &h : headers)
                            if (h.first.compare("X-Token", Qt::CaseInsensitive) == 0) seenToken = h.second;
                        QCOMPARE(s.addHeader(id, "X-Seen", method.toUtf8()), WS_OK);
                        QCOMPARE(s.respond(id, 200, "text/plain", method.toUtf8() + " " + path.toUtf8() + " " + body),
                                 WS_OK);
                        // Answered already: the header says WS_ERR_STATE, but once the I/O
                        // thread has written the first answer the library says WS_ERR_CLOSED
                        // (tests/c/test_http.c accepts both; reported, not worked around).
                        const ws_result again = s.respond(id, 200);
                        QVERIFY2(again == WS_ERR_STATE || again == WS_ERR_CLOSED, ws_result_name(again));
                    } else if (path == "/later") {
                        QTimer::singleShot(50, &s, [&s, id] {
                            s.addHeader(id, "Cache-Control", "no-store");
                            s.respond(id, 202, "application/json", "{\"later\":true}");
                        });
                    } else if (path == "/teapot") {
                        s.respond(id, 418);
                    } else {
                        s.respond(id, 404, "text/plain", "not here");
                    }
                });
        QVERIFY(s.listen(QHostAddress::LocalHost, 0));
        QCOMPARE(s.option(WS_OPT_HTTP_HANDLER), quint64(1)); // a connected httpRequest turns it on

        QNetworkAccessManager nam;
        nam.setProxy(QNetworkProxy::NoProxy);
        HttpReply r = http(nam, url(s, "/echo?x=1", "http"), "POST", "posted body", {{"X-Token", "t0k"}});
        QCOMPARE(r.status, 200);
        QCOMPARE(r.body, QByteArray("POST /echo posted body"));
        QCOMPARE(r.header("X-Seen"), QByteArray("POST"));
        QCOMPARE(r.header("Content-Type"), QByteArray("text/plain"));
        QCOMPARE(seenQuery, QString("x=1"));
        QCOMPARE(seenToken, QString("t0k"));
        QVERIFY(seenPeer.startsWith("127.0.0.1:"));
        r = http(nam, url(s, "/later", "http"));
        QCOMPARE(r.status, 202);
        QCOMPARE(r.body, QByteArray("{\"later\":true}"));
        QCOMPARE(r.header("Content-Type"), QByteArray("application/json"));
        QCOMPARE(r.header("Cache-Control"), QByteArray("no-store"));
        r = http(nam, url(s, "/healthz", "http"));
        QCOMPARE(r.status, 200);
        QCOMPARE(r.body, QByteArray("ok\n"));
        r = http(nam, url(s, "/nope", "http"));
        QCOMPARE(r.status, 404);
        QCOMPARE(r.body, QByteArray("not here"));
        QCOMPARE(requests, 3); // health never reaches the slot

        // Keep-alive: several requests, one pipelined, on one socket.
        QTcpSocket raw;
        raw.connectToHost(QHostAddress::LocalHost, s.serverPort());
        QVERIFY(raw.waitForConnected(3000));
        QByteArray pending;
        raw.write("GET /teapot HTTP/1.1\r\nHost: x\r\n\r\n");
        QVERIFY(readAnswer(raw, pending).startsWith("HTTP/1.1 418"));
        raw.write("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"
                  "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        QByteArray a = readAnswer(raw, pending);
        QVERIFY2(a.startsWith("HTTP/1.1 200") && a.endsWith("POST /echo hi"), a.constData());
        a = readAnswer(raw, pending);
        QVERIFY2(a.startsWith("HTTP/1.1 200") && a.endsWith("ok\n"), a.constData());
        QCOMPARE(raw.state(), QAbstractSocket::ConnectedState);
        QCOMPARE(s.respond(987654, 200), WS_ERR_NO_SUCH_CONN);
        QCOMPARE(s.respond(1, 70000), WS_ERR_INVALID_ARGUMENT);

        // WS_OPT_HTTP_HANDLER on, but nobody connected: 404, not a 503 later.
        QtServer none;
        QVERIFY(none.setOption(WS_OPT_HTTP_HANDLER, 1));
        QVERIFY(none.listen(QHostAddress::LocalHost, 0));
        QElapsedTimer t;
        t.start();
        r = http(nam, url(none, "/x", "http"));
        QCOMPARE(r.status, 404);
        QVERIFY(t.elapsed() < 3000);
    }

    // The owning thread never blocks: a 10 ms timer keeps ticking while 100
    // clients (on the same thread) send 200 messages each and get them back.
    void ownerNeverBlocks() {
        QtServer s;
        echo(s);
        QVERIFY(s.listen(QHostAddress::LocalHost, 0));
        const int clients = 100, each = 200;
        std::vector<std::unique_ptr<QWebSocket>> ws;
        int open = 0, echoed = 0;
        for (int i = 0; i < clients; ++i) {
            ws.emplace_back(new QWebSocket);
            QWebSocket *w = ws.back().get();
            connect(w, &QWebSocket::connected, this, [&open, w, each] {
                ++open;
                for (int k = 0; k < each; ++k) w->sendTextMessage(QString("message %1 ").arg(k).repeated(20));
            });
            connect(w, &QWebSocket::textMessageReceived, this, [&echoed] { ++echoed; });
        }
        QElapsedTimer clock;
        qint64 last = 0, maxGap = 0;
        int ticks = 0;
        QTimer timer;
        timer.setInterval(10);
        connect(&timer, &QTimer::timeout, this, [&] {
            const qint64 now = clock.elapsed();
            maxGap = qMax(maxGap, now - last);
            last = now;
            ++ticks;
        });
        clock.start();
        timer.start();
        for (auto &w : ws) w->open(url(s));
        QTRY_COMPARE_WITH_TIMEOUT(echoed, clients * each, 30000);
        QCOMPARE(open, clients);
        const qint64 now = clock.elapsed();
        maxGap = qMax(maxGap, now - last);
        qInfo("100 clients x %d echoes in %lld ms, %d ticks, largest gap between ticks %lld ms", each, now, ticks,
              maxGap);
        QVERIFY2(maxGap < 200, qPrintable(QString("largest gap %1 ms").arg(maxGap)));
        QVERIFY(ticks >= now / 10 / 4); // the timer really ran throughout
    }
};

QTEST_GUILESS_MAIN(TestQtServer)
#include "test_qtserver.moc"
