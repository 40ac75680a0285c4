// An echo server run on a Boost.Asio io_context: the server's event fd is
// watched with a posix::stream_descriptor, and each time it is readable the
// waiting events are taken with poll() on the io_context's thread — no
// callbacks, no locks. Usage: asio_echo [host] [port]   (127.0.0.1 8080)
// Prints one "listening on ws://HOST:PORT" line; SIGINT/SIGTERM close the
// server and exit 0. Needs Boost headers only (Debian: libboost-dev).
#include <cstdlib>
#include <iostream>
#include <string>

#include <boost/asio.hpp>

#include "wsserver.hpp"

namespace asio = boost::asio;

class AsioEcho {
public:
    AsioEcho(asio::io_context &io, wsserver::Server &server)
        : server_(server), fd_(io, server.event_fd()), signals_(io, SIGINT, SIGTERM) {
        signals_.async_wait([this](const boost::system::error_code &ec, int) {
            if (!ec) server_.close(1000); // the last events follow on the fd
        });
        wait();
    }
    ~AsioEcho() { fd_.release(); } // the fd is the server's: never close it

private:
    void wait() {
        fd_.async_wait(asio::posix::stream_descriptor::wait_read, [this](const boost::system::error_code &ec) {
            if (ec) return;
            while (auto ev = server_.poll()) handle(*ev);
            if (server_.closed()) {
                signals_.cancel(); // nothing left: run() returns
                return;
            }
            wait();
        });
    }
    void handle(const wsserver::Event &ev) {
        switch (ev.type()) {
        case wsserver::EventType::Open:
            ev.connection().accept();
            break;
        case wsserver::EventType::Message:
            ev.connection().send(ev.data(), ev.kind());
            break;
        case wsserver::EventType::Log:
            std::cerr << "[log " << ev.code() << "] " << ev.data() << '\n';
            break;
        default:
            break;
        }
    }
    wsserver::Server &server_;
    asio::posix::stream_descriptor fd_;
    asio::signal_set signals_;
};

int main(int argc, char **argv) {
    std::string host = argc > 1 ? argv[1] : "127.0.0.1";
    unsigned long port = 8080;
    if (argc > 2) {
        char *end = nullptr;
        port = std::strtoul(argv[2], &end, 10);
        if (*argv[2] == '\0' || *end != '\0' || port > 65535) {
            std::cerr << "usage: " << argv[0] << " [host] [port]\n";
            return 2;
        }
    }
    try {
        asio::io_context io;
        wsserver::Options options;
        options.event_queue = 1;
        wsserver::Server server({}, options);
        server.listen(host, static_cast<uint16_t>(port));
        AsioEcho echo(io, server); // the signal set exists before the first signal can matter
        bool v6 = host.find(':') != std::string::npos && host[0] != '[';
        std::cout << "listening on ws://" << (v6 ? "[" : "") << host << (v6 ? "]" : "") << ':' << server.port()
                  << std::endl;
        io.run();
    } catch (const std::exception &e) {
        std::cerr << "asio_echo: " << e.what() << '\n';
        return 1;
    }
    return 0;
}
