// websocket.hpp — seed 004's `websocket::Server` API on wsserver: a program
// written for it moves over by changing its include and link line
// (`#include <websocket.hpp>`, -lwsserver), and loses its limits: messages
// may be fragmented, larger than 125 bytes, and text is checked as UTF-8.
//
//   websocket::Server server;
//   server.start("0.0.0.0", 8888, std::cerr);     // errors go to the stream
//   websocket::Event event; websocket::ConnectionId id; std::string message;
//   if (server.poll(event, id, message)) ...       // never blocks
//   server.send(id, message);
//   server.stop();                                 // the destructor also stops
//
// Built on the event-queue mode with WS_OPT_AUTO_ACCEPT: every handshake is
// accepted, NewConnection / Message / Disconnect come from ws_server_poll,
// log and error events are written to the stream given to start().
#ifndef WSSERVER_WEBSOCKET_HPP
#define WSSERVER_WEBSOCKET_HPP

#include "wsserver.hpp"

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>

namespace websocket {

enum class Event { NewConnection, Message, Disconnect };

using ConnectionId = std::uint64_t;

class Server {
public:
    Server() = default;
    Server(const Server &) = delete;
    Server &operator=(const Server &) = delete;
    ~Server() { stop(); }

    /// Listens on host:port; `log` receives errors (it must outlive the
    /// server). Returns false (and writes why to `log`) on failure.
    bool start(const std::string &host, std::uint16_t port, std::ostream &log) {
        log_ = &log;
        try {
            wsserver::Options o;
            o.event_queue = 1;
            o.auto_accept = 1;
            server_.emplace(wsserver::Handlers{}, o);
            server_->listen(host, port);
            return true;
        } catch (const wsserver::Error &e) {
            log << "websocket::Server::start: " << e.what() << '\n';
            server_.reset();
            return false;
        }
    }

    /// Takes the next event without waiting. True with `event`, `id` and,
    /// for a Message, `message` set; false when nothing is waiting.
    bool poll(Event &event, ConnectionId &id, std::string &message) {
        if (!server_) return false;
        while (auto ev = server_->poll()) {
            switch (ev->type()) {
            case wsserver::EventType::Open:
                event = Event::NewConnection;
                id = ev->id();
                return true;
            case wsserver::EventType::Message:
                event = Event::Message;
                id = ev->id();
                message.assign(ev->data());
                return true;
            case wsserver::EventType::Close:
                event = Event::Disconnect;
                id = ev->id();
                return true;
            case wsserver::EventType::Error:
                if (log_) *log_ << "websocket: connection #" << ev->id() << ": " << ev->data() << '\n';
                break;
            case wsserver::EventType::Log:
                if (log_ && ev->code() <= WS_LOG_WARN) *log_ << "websocket: " << ev->data() << '\n';
                break;
            default:
                break;
            }
        }
        return false;
    }

    /// Queues `message` (text) for `id`; false when refused (gone, not
    /// UTF-8, or its send queue is full).
    bool send(ConnectionId id, const std::string &message) {
        return server_ && static_cast<bool>(server_->send(id, message, wsserver::Kind::Text));
    }

    /// Closes every connection (1001, 1 s grace) and stops listening.
    void stop() { server_.reset(); }

    /// The bound port (after start; 0 otherwise) — useful with port 0.
    std::uint16_t port() const {
        try {
            return server_ ? server_->port() : 0;
        } catch (const wsserver::Error &) {
            return 0;
        }
    }

private:
    std::optional<wsserver::Server> server_;
    std::ostream *log_ = nullptr;
};

} // namespace websocket

#endif // WSSERVER_WEBSOCKET_HPP
