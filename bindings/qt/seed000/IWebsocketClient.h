// IWebsocketClient.h — seed 000's client interface (on wsserver::QtServer).
// The IWebsocketClient& given to a listener is valid from
// onClientConnection until onClientClose returns.
#ifndef IWEBSOCKETCLIENT_H
#define IWEBSOCKETCLIENT_H

#include <string>

class IWebsocketClient {
public:
    virtual ~IWebsocketClient() {}
    /// Queues a text message (UTF-8) for this client; never blocks.
    /// Returns the ws_result: 0 queued, 1 queued over the send-queue
    /// limit, negative refused (closed, not UTF-8, ...).
    virtual int sendMessage(std::string message) = 0;
    /// The connection id (wsserver), unique for the server's life.
    virtual unsigned long long id() const = 0;
    /// "127.0.0.1:51234" (the client's address and port).
    virtual std::string peer() const = 0;
    /// Starts the close handshake (default code 1000).
    virtual int close(int code = 1000, std::string reason = std::string()) = 0;
};

#endif
