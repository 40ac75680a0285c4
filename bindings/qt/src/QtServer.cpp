// QtServer.cpp — see QtServer.h. Event-queue mode only: the event fd
// (level-triggered) wakes a QSocketNotifier on the owning thread, which
// takes a bounded batch of events per wakeup, so a flood of messages never
// starves the rest of that thread's event loop.
#include "wsserver/QtServer.h"

#include <QMetaMethod>
#include <QMetaType>
#include <QPointer>
#include <QSocketNotifier>

namespace wsserver {

namespace {
// Events taken per wakeup: the fd stays readable while more wait, so the
// loop comes back to us after running its other work.
constexpr int kBatch = 256;

const uint8_t *bytes(const QByteArray &b) { return reinterpret_cast<const uint8_t *>(b.constData()); }
QString str(const char *s) { return s ? QString::fromUtf8(s) : QString(); }
QString lastError() { return QString::fromUtf8(ws_last_error()); }
} // namespace

static QtRequest copyRequest(quint64 id, const ws_request *req) {
    QtRequest rq;
    rq.id = id;
    if (!req) return rq;
    rq.path = str(ws_request_path(req));
    rq.query = str(ws_request_query(req));
    rq.peer = str(ws_request_peer(req));
    rq.method = str(ws_request_method(req));
    rq.subprotocol = str(ws_request_subprotocol(req));
    rq.clientSubject = str(ws_request_client_subject(req));
    for (size_t i = 0; const char *s = ws_request_offered_subprotocol(req, i); ++i)
        rq.offeredSubprotocols.append(QString::fromUtf8(s));
    const size_t n = ws_request_header_count(req);
    for (size_t i = 0; i < n; ++i) {
        const char *name = nullptr, *value = nullptr;
        if (ws_request_header_at(req, i, &name, &value) == WS_OK)
            rq.headers.append(qMakePair(QByteArray(name), QByteArray(value)));
    }
    size_t len = 0;
    const uint8_t *body = ws_request_body(req, &len);
    if (body && len) rq.body = QByteArray(reinterpret_cast<const char *>(body), int(len));
    return rq;
}

QByteArray QtRequest::header(const QByteArray &name) const {
    for (const auto &h : headers)
        if (h.first.compare(name, Qt::CaseInsensitive) == 0) return h.second;
    return QByteArray();
}

QtTlsConfig QtTlsConfig::fromFiles(const QString &certFile, const QString &keyFile, const QByteArray &password,
                                   const QString &caFile) {
    QtTlsConfig c;
    c.files_ = true;
    c.cert_ = certFile.toUtf8();
    c.key_ = keyFile.toUtf8();
    c.password_ = password;
    c.ca_ = caFile.toUtf8();
    return c;
}

QtTlsConfig QtTlsConfig::fromQt(const QList<QSslCertificate> &chain, const QSslKey &key,
                                const QList<QSslCertificate> &caCertificates) {
    QtTlsConfig c;
    for (const auto &cert : chain) c.cert_ += cert.toPem();
    c.key_ = key.toPem(); // unencrypted PEM: the QSslKey is already decrypted
    for (const auto &cert : caCertificates) c.ca_ += cert.toPem();
    return c;
}

QtTlsConfig QtTlsConfig::fromQt(const QSslCertificate &certificate, const QSslKey &key,
                                const QList<QSslCertificate> &caCertificates) {
    return fromQt(QList<QSslCertificate>{certificate}, key, caCertificates);
}

ws_tls_config *QtTlsConfig::build(QString *error) const {
    ws_tls_config *cfg = ws_tls_config_new();
    if (!cfg) {
        if (error) *error = lastError();
        return nullptr;
    }
    const char *pass = password_.isEmpty() ? nullptr : password_.constData();
    ws_result r = WS_OK;
    if (files_) {
        r = ws_tls_config_set_cert_file(cfg, cert_.constData());
        if (r == WS_OK) r = ws_tls_config_set_key_file(cfg, key_.constData(), pass);
        if (r == WS_OK && !ca_.isEmpty()) r = ws_tls_config_set_ca_file(cfg, ca_.constData());
    } else {
        r = ws_tls_config_set_cert_pem(cfg, bytes(cert_), size_t(cert_.size()));
        if (r == WS_OK) r = ws_tls_config_set_key_pem(cfg, bytes(key_), size_t(key_.size()), pass);
        if (r == WS_OK && !ca_.isEmpty()) r = ws_tls_config_set_ca_pem(cfg, bytes(ca_), size_t(ca_.size()));
    }
    if (r != WS_OK) {
        if (error) *error = lastError();
        ws_tls_config_free(cfg);
        return nullptr;
    }
    return cfg;
}

QtServer::QtServer(QObject *parent) : QObject(parent), srv_(ws_server_new(nullptr, nullptr)) {
    qRegisterMetaType<wsserver::QtHeaders>("wsserver::QtHeaders");
    if (!srv_) {
        error_ = lastError();
        result_ = WS_ERR_PANIC;
        return;
    }
    ws_server_set_option(srv_, WS_OPT_EVENT_QUEUE, 1);
}

QtServer::~QtServer() {
    delete notifier_; // before the fd goes away with the server
    notifier_ = nullptr;
    if (!srv_) return;
    ws_server_close(srv_, grace_);
    ws_event *ev = nullptr;
    while (ws_server_poll(srv_, 0, &ev) == WS_OK) ws_event_free(ev);
    ws_server_free(srv_);
}

bool QtServer::check(ws_result r) {
    result_ = r;
    if (r < 0) {
        error_ = lastError();
        return false;
    }
    return true;
}

bool QtServer::setOption(ws_option option, quint64 value) {
    if (option == WS_OPT_EVENT_QUEUE && value != 1) {
        result_ = WS_ERR_INVALID_ARGUMENT;
        error_ = QStringLiteral("QtServer runs in event-queue mode only (WS_OPT_EVENT_QUEUE = 1)");
        return false;
    }
    if (option == WS_OPT_HTTP_HANDLER) httpOptionSet_ = true;
    if (option == WS_OPT_AUTO_ACCEPT) {
        if (!check(ws_server_set_option(srv_, option, value))) return false;
        mode_ = value ? Immediate : (mode_ == Immediate ? AcceptAfterSignal : mode_);
        return true;
    }
    return check(ws_server_set_option(srv_, option, value));
}

quint64 QtServer::option(ws_option option) const {
    uint64_t v = 0;
    ws_server_get_option(srv_, option, &v);
    return v;
}

bool QtServer::setList(ws_result (*set)(ws_server *, const char *const *, size_t), const QStringList &items) {
    QList<QByteArray> utf8;
    std::vector<const char *> ptrs;
    for (const auto &n : items) utf8.append(n.toUtf8());
    for (const auto &n : utf8) ptrs.push_back(n.constData());
    return check(set(srv_, ptrs.data(), ptrs.size()));
}

bool QtServer::setSubprotocols(const QStringList &names) { return setList(ws_server_set_subprotocols, names); }
bool QtServer::setAllowedOrigins(const QStringList &origins) {
    return setList(ws_server_set_allowed_origins, origins);
}
bool QtServer::setPaths(const QStringList &paths) { return setList(ws_server_set_paths, paths); }

bool QtServer::setStaticDir(const QString &dir) {
    const QByteArray u = dir.toUtf8();
    return check(ws_server_set_static_dir(srv_, dir.isEmpty() ? nullptr : u.constData()));
}

bool QtServer::setHealthPath(const QString &path) {
    const QByteArray u = path.toUtf8();
    return check(ws_server_set_health_path(srv_, path.isEmpty() ? nullptr : u.constData()));
}

bool QtServer::setBackplane(const QString &url) {
    const QByteArray u = url.toUtf8();
    return check(ws_server_set_backplane(srv_, url.isEmpty() ? nullptr : u.constData()));
}

void QtServer::setAcceptMode(AcceptMode mode) {
    if (check(ws_server_set_option(srv_, WS_OPT_AUTO_ACCEPT, mode == Immediate ? 1 : 0))) mode_ = mode;
}

bool QtServer::setTls(const QtTlsConfig &config) {
    ws_tls_config *cfg = config.build(&error_);
    if (!cfg) {
        result_ = WS_ERR_TLS;
        return false;
    }
    bool ok = check(ws_server_set_tls(srv_, cfg));
    ws_tls_config_free(cfg);
    return ok;
}

bool QtServer::setSsl(bool enabled) { return check(ws_server_set_ssl(srv_, enabled ? 1 : 0)); }

bool QtServer::reloadTls(const QtTlsConfig &config) {
    ws_tls_config *cfg = config.build(&error_);
    if (!cfg) {
        result_ = WS_ERR_TLS;
        return false;
    }
    bool ok = check(ws_server_reload_tls(srv_, cfg));
    ws_tls_config_free(cfg);
    return ok;
}

bool QtServer::listen(const QHostAddress &address, quint16 port) {
    QString host;
    if (address == QHostAddress(QHostAddress::Any) || address == QHostAddress(QHostAddress::AnyIPv4))
        host = QStringLiteral("0.0.0.0");
    else if (address == QHostAddress(QHostAddress::AnyIPv6))
        host = QStringLiteral("::");
    else {
        QHostAddress a(address);
        a.setScopeId(QString()); // the C API takes plain literals
        host = a.toString();
    }
    if (!httpOptionSet_ && isSignalConnected(QMetaMethod::fromSignal(&QtServer::httpRequest)) &&
        !check(ws_server_set_option(srv_, WS_OPT_HTTP_HANDLER, 1)))
        return false;
    if (!check(ws_server_listen(srv_, host.toUtf8().constData(), port))) return false;
    int fd = -1;
    if (!check(ws_server_event_fd(srv_, &fd))) return false;
    notifier_ = new QSocketNotifier(fd, QSocketNotifier::Read, this);
    connect(notifier_, &QSocketNotifier::activated, this, &QtServer::onEventFd);
    return true;
}

quint16 QtServer::serverPort() const {
    uint16_t p = 0;
    return ws_server_port(srv_, &p) == WS_OK ? p : 0;
}

qint64 QtServer::queuedBytes(quint64 id) const {
    size_t n = 0;
    return ws_server_queued_bytes(srv_, id, &n) == WS_OK ? qint64(n) : -1;
}

qint64 QtServer::subscribers(const QString &topic) const {
    size_t n = 0;
    ws_result r = ws_server_subscribers(srv_, topic.toUtf8().constData(), &n);
    return r < 0 ? qint64(r) : qint64(n);
}

QtStats QtServer::stats() const {
    QtStats st{};
    if (ws_server_stats(srv_, &st) != WS_OK) st = QtStats{};
    return st;
}

ws_result QtServer::sendText(quint64 id, const QString &text, bool compress) {
    const QByteArray u = text.toUtf8();
    return ws_server_send_ex(srv_, id, bytes(u), size_t(u.size()), WS_TEXT, compress ? 0u : WS_SEND_NO_COMPRESS);
}

ws_result QtServer::sendBinary(quint64 id, const QByteArray &data, bool compress) {
    return ws_server_send_ex(srv_, id, bytes(data), size_t(data.size()), WS_BINARY, compress ? 0u : WS_SEND_NO_COMPRESS);
}

qint64 QtServer::broadcastText(const QString &text, quint64 except) {
    const QByteArray u = text.toUtf8();
    size_t n = 0;
    ws_result r = ws_server_broadcast(srv_, bytes(u), size_t(u.size()), WS_TEXT, except, &n);
    return r < 0 ? qint64(r) : qint64(n);
}

qint64 QtServer::broadcastBinary(const QByteArray &data, quint64 except) {
    size_t n = 0;
    ws_result r = ws_server_broadcast(srv_, bytes(data), size_t(data.size()), WS_BINARY, except, &n);
    return r < 0 ? qint64(r) : qint64(n);
}

ws_result QtServer::disconnectClient(quint64 id, int code, const QString &reason) {
    if (code < 0 || code > 65535) return WS_ERR_BAD_CLOSE_CODE;
    const QByteArray u = reason.toUtf8();
    return ws_server_disconnect(srv_, id, uint16_t(code), reason.isEmpty() ? nullptr : u.constData());
}

ws_result QtServer::accept(quint64 id, const QString &subprotocol) {
    const QByteArray u = subprotocol.toUtf8();
    ws_result r = ws_conn_accept(srv_, id, subprotocol.isEmpty() ? nullptr : u.constData());
    if (id == current_.id && r != WS_ERR_INVALID_ARGUMENT) answered_ = true; // a bad argument answers nothing
    return r;
}

ws_result QtServer::refuse(quint64 id, int httpStatus) {
    ws_result r = WS_ERR_INVALID_ARGUMENT;
    if (httpStatus >= 0 && httpStatus <= 65535) r = ws_conn_refuse(srv_, id, uint16_t(httpStatus));
    if (id == current_.id && r != WS_ERR_INVALID_ARGUMENT) answered_ = true;
    return r;
}

ws_result QtServer::refuse(quint64 id, int httpStatus, const QByteArray &body) {
    ws_result r = WS_ERR_INVALID_ARGUMENT;
    if (httpStatus >= 0 && httpStatus <= 65535)
        r = ws_conn_refuse_with_body(srv_, id, uint16_t(httpStatus), bytes(body), size_t(body.size()));
    if (id == current_.id && r != WS_ERR_INVALID_ARGUMENT) answered_ = true;
    return r;
}

ws_result QtServer::addHeader(quint64 id, const QByteArray &name, const QByteArray &value) {
    return ws_conn_add_header(srv_, id, name.constData(), value.constData());
}

ws_result QtServer::respond(quint64 id, int status, const QByteArray &contentType, const QByteArray &body) {
    if (status < 0 || status > 65535) return WS_ERR_INVALID_ARGUMENT;
    return ws_http_respond(srv_, id, uint16_t(status), contentType.isEmpty() ? nullptr : contentType.constData(),
                           bytes(body), size_t(body.size()));
}

ws_result QtServer::subscribe(quint64 id, const QString &topic) {
    return ws_conn_subscribe(srv_, id, topic.toUtf8().constData());
}

ws_result QtServer::unsubscribe(quint64 id, const QString &topic) {
    return ws_conn_unsubscribe(srv_, id, topic.toUtf8().constData());
}

qint64 QtServer::publishText(const QString &topic, const QString &text, quint64 except) {
    const QByteArray t = topic.toUtf8(), u = text.toUtf8();
    size_t n = 0;
    ws_result r = ws_server_publish(srv_, t.constData(), bytes(u), size_t(u.size()), WS_TEXT, except, &n);
    return r < 0 ? qint64(r) : qint64(n);
}

qint64 QtServer::publishBinary(const QString &topic, const QByteArray &data, quint64 except) {
    const QByteArray t = topic.toUtf8();
    size_t n = 0;
    ws_result r = ws_server_publish(srv_, t.constData(), bytes(data), size_t(data.size()), WS_BINARY, except, &n);
    return r < 0 ? qint64(r) : qint64(n);
}

void QtServer::close() {
    if (!srv_ || closing_) return;
    closing_ = true;
    ws_server_close(srv_, grace_);
    if (!notifier_) return; // never listened: no events
    // Every connection has ended: take the last events now (nothing is
    // left to wait for, so this does not block), then closed().
    onEventFd();
}

void QtServer::finish() {
    if (done_) return;
    done_ = true;
    if (notifier_) notifier_->setEnabled(false);
    emit closed();
}

void QtServer::onEventFd() {
    QPointer<QtServer> self(this);
    // While closing, drain everything: the server has stopped producing.
    for (int i = 0; closing_ || i < kBatch; ++i) {
        ws_event *ev = nullptr;
        ws_result r = ws_server_poll(srv_, 0, &ev);
        if (r == WS_ERR_CLOSED) {
            finish();
            return;
        }
        if (r != WS_OK) return; // WS_ERR_TIMEOUT: empty for now
        if (!dispatch(ev) || !self) return;
    }
}

// Copies what the event says, frees it, then emits: a slot may close or
// deleteLater the server, and nothing borrowed from the event outlives it.
bool QtServer::dispatch(ws_event *ev) {
    QPointer<QtServer> self(this);
    const quint64 id = ev->conn;
    const char *data = reinterpret_cast<const char *>(ev->data);
    const int len = int(ev->len);
    switch (ev->type) {
    case WS_EVENT_OPEN: {
        QtRequest rq = copyRequest(id, ev->request);
        ws_event_free(ev);
        current_ = rq;
        answered_ = false;
        emit newConnection(id, rq.path, rq.headers, rq.peer);
        if (!self) return false;
        if (mode_ == AcceptAfterSignal && !answered_ && !closing_) ws_conn_accept(srv_, id, nullptr);
        current_ = QtRequest();
        break;
    }
    case WS_EVENT_HTTP: {
        QtRequest rq = copyRequest(id, ev->request);
        ws_event_free(ev);
        if (!isSignalConnected(QMetaMethod::fromSignal(&QtServer::httpRequest))) {
            ws_http_respond(srv_, id, 404, nullptr, nullptr, 0); // nobody to answer it
            break;
        }
        current_ = rq;
        emit httpRequest(id, rq.method, rq.path, rq.headers, rq.body);
        if (!self) return false;
        current_ = QtRequest();
        break;
    }
    case WS_EVENT_MESSAGE:
        if (ev->kind == WS_TEXT) {
            QString text = QString::fromUtf8(data, len);
            ws_event_free(ev);
            emit textMessageReceived(id, text);
        } else {
            QByteArray bin(data, len);
            ws_event_free(ev);
            emit binaryMessageReceived(id, bin);
        }
        break;
    case WS_EVENT_CLOSE: {
        const int code = ev->code;
        QString reason = QString::fromUtf8(data, len);
        ws_event_free(ev);
        emit disconnected(id, code, reason);
        break;
    }
    case WS_EVENT_ERROR: {
        const int code = ev->code;
        QString msg = QString::fromUtf8(data, len);
        ws_event_free(ev);
        emit errorOccurred(id, code, msg);
        break;
    }
    case WS_EVENT_DRAIN:
        ws_event_free(ev);
        emit drained(id);
        break;
    case WS_EVENT_LOG: {
        const int level = ev->code;
        QString msg = QString::fromUtf8(data, len);
        ws_event_free(ev);
        emit logMessage(level, msg);
        break;
    }
    default:
        ws_event_free(ev);
        break;
    }
    return bool(self);
}

} // namespace wsserver
