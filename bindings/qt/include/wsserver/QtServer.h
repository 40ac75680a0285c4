// QtServer.h — the wsserver Qt binding (Qt 5 and Qt 6): a QObject over the
// C ABI (wsserver.h) in event-queue mode. It lives on the thread that owns
// it: the server's event fd feeds a QSocketNotifier on that thread, every
// signal is emitted there, and no library callback ever runs (there is no
// polling timer either). Thin: every slot is one C call, and the C header's
// comments say what each result means.
//
//   wsserver::QtServer server;
//   QObject::connect(&server, &wsserver::QtServer::textMessageReceived,
//                    [&](quint64 id, const QString &text) { server.sendText(id, text); });
//   if (!server.listen(QHostAddress::LocalHost, 8080))
//       qFatal("%s", qPrintable(server.errorString()));
//
// The handshake decision: a slot connected (directly) to newConnection may
// call accept(id) or refuse(id, status); if none did by the time the
// signal returns, the connection is accepted (AcceptAfterSignal, the
// default). Manual leaves the answer to the host, at any later time within
// WS_OPT_HANDSHAKE_TIMEOUT_MS; Immediate accepts in the I/O thread
// (WS_OPT_AUTO_ACCEPT) and newConnection is news only. While an answer is
// awaited, addHeader(id, name, value) adds to it (e.g. Set-Cookie on the
// 101), and refuse(id, status, body) refuses with a body.
//
// Plain HTTP on the same port: setStaticDir(dir) serves files,
// setHealthPath("/healthz") answers 200 "ok"; every other plain request
// (no upgrade) is emitted as httpRequest(id, method, path, headers, body)
// (currentRequest() has the rest during the signal: query, peer), and a
// slot answers it with respond(id, status, contentType, body) — during the
// signal or later, within WS_OPT_HANDSHAKE_TIMEOUT_MS (else 503). A
// connected httpRequest turns WS_OPT_HTTP_HANDLER on at listen; with no
// slot connected such requests get 404.
//
// Topics: subscribe(id, topic), publishText/publishBinary(topic, ...)
// (encoded once for every subscriber), subscribers(topic); stats() gives
// the server's counters (ws_stats). setBackplane("redis://HOST:PORT")
// before listen makes a publish reach the topic's subscribers on every
// server joined to that Redis broker (ws_server_set_backplane).
#ifndef WSSERVER_QTSERVER_H
#define WSSERVER_QTSERVER_H

#include <wsserver.h>

#include <QByteArray>
#include <QHostAddress>
#include <QList>
#include <QObject>
#include <QPair>
#include <QSslCertificate>
#include <QSslKey>
#include <QString>
#include <QStringList>

QT_BEGIN_NAMESPACE
class QSocketNotifier;
QT_END_NAMESPACE

namespace wsserver {

/// Header lines of a handshake request, in the client's order (names as
/// the client spelled them; repeated names appear once per line).
using QtHeaders = QList<QPair<QByteArray, QByteArray>>;

/// Everything the C request (ws_request_*) says about a handshake, copied.
struct QtRequest {
    quint64 id = 0;
    QString path;                   ///< without the query, e.g. "/chat"
    QString query;                  ///< after '?', "" when none
    QtHeaders headers;
    QString peer;                   ///< "127.0.0.1:51234" or "[::1]:51234"
    QString subprotocol;            ///< the server's choice, "" when none
    QStringList offeredSubprotocols;
    QString clientSubject;          ///< mutual TLS: RFC 4514 subject, else ""
    QString method;                 ///< "GET" for an upgrade; a plain HTTP request's own
    QByteArray body;                ///< a plain HTTP request's body (Content-Length bytes)
    /// The first header called `name` (case-insensitive), or a null QByteArray.
    QByteArray header(const QByteArray &name) const;
};

/// A snapshot of the server's statistics (ws_stats: counters since listen;
/// open_connections, queued_bytes, topics and subscriptions are values now).
using QtStats = ws_stats;

/// Certificate, key and optional client CA (a CA turns on mutual TLS:
/// clients must present a certificate issued by it). Either PEM taken
/// from Qt's own types (toPem()) or file paths read by the library.
class QtTlsConfig {
public:
    /// From files: PEM chain (leaf first), PEM key (PKCS#8, PKCS#1, SEC1 or
    /// encrypted PKCS#8 with `password`), optional CA file.
    static QtTlsConfig fromFiles(const QString &certFile, const QString &keyFile,
                                 const QByteArray &password = QByteArray(), const QString &caFile = QString());
    /// From Qt objects: the chain (leaf first), the key, optional CAs.
    static QtTlsConfig fromQt(const QList<QSslCertificate> &chain, const QSslKey &key,
                              const QList<QSslCertificate> &caCertificates = QList<QSslCertificate>());
    static QtTlsConfig fromQt(const QSslCertificate &certificate, const QSslKey &key,
                              const QList<QSslCertificate> &caCertificates = QList<QSslCertificate>());

    /// Builds the C configuration; nullptr with `error` set on failure
    /// (the library's message). The caller frees it (ws_tls_config_free).
    ws_tls_config *build(QString *error) const;

private:
    bool files_ = false;
    QByteArray cert_, key_, password_, ca_; // PEM bytes, or paths (files_)
};

class QtServer : public QObject {
    Q_OBJECT
public:
    enum AcceptMode {
        AcceptAfterSignal, ///< accepted when newConnection returns, unless a slot answered
        Manual,            ///< the host calls accept()/refuse() (within the handshake timeout)
        Immediate          ///< WS_OPT_AUTO_ACCEPT: accepted before newConnection is emitted
    };
    Q_ENUM(AcceptMode)

    explicit QtServer(QObject *parent = nullptr);
    /// Closes (closeGraceMs()) without emitting signals, and frees.
    ~QtServer() override;

    /// A WS_OPT_* option, before listen (WS_OPT_EVENT_QUEUE stays 1).
    bool setOption(ws_option option, quint64 value);
    quint64 option(ws_option option) const;
    bool setSubprotocols(const QStringList &names);
    /// Origins allowed to open a WebSocket ("https://example.com", compared
    /// ignoring case); others get 403, a request without Origin passes.
    /// Empty (the default): every origin. Before listen.
    bool setAllowedOrigins(const QStringList &origins);
    /// Paths that take upgrades ("/chat", without the query); others get
    /// 404. Empty (the default): every path. Before listen.
    bool setPaths(const QStringList &paths);
    /// Serves plain GET/HEAD from `dir` (types by extension, ETag/304,
    /// index.html; no path leaves it); empty: off. Before listen.
    bool setStaticDir(const QString &dir);
    /// Answers GET `path` (e.g. "/healthz") with 200 "ok"; empty: off.
    /// Before listen.
    bool setHealthPath(const QString &path);
    /// Joins a Redis backplane ("redis://[:PASSWORD@]HOST:PORT[?prefix=P]",
    /// or rediss:// with &ca_file=PATH): publishText/publishBinary then
    /// reach the topic's subscribers on every server on that broker and
    /// prefix; listen fails (WS_ERR_IO) when the broker cannot be reached,
    /// and an outage later is logged (logMessage) while local delivery
    /// goes on (ws_server_set_backplane). Empty: none. Before listen.
    bool setBackplane(const QString &url);
    /// Before listen.
    void setAcceptMode(AcceptMode mode);
    AcceptMode acceptMode() const { return mode_; }

    /// TLS (wss://), before listen: checked at once (key matches cert).
    bool setTls(const QtTlsConfig &config);
    /// ws_server_set_ssl: off again, or on with a configuration set before.
    bool setSsl(bool enabled);
    /// New certificate, key and CA for new handshakes on a listening
    /// wss:// server; on failure the old ones stay in use.
    bool reloadTls(const QtTlsConfig &config);

    /// Binds and starts serving (binds before it returns). Port 0 picks
    /// one (serverPort()). QHostAddress::Any listens on IPv4 0.0.0.0,
    /// AnyIPv6 on "::". On failure: false, errorString(), lastResult().
    bool listen(const QHostAddress &address, quint16 port);
    bool isListening() const { return notifier_ != nullptr; }
    quint16 serverPort() const;
    /// The message of the last call that failed ("" when none did).
    QString errorString() const { return error_; }
    ws_result lastResult() const { return result_; }

    /// Grace the clients get from close() and the destructor (default 1000 ms).
    void setCloseGraceMs(quint32 ms) { grace_ = ms; }
    quint32 closeGraceMs() const { return grace_; }

    /// During newConnection or httpRequest: the whole request (query,
    /// subprotocols, client certificate subject, method, body). Outside
    /// them: an empty request (id 0).
    const QtRequest &currentRequest() const { return current_; }

    /// Bytes queued for `id` and not yet written; -1 when gone.
    qint64 queuedBytes(quint64 id) const;
    /// Connections subscribed to `topic` now, or a negative ws_result.
    qint64 subscribers(const QString &topic) const;
    /// The server's statistics now (all zero before listen or on failure);
    /// cheap enough for a one-second timer.
    QtStats stats() const;

    /// The underlying server, for C calls the binding does not wrap.
    ws_server *nativeHandle() const { return srv_; }

public slots:
    /// WS_OK, WS_BACKPRESSURE (queued; wait for drained) or an error.
    /// `compress` false: sent uncompressed even where the client negotiated
    /// permessage-deflate (setOption(WS_OPT_DEFLATE, 1); WS_SEND_NO_COMPRESS).
    ws_result sendText(quint64 id, const QString &text, bool compress = true);
    ws_result sendBinary(quint64 id, const QByteArray &data, bool compress = true);
    /// To every open connection but `except`: how many queued it, or a
    /// negative ws_result.
    qint64 broadcastText(const QString &text, quint64 except = 0);
    qint64 broadcastBinary(const QByteArray &data, quint64 except = 0);
    /// Starts the close handshake (1000-1003, 1007-1014, 3000-4999; the
    /// reason at most 123 bytes of UTF-8). disconnected() follows.
    ws_result disconnectClient(quint64 id, int code = 1000, const QString &reason = QString());
    /// Answer a waiting handshake (see AcceptMode).
    ws_result accept(quint64 id, const QString &subprotocol = QString());
    ws_result refuse(quint64 id, int httpStatus);
    /// Refuses with a body (at most 64 KiB; text/plain unless a
    /// Content-Type is added with addHeader). An overload: connect to it
    /// with qOverload<quint64, int, const QByteArray &>(&QtServer::refuse).
    ws_result refuse(quint64 id, int httpStatus, const QByteArray &body);
    /// Adds `name: value` to the answer of a waiting handshake (the 101 or
    /// the refusal), e.g. Set-Cookie; in newConnection or later in Manual.
    ws_result addHeader(quint64 id, const QByteArray &name, const QByteArray &value);
    /// Answers plain HTTP request `id` (from httpRequest) with `status`
    /// (100..599), `contentType` (empty: none) and `body`; headers added
    /// before with addHeader(id, ...) go along (ws_http_respond). Once.
    ws_result respond(quint64 id, int status, const QByteArray &contentType = QByteArray(),
                      const QByteArray &body = QByteArray());
    /// Topics (1..1024 bytes of UTF-8); a subscription ends with its connection.
    ws_result subscribe(quint64 id, const QString &topic);
    ws_result unsubscribe(quint64 id, const QString &topic);
    /// To every subscriber of `topic` but `except`: how many queued it (0
    /// for a topic nobody subscribes to), or a negative ws_result.
    qint64 publishText(const QString &topic, const QString &text, quint64 except = 0);
    qint64 publishBinary(const QString &topic, const QByteArray &data, quint64 except = 0);
    /// Stops accepting, 1001 to every client, waits up to closeGraceMs()
    /// on this thread, then emits the last disconnected() signals and
    /// closed(). Safe from a slot of this server.
    void close();

signals:
    /// A handshake request arrived (see AcceptMode for the answer).
    void newConnection(quint64 id, const QString &path, const wsserver::QtHeaders &headers, const QString &peer);
    void textMessageReceived(quint64 id, const QString &message);
    void binaryMessageReceived(quint64 id, const QByteArray &message);
    /// Exactly once per accepted connection, last: close code and reason.
    void disconnected(quint64 id, int code, const QString &reason);
    /// Something went wrong on a connection (`error` a ws_result); disconnected follows.
    void errorOccurred(quint64 id, int error, const QString &message);
    /// The send queue fell back under its limit after WS_BACKPRESSURE.
    void drained(quint64 id);
    /// A plain HTTP request (no upgrade) that no static file or health path
    /// answered: answer it with respond(id, ...), now or later.
    void httpRequest(quint64 id, const QString &method, const QString &path, const wsserver::QtHeaders &headers,
                     const QByteArray &body);
    /// A library log line (WS_LOG_* level).
    void logMessage(int level, const QString &message);
    /// The server is closed and every event has been delivered.
    void closed();

private:
    void onEventFd();
    bool dispatch(ws_event *ev); // false: stop (closed or deleted)
    bool check(ws_result r);
    bool setList(ws_result (*set)(ws_server *, const char *const *, size_t), const QStringList &items);
    void finish();

    ws_server *srv_ = nullptr;
    QSocketNotifier *notifier_ = nullptr;
    AcceptMode mode_ = AcceptAfterSignal;
    QtRequest current_;
    bool answered_ = false;
    bool closing_ = false;
    bool done_ = false;
    bool httpOptionSet_ = false; // the host set WS_OPT_HTTP_HANDLER itself
    quint32 grace_ = 1000;
    QString error_;
    ws_result result_ = WS_OK;
};

} // namespace wsserver

#endif // WSSERVER_QTSERVER_H
