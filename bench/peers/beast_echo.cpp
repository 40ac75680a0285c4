// Boost.Beast peer for the wsserver benchmark: one thread, asynchronous.
//
//   beast_echo PORT [--broadcast]
//
// Echo mode reads a message and writes it back with the same kind before
// reading the next. Broadcast mode relays every message to every connected
// session; each session writes its queue one message at a time.
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <cstdlib>
#include <cstring>
#include <deque>
#include <iostream>
#include <memory>
#include <string>
#include <unordered_set>

namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

struct Message {
    std::string data;
    bool text;
};

class Session;
std::unordered_set<Session*> sessions;  // broadcast mode: every open session
bool broadcast_mode = false;

class Session : public std::enable_shared_from_this<Session> {
public:
    explicit Session(tcp::socket socket) : ws_(std::move(socket)) {}

    ~Session() {
        if (joined_) sessions.erase(this);
    }

    void start() {
        ws_.async_accept(beast::bind_front_handler(&Session::on_accept, shared_from_this()));
    }

    void send(std::shared_ptr<const Message> m) {
        out_.push_back(std::move(m));
        if (out_.size() == 1) write_next();
    }

private:
    void on_accept(beast::error_code ec) {
        if (ec) return;
        if (broadcast_mode) {
            sessions.insert(this);
            joined_ = true;
        }
        read();
    }

    void read() {
        ws_.async_read(buffer_, beast::bind_front_handler(&Session::on_read, shared_from_this()));
    }

    void on_read(beast::error_code ec, std::size_t) {
        if (ec) {
            if (joined_) {
                sessions.erase(this);
                joined_ = false;
            }
            return;
        }
        if (!broadcast_mode) {
            ws_.text(ws_.got_text());
            ws_.async_write(buffer_.data(), beast::bind_front_handler(&Session::on_echoed, shared_from_this()));
            return;
        }
        auto m = std::make_shared<const Message>(Message{beast::buffers_to_string(buffer_.data()), ws_.got_text()});
        buffer_.consume(buffer_.size());
        for (Session* s : sessions) s->send(m);
        read();
    }

    void on_echoed(beast::error_code ec, std::size_t) {
        if (ec) return;
        buffer_.consume(buffer_.size());
        read();
    }

    void write_next() {
        ws_.text(out_.front()->text);
        ws_.async_write(net::buffer(out_.front()->data),
                        beast::bind_front_handler(&Session::on_written, shared_from_this()));
    }

    void on_written(beast::error_code ec, std::size_t) {
        if (ec) {
            out_.clear();
            return;
        }
        out_.pop_front();
        if (!out_.empty()) write_next();
    }

    websocket::stream<beast::tcp_stream> ws_;
    beast::flat_buffer buffer_;
    std::deque<std::shared_ptr<const Message>> out_;
    bool joined_ = false;
};

class Listener : public std::enable_shared_from_this<Listener> {
public:
    Listener(net::io_context& ioc, tcp::endpoint ep) : acceptor_(ioc) {
        acceptor_.open(ep.protocol());
        acceptor_.set_option(net::socket_base::reuse_address(true));
        acceptor_.bind(ep);
        acceptor_.listen(net::socket_base::max_listen_connections);
    }

    void accept() {
        acceptor_.async_accept([self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
            if (!ec) {
                socket.set_option(tcp::no_delay(true), ec);
                std::make_shared<Session>(std::move(socket))->start();
            }
            self->accept();
        });
    }

private:
    tcp::acceptor acceptor_;
};

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::cerr << "usage: beast_echo PORT [--broadcast]\n";
        return 2;
    }
    auto port = static_cast<unsigned short>(std::atoi(argv[1]));
    broadcast_mode = argc > 2 && std::strcmp(argv[2], "--broadcast") == 0;
    net::io_context ioc{1};
    std::make_shared<Listener>(ioc, tcp::endpoint{net::ip::make_address("127.0.0.1"), port})->accept();
    net::signal_set signals(ioc, SIGINT, SIGTERM);
    signals.async_wait([&](beast::error_code, int) { ioc.stop(); });
    std::cout << "listening on ws://127.0.0.1:" << port << std::endl;
    ioc.run();
    return 0;
}
