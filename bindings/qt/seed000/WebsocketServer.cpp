// WebsocketServer.cpp — seed 000's API on wsserver::QtServer: connections
// are accepted at once (WS_OPT_AUTO_ACCEPT), each gets a Client object that
// listeners see as IWebsocketClient& until its onClientClose.
#include "WebsocketServer.h"

#include "wsserver/QtServer.h"

#include <algorithm>

class WebsocketServer::Client : public IWebsocketClient {
public:
    Client(wsserver::QtServer *srv, quint64 id, std::string peer) : srv_(srv), id_(id), peer_(std::move(peer)) {}
    int sendMessage(std::string message) override {
        return ws_server_send(srv_->nativeHandle(), id_, reinterpret_cast<const uint8_t *>(message.data()),
                              message.size(), WS_TEXT);
    }
    unsigned long long id() const override { return id_; }
    std::string peer() const override { return peer_; }
    int close(int code, std::string reason) override {
        return srv_->disconnectClient(id_, code, QString::fromStdString(reason));
    }

private:
    wsserver::QtServer *srv_;
    quint64 id_;
    std::string peer_;
};

WebsocketServer::WebsocketServer(QObject *parent) : QObject(parent), server_(new wsserver::QtServer) {
    server_->setAcceptMode(wsserver::QtServer::Immediate);
    using S = wsserver::QtServer;
    connect(server_.get(), &S::newConnection, this,
            [this](quint64 id, const QString &, const wsserver::QtHeaders &, const QString &peer) {
                auto c = std::make_unique<Client>(server_.get(), id, peer.toStdString());
                Client &ref = *c;
                clients_[id] = std::move(c);
                const auto ls = listeners_;
                for (auto *l : ls) l->onClientConnection(ref);
            });
    auto message = [this](quint64 id, const std::string &m) {
        auto it = clients_.find(id);
        if (it == clients_.end()) return;
        const auto ls = listeners_;
        for (auto *l : ls) l->onMessageReceivedFromClient(*it->second, m);
    };
    connect(server_.get(), &S::textMessageReceived, this,
            [message](quint64 id, const QString &t) { message(id, t.toStdString()); });
    connect(server_.get(), &S::binaryMessageReceived, this,
            [message](quint64 id, const QByteArray &b) { message(id, b.toStdString()); });
    connect(server_.get(), &S::disconnected, this, [this](quint64 id, int, const QString &) {
        auto it = clients_.find(id);
        if (it == clients_.end()) return;
        std::unique_ptr<Client> c = std::move(it->second);
        clients_.erase(it);
        const auto ls = listeners_;
        for (auto *l : ls) l->onClientClose(*c);
    });
}

WebsocketServer::~WebsocketServer() = default;

bool WebsocketServer::listen(const QHostAddress &address, quint16 port) {
    if (ssl_) {
        if (!server_->setTls(wsserver::QtTlsConfig::fromQt(cert_, key_, ca_))) {
            error_ = server_->errorString();
            return false;
        }
    }
    if (!server_->listen(address, port)) {
        error_ = server_->errorString();
        return false;
    }
    error_.clear();
    return true;
}

void WebsocketServer::close() { server_->close(); }
bool WebsocketServer::isListening() const { return server_->isListening(); }
quint16 WebsocketServer::serverPort() const { return server_->serverPort(); }
QString WebsocketServer::errorString() const { return error_; }
void WebsocketServer::setSSL(bool ssl) { ssl_ = ssl; }
void WebsocketServer::setPublicCert(const QSslCertificate &cert) { cert_ = cert; }
void WebsocketServer::setPrivateCert(const QSslKey &key) { key_ = key; }
void WebsocketServer::setCaCert(const QList<QSslCertificate> &caCerts) { ca_ = caCerts; }

void WebsocketServer::addClientEventListener(IClientEventListener *listener) {
    if (listener) listeners_.push_back(listener);
}

void WebsocketServer::removeClientEventListener(IClientEventListener *listener) {
    listeners_.erase(std::remove(listeners_.begin(), listeners_.end(), listener), listeners_.end());
}

wsserver::QtServer &WebsocketServer::qtServer() { return *server_; }
