// WebsocketServer.h — seed 000's WebsocketServer API as a facade over
// wsserver::QtServer (the Rust library does the protocol and TLS). A
// seed-000 program moves over by changing its includes and build file:
//
//   WebsocketServer server;
//   server.setSSL(true);
//   server.setPublicCert(SslHandler::retrieveCertFromFile("server.pem"));
//   server.setPrivateCert(SslHandler::retrieveKeyCertFile("server.key", ""));
//   server.addClientEventListener(&handler);
//   bool ok = server.listen(QHostAddress("127.0.0.1"), 8443);
//
// Differences from the seed: setCaCert turns on mutual TLS (clients must
// present a certificate from one of those CAs); errorString() says why
// listen failed. Listener callbacks run on the owning thread's event loop.
#ifndef WEBSOCKETSERVER_H
#define WEBSOCKETSERVER_H

#include <QHostAddress>
#include <QList>
#include <QObject>
#include <QSslCertificate>
#include <QSslKey>
#include <QString>

#include <map>
#include <memory>
#include <vector>

#include "IClientEventListener.h"
#include "IWebsocketClient.h"

namespace wsserver {
class QtServer;
}

class WebsocketServer : public QObject {
    Q_OBJECT
public:
    explicit WebsocketServer(QObject *parent = nullptr);
    ~WebsocketServer() override;

    /// Binds (before returning) and serves, ws:// or wss:// (setSSL).
    bool listen(const QHostAddress &address, quint16 port);
    /// 1001 to every client (1 s grace), onClientClose for each; the server
    /// cannot listen again (make a new one).
    void close();
    bool isListening() const;
    quint16 serverPort() const;
    QString errorString() const;

    void setSSL(bool ssl);
    void setPublicCert(const QSslCertificate &cert);
    void setPrivateCert(const QSslKey &key);
    /// Mutual TLS: clients must present a certificate issued by one of these.
    void setCaCert(const QList<QSslCertificate> &caCerts);

    /// Listeners are not owned; each must outlive the server or be removed.
    void addClientEventListener(IClientEventListener *listener);
    void removeClientEventListener(IClientEventListener *listener);

    /// The QObject server underneath, for what the seed API lacks.
    wsserver::QtServer &qtServer();

private:
    class Client;
    std::unique_ptr<wsserver::QtServer> server_;
    std::vector<IClientEventListener *> listeners_;
    std::map<quint64, std::unique_ptr<Client>> clients_;
    bool ssl_ = false;
    QSslCertificate cert_;
    QSslKey key_;
    QList<QSslCertificate> ca_;
    QString error_;
};

#endif
