// Boost.Beast peer for the wsserver benchmark: one thread, asynchronous.
//
//   beast_echo PORT [--broadcast | --tls CERT KEY]
//
// Echo mode reads a message and writes it back with the same kind before
// reading the next. Broadcast mode relays every message to every connected
// session; each session writes its queue one message at a time. --tls:
// echo over wss://, websocket::stream<beast::ssl_stream<beast::tcp_stream>>
// on an asio ssl::context (OpenSSL, its defaults) with the PEM files.
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <cstdlib>
#include <cstring>
#include <deque>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <unordered_set>

namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;
using Plain = beast::tcp_stream;
using Tls = beast::ssl_stream<beast::tcp_stream>;

namespace {

struct Message {
    std::string data;
    bool text;
};

// A session on the plain socket or (--tls) on TLS over it.
template <class Next>
class Session;
template <class Next>
std::unordered_set<Session<Next>*> sessions;  // broadcast mode: every open session
bool broadcast_mode = false;

template <class Next>
class Session : public std::enable_shared_from_this<Session<Next>> {
public:
    template <class... Tls>
    explicit Session(tcp::socket socket, Tls&... tls) : ws_(std::move(socket), tls...) {}

    ~Session() {
        if (joined_) sessions<Next>.erase(this);
    }

    void start() {
        if constexpr (std::is_same_v<Next, Plain>) {
            accept();
        } else {
            ws_.next_layer().async_handshake(ssl::stream_base::server, [self = this->shared_from_this()](beast::error_code ec) {
                if (!ec) self->accept();
            });
        }
    }

    void send(std::shared_ptr<const Message> m) {
        out_.push_back(std::move(m));
        if (out_.size() == 1) write_next();
    }

private:
    void accept() {
        ws_.async_accept(beast::bind_front_handler(&Session::on_accept, this->shared_from_this()));
    }

    void on_accept(beast::error_code ec) {
        if (ec) return;
        if (broadcast_mode) {
            sessions<Next>.insert(this);
            joined_ = true;
        }
        read();
    }

    void read() {
        ws_.async_read(buffer_, beast::bind_front_handler(&Session::on_read, this->shared_from_this()));
    }

    void on_read(beast::error_code ec, std::size_t) {
        if (ec) {
            if (joined_) {
                sessions<Next>.erase(this);
                joined_ = false;
            }
            return;
        }
        if (!broadcast_mode) {
            ws_.text(ws_.got_text());
            ws_.async_write(buffer_.data(), beast::bind_front_handler(&Session::on_echoed, this->shared_from_this()));
            return;
        }
        auto m = std::make_shared<const Message>(Message{beast::buffers_to_string(buffer_.data()), ws_.got_text()});
        buffer_.consume(buffer_.size());
        for (Session* s : sessions<Next>) s->send(m);
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
                        beast::bind_front_handler(&Session::on_written, this->shared_from_this()));
    }

    void on_written(beast::error_code ec, std::size_t) {
        if (ec) {
            out_.clear();
            return;
        }
        out_.pop_front();
        if (!out_.empty()) write_next();
    }

    websocket::stream<Next> ws_;
    beast::flat_buffer buffer_;
    std::deque<std::shared_ptr<const Message>> out_;
    bool joined_ = false;
};

class Listener : public std::enable_shared_from_this<Listener> {
public:
    Listener(net::io_context& ioc, tcp::endpoint ep, ssl::context* tls) : acceptor_(ioc), tls_(tls) {
        acceptor_.open(ep.protocol());
        acceptor_.set_option(net::socket_base::reuse_address(true));
        acceptor_.bind(ep);
        acceptor_.listen(net::socket_base::max_listen_connections);
    }

    void accept() {
        acceptor_.async_accept([self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
            if (!ec) {
                socket.set_option(tcp::no_delay(true), ec);
                if (self->tls_)
                    std::make_shared<Session<Tls>>(std::move(socket), *self->tls_)->start();
                else
                    std::make_shared<Session<Plain>>(std::move(socket))->start();
            }
            self->accept();
        });
    }

private:
    tcp::acceptor acceptor_;
    ssl::context* tls_;
};

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::cerr << "usage: beast_echo PORT [--broadcast | --tls CERT KEY]\n";
        return 2;
    }
    auto port = static_cast<unsigned short>(std::atoi(argv[1]));
    broadcast_mode = argc > 2 && std::strcmp(argv[2], "--broadcast") == 0;
    std::optional<ssl::context> tls;
    if (argc > 4 && std::strcmp(argv[2], "--tls") == 0) {
        tls.emplace(ssl::context::tls_server);
        tls->use_certificate_chain_file(argv[3]);
        tls->use_private_key_file(argv[4], ssl::context::pem);
    }
    net::io_context ioc{1};
    tcp::endpoint ep{net::ip::make_address("127.0.0.1"), port};
    std::make_shared<Listener>(ioc, ep, tls ? &*tls : nullptr)->accept();
    net::signal_set signals(ioc, SIGINT, SIGTERM);
    signals.async_wait([&](beast::error_code, int) { ioc.stop(); });
    std::cout << "listening on " << (tls ? "wss" : "ws") << "://127.0.0.1:" << port << std::endl;
    ioc.run();
    return 0;
}
