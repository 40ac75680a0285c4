// Tests of bindings/cpp/wsserver.hpp with the C test client (tests/c/client.c)
// over loopback. Prints "N passed, M failed"; exit status 1 on any failure.
#include "websocket.hpp"
#include "wsserver.hpp"

#include <sstream>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern "C" {
#include "client.h"
}

static std::atomic<int> passed{0}, failed{0}; // CHECK also runs in handlers (I/O thread)
#define CHECK(cond, what)                                                                   \
    do {                                                                                    \
        if (cond) {                                                                         \
            ++passed;                                                                       \
        } else {                                                                            \
            ++failed;                                                                       \
            std::printf("FAIL %s:%d: %s  [%s]\n", __FILE__, __LINE__, what, #cond);         \
            std::fflush(stdout);                                                            \
        }                                                                                   \
    } while (0)

// Waits (polling, at most `ms`) for `pred` to hold.
template <typename P> static bool wait_until(P pred, int ms = 5000) {
    auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (!pred()) {
        if (std::chrono::steady_clock::now() > end) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
}

// A connected test client; closed by the destructor.
struct Client {
    wsc c{};
    int status = -1;
    Client(uint16_t port, const char *target = "/", const char *headers = nullptr) {
        status = wsc_open(&c, "127.0.0.1", port, target, headers, 0, 5000);
    }
    ~Client() { wsc_free(&c); }
    // Next data message: opcode and payload; opcode -1 on failure.
    std::pair<int, std::string> recv(int timeout_ms = 5000) {
        wsc_frame f{};
        int r = wsc_recv(&c, &f, timeout_ms);
        if (r != WSC_OK) return {-1, c.why};
        std::pair<int, std::string> out{f.opcode, std::string(reinterpret_cast<char *>(f.data), f.len)};
        wsc_frame_free(&f);
        return out;
    }
};

static wsserver::Handlers echo_handlers() {
    wsserver::Handlers h;
    h.on_message = [](wsserver::Connection c, std::string_view d, wsserver::Kind k) { c.send(d, k); };
    return h;
}

static void test_echo() {
    wsserver::Server s(echo_handlers());
    s.listen("127.0.0.1", 0);
    Client c(s.port());
    CHECK(c.status == 101, "handshake accepted");
    CHECK(wsc_send_text(&c.c, "hello") == 0, "client sends text");
    auto m = c.recv();
    CHECK(m.first == WSC_TEXT && m.second == "hello", "text echoed as text");
    const unsigned char bin[] = {0, 1, 2, 255, 0};
    CHECK(wsc_send_frame(&c.c, WSC_BINARY, 1, bin, sizeof bin) == 0, "client sends binary");
    m = c.recv();
    CHECK(m.first == WSC_BINARY && m.second == std::string(reinterpret_cast<const char *>(bin), sizeof bin),
          "binary echoed as binary, NUL bytes kept");
}

// Deflate through the binding: Options::deflate, and send(..., compress)
// choosing per message (RSV1 on the frames the client reads).
static void test_deflate() {
    wsserver::Handlers h;
    h.on_message = [](wsserver::Connection c, std::string_view d, wsserver::Kind k) {
        c.send(d, k, d.substr(0, 3) != "raw");
    };
    wsserver::Options o;
    o.deflate = 1;
    wsserver::Server s(std::move(h), o);
    s.listen("127.0.0.1", 0);
    Client c(s.port(), "/", "Sec-WebSocket-Extensions: permessage-deflate\r\n");
    char ext[256] = "";
    CHECK(c.status == 101 && wsc_answer_header(&c.c, "Sec-WebSocket-Extensions", ext, sizeof ext) &&
              std::string(ext).rfind("permessage-deflate", 0) == 0,
          "deflate negotiated");
    c.c.rsv1_ok = 1;
    std::string text(1000, 'a');
    for (const char *prefix : {"zip", "raw"}) {
        std::string msg = prefix + text;
        wsc_send_text(&c.c, msg.c_str());
        wsc_frame f{};
        bool got = wsc_recv(&c.c, &f, 5000) == WSC_OK;
        bool compressed = std::string(prefix) == "zip";
        CHECK(got && f.rsv1 == (compressed ? 1 : 0) && (compressed ? f.len < 100 : f.len == msg.size()),
              compressed ? "compressed by default" : "compress=false: sent as is");
        wsc_frame_free(&f);
    }
}

static void test_open_request_and_refusal() {
    std::mutex mu;
    std::string path, query, header, peer;
    std::vector<std::string> offered;
    std::optional<std::string> chosen;
    bool subject_none = false;
    wsserver::Handlers h = echo_handlers();
    h.on_open = [&](wsserver::Connection, const wsserver::Request &r) {
        std::lock_guard<std::mutex> g(mu);
        path = std::string(r.path());
        query = std::string(r.query());
        header = std::string(r.header("X-Token").value_or("<none>"));
        peer = std::string(r.peer());
        offered.clear();
        for (auto s : r.offered_subprotocols()) offered.emplace_back(s);
        if (auto s = r.subprotocol()) chosen = std::string(*s);
        subject_none = !r.client_subject().has_value();
        if (r.path() == "/private") return wsserver::refuse(403);
        return wsserver::accept();
    };
    wsserver::Options o;
    o.subprotocols = {"chat.v2", "chat.v1"};
    wsserver::Server s(std::move(h), o);
    s.listen("127.0.0.1", 0);
    {
        Client c(s.port(), "/room?id=7", "X-Token: abc\r\nSec-WebSocket-Protocol: chat.v1, chat.v2\r\n");
        CHECK(c.status == 101, "accepted");
        std::lock_guard<std::mutex> g(mu);
        CHECK(path == "/room", "Request::path");
        CHECK(query == "id=7", "Request::query");
        CHECK(header == "abc", "Request::header");
        CHECK(peer.rfind("127.0.0.1:", 0) == 0, "Request::peer");
        CHECK(offered.size() == 2 && offered[0] == "chat.v1" && offered[1] == "chat.v2",
              "Request::offered_subprotocols in the client's order");
        CHECK(chosen && *chosen == "chat.v2", "Request::subprotocol: the server's preference");
        CHECK(subject_none, "no client subject without mutual TLS");
        char out[64];
        CHECK(wsc_answer_header(&c.c, "Sec-WebSocket-Protocol", out, sizeof out) && std::string(out) == "chat.v2",
              "chosen subprotocol in the answer");
    }
    Client refused(s.port(), "/private");
    CHECK(refused.status == 403, "open handler refused with HTTP 403");
}

static void test_throwing_handlers() {
    std::mutex mu;
    std::vector<std::string> logs;
    wsserver::Handlers h;
    h.on_open = [](wsserver::Connection, const wsserver::Request &r) -> wsserver::OpenAnswer {
        if (r.path() == "/throw") throw std::runtime_error("open says no");
        return wsserver::accept();
    };
    h.on_message = [](wsserver::Connection c, std::string_view d, wsserver::Kind k) {
        if (d == "boom") throw std::runtime_error("kaboom in on_message");
        if (d == "int") throw 42;
        c.send(d, k);
    };
    h.on_log = [&](wsserver::LogLevel l, std::string_view m) {
        std::lock_guard<std::mutex> g(mu);
        if (l == wsserver::LogLevel::Error) logs.emplace_back(m);
    };
    wsserver::Server s(std::move(h));
    s.listen("127.0.0.1", 0);
    auto logged = [&](const char *needle) {
        return wait_until([&] {
            std::lock_guard<std::mutex> g(mu);
            for (auto &l : logs)
                if (l.find(needle) != std::string::npos) return true;
            return false;
        });
    };
    Client c(s.port());
    CHECK(c.status == 101, "accepted");
    wsc_send_text(&c.c, "boom");
    CHECK(logged("kaboom in on_message"), "the exception's what() reached the log handler");
    CHECK(logged("on_message"), "the log line names the handler");
    wsc_send_text(&c.c, "int");
    CHECK(logged("not derived from std::exception"), "a non-std exception is reported too");
    wsc_send_text(&c.c, "still there?");
    auto m = c.recv();
    CHECK(m.first == WSC_TEXT && m.second == "still there?", "the connection keeps working after a throw");
    Client t(s.port(), "/throw");
    CHECK(t.status == 500, "an open handler that throws refuses with 500");
    CHECK(logged("open says no"), "the open handler's exception is logged");
    Client again(s.port());
    CHECK(again.status == 101, "the server keeps accepting");
}

static void test_send_status_and_user_data() {
    std::atomic<uint64_t> opened{0}, closed{0};
    std::atomic<int> marker_seen{0};
    static int marker = 7;
    wsserver::Handlers h;
    h.on_open = [&](wsserver::Connection c, const wsserver::Request &) {
        opened = c.id();
        CHECK(c.set_user_data(&marker) == WS_OK, "set_user_data in on_open");
        return wsserver::accept();
    };
    h.on_close = [&](wsserver::Connection c, uint16_t code, std::string_view reason) {
        if (c.user_data() == &marker && code == 1000 && reason == "bye") marker_seen = 1;
        closed = c.id();
    };
    wsserver::Server s(std::move(h));
    s.listen("127.0.0.1", 0);
    {
        Client c(s.port());
        CHECK(c.status == 101 && wait_until([&] { return opened != 0; }), "connected");
        uint64_t id = opened;
        CHECK(s.connection(id).user_data() == &marker, "user_data from another thread");
        auto r = s.send(id, "from the server");
        CHECK(r.status == wsserver::SendStatus::Queued && r.result == WS_OK && bool(r), "send: queued");
        CHECK(c.recv().second == "from the server", "the client got it");
        auto bad = s.send(id, std::string_view("\xff\xfe", 2), wsserver::Kind::Text);
        CHECK(bad.status == wsserver::SendStatus::Refused && bad.result == WS_ERR_INVALID_UTF8 && !bad,
              "send: invalid UTF-8 text refused with its reason");
        auto q = s.connection(id).queued_bytes();
        CHECK(q.has_value(), "queued_bytes of an open connection");
        wsc_send_close(&c.c, 1000, "bye");
        CHECK(wait_until([&] { return closed == id; }), "on_close ran");
        CHECK(marker_seen == 1, "on_close saw code, reason and user data");
        auto r2 = s.send(id, "too late");
        CHECK(r2.status == wsserver::SendStatus::Refused && r2.result == WS_ERR_CLOSED,
              "send on a closed id: refused, WS_ERR_CLOSED");
        CHECK(s.disconnect(id) == WS_ERR_CLOSED, "disconnect on a closed id: WS_ERR_CLOSED");
        CHECK(!s.connection(id).queued_bytes(), "queued_bytes of a closed id: none");
        auto r3 = s.send(id + 1000, "nobody");
        CHECK(r3.status == wsserver::SendStatus::Refused && r3.result == WS_ERR_NO_SUCH_CONN,
              "send on an id never issued: WS_ERR_NO_SUCH_CONN");
    }
    {
        Client c(s.port());
        CHECK(wait_until([&] { return opened != 0 && opened != closed; }), "second client");
        size_t n = 0;
        auto b = s.broadcast("to all", wsserver::Kind::Text, 0, &n);
        CHECK(b.status == wsserver::SendStatus::Queued && n == 1, "broadcast queued for the one client");
        CHECK(c.recv().second == "to all", "broadcast received");
        CHECK(s.disconnect(opened, 4000, "go") == WS_OK, "disconnect");
        wsc_frame f{};
        CHECK(wsc_recv(&c.c, &f, 5000) == WSC_OK && f.opcode == WSC_CLOSE, "close frame received");
        char why[32];
        CHECK(wsc_close_code(&f, why, sizeof why) == 4000 && std::string(why) == "go", "with code and reason");
        wsc_frame_free(&f);
    }
}

static void test_errors() {
    wsserver::Server s;
    try {
        s.listen("not-a-host", 0);
        CHECK(false, "listen on a bad host throws");
    } catch (const wsserver::Error &e) {
        CHECK(e.result() == WS_ERR_BAD_HOST, "Error carries WS_ERR_BAD_HOST");
        CHECK(std::string(e.name()) == "WS_ERR_BAD_HOST", "Error::name");
        CHECK(!e.c_message().empty() && std::string(e.what()).find(e.c_message()) != std::string::npos,
              "what() holds the C message");
        const std::runtime_error &base = e;
        CHECK(base.what()[0] != '\0', "derived from std::runtime_error");
    }
    wsserver::Server a;
    a.listen("127.0.0.1", 0);
    wsserver::Server b;
    try {
        b.listen("127.0.0.1", a.port());
        CHECK(false, "listen on a port in use throws");
    } catch (const wsserver::Error &e) {
        CHECK(e.result() == WS_ERR_ADDR_IN_USE, "Error carries WS_ERR_ADDR_IN_USE");
    }
    try {
        a.set_option(WS_OPT_MAX_MESSAGE_SIZE, 10);
        CHECK(false, "an option after listen throws");
    } catch (const wsserver::Error &e) {
        CHECK(e.result() == WS_ERR_STATE, "option after listen: WS_ERR_STATE");
    }
    try {
        wsserver::Options o;
        o.threads = 0;
        wsserver::Server bad({}, o);
        CHECK(false, "an out-of-range option throws from the constructor");
    } catch (const wsserver::Error &e) {
        CHECK(e.result() == WS_ERR_INVALID_ARGUMENT, "out-of-range option: WS_ERR_INVALID_ARGUMENT");
    }
    try {
        wsserver::Server cb;
        cb.listen("127.0.0.1", 0);
        cb.event_fd();
        CHECK(false, "event_fd in callback mode throws");
    } catch (const wsserver::Error &e) {
        CHECK(e.result() == WS_ERR_STATE, "event_fd in callback mode: WS_ERR_STATE");
    }
    try {
        wsserver::TlsConfig::from_files("/nonexistent/cert.pem", "/nonexistent/key.pem");
        CHECK(false, "a missing certificate file throws");
    } catch (const wsserver::Error &e) {
        CHECK(e.result() == WS_ERR_TLS, "missing certificate: WS_ERR_TLS");
    }
    try {
        wsserver::TlsConfig empty;
        wsserver::Server t;
        t.set_tls(empty);
        CHECK(false, "set_tls with an empty config throws");
    } catch (const wsserver::Error &e) {
        CHECK(e.result() == WS_ERR_TLS, "empty TLS config: WS_ERR_TLS");
    }
}

static void test_option_defaults() {
    wsserver::Options o;
    ws_server *raw = ws_server_new(nullptr, nullptr);
    int n = 0;
    o.each([&](ws_option opt, uint64_t v) {
        uint64_t c = 0, info = 1;
        ws_server_get_option(raw, opt, &c);
        ws_option_info(opt, nullptr, &info, nullptr, nullptr, nullptr);
        const char *name = "?";
        ws_option_info(opt, &name, nullptr, nullptr, nullptr, nullptr);
        std::string what = std::string("Options default of ") + name + " is the C default";
        CHECK(v == c && v == info, what.c_str());
        ++n;
    });
    // Every option the library knows (ids from 1 until the first unknown) is in Options.
    int known = 0;
    while (ws_option_info(static_cast<ws_option>(known + 1), nullptr, nullptr, nullptr, nullptr, nullptr) == WS_OK)
        ++known;
    CHECK(n == known, "Options covers every option of the library");
    ws_server_free(raw);
    wsserver::Options custom;
    custom.max_message_size = 4096;
    wsserver::Server s({}, custom);
    CHECK(s.get_option(WS_OPT_MAX_MESSAGE_SIZE) == 4096, "a set option is in force");
    CHECK(s.get_option(WS_OPT_THREADS) == wsserver::Options().threads, "the others keep their defaults");
}

static void test_event_queue() {
    wsserver::Options o;
    o.event_queue = 1;
    wsserver::Server s({}, o);
    s.listen("127.0.0.1", 0);
    CHECK(s.event_fd() >= 0, "event_fd");
    bool only_logs = true;
    while (auto ev = s.poll(std::chrono::milliseconds(0)))
        if (ev->type() != wsserver::EventType::Log || ev->id() != 0) only_logs = false;
    CHECK(only_logs, "before any client: at most log events (connection 0)");
    static int tag = 1;
    std::atomic<bool> stop{false};
    std::atomic<int> closes{0};
    // The host's loop: accept /echo, refuse the rest, echo messages.
    std::thread loop([&] {
        while (!stop) {
            auto ev = s.poll(std::chrono::milliseconds(20));
            if (!ev) continue;
            switch (ev->type()) {
            case wsserver::EventType::Open:
                if (ev->request() && ev->request()->path() == "/echo") {
                    ev->connection().set_user_data(&tag);
                    ev->connection().accept();
                } else {
                    ev->connection().refuse(404);
                }
                break;
            case wsserver::EventType::Message: {
                std::string reply = std::string(ev->data()) + (ev->user_data() == &tag ? "+tag" : "");
                ev->connection().send(reply, ev->kind());
                break;
            }
            case wsserver::EventType::Close:
                ++closes;
                break;
            default:
                break;
            }
        }
    });
    {
        Client c(s.port(), "/echo");
        CHECK(c.status == 101, "accepted through poll()");
        wsc_send_text(&c.c, "queued");
        auto m = c.recv();
        CHECK(m.first == WSC_TEXT && m.second == "queued+tag", "echo through poll(), user data in the event");
        Client r(s.port(), "/other");
        CHECK(r.status == 404, "refused through poll()");
        wsc_send_close(&c.c, 1000, nullptr);
        CHECK(wait_until([&] { return closes == 1; }), "Close event polled");
    }
    stop = true;
    loop.join();
    s.close(500);
    bool saw_closed = wait_until([&] { return !s.poll(std::chrono::milliseconds(10)) && s.closed(); });
    CHECK(saw_closed, "poll after close: nullopt and closed()");
}

static void test_move_and_destruction() {
    std::atomic<uint64_t> opened{0};
    wsserver::Handlers h = echo_handlers();
    h.on_open = [&](wsserver::Connection c, const wsserver::Request &) {
        opened = c.id();
        return wsserver::accept();
    };
    wsserver::Server a(std::move(h));
    a.listen("127.0.0.1", 0);
    uint16_t port = a.port();
    Client c(port);
    CHECK(c.status == 101 && wait_until([&] { return opened != 0; }), "connected before the move");
    wsserver::Server b(std::move(a));
    CHECK(!a && bool(b), "moved-from is empty, moved-to is not");
    CHECK(a.send(opened, "x").result == WS_ERR_NULL, "moved-from send: refused, WS_ERR_NULL");
    try {
        a.listen("127.0.0.1", 0);
        CHECK(false, "moved-from listen throws");
    } catch (const wsserver::Error &e) {
        CHECK(e.result() == WS_ERR_NULL, "moved-from listen: WS_ERR_NULL");
    }
    CHECK(a.close() == WS_ERR_NULL, "moved-from close: WS_ERR_NULL");
    wsc_send_text(&c.c, "after move");
    CHECK(c.recv().second == "after move", "the moved-to server still echoes (handlers moved along)");
    wsserver::Server d;
    d = std::move(b); // move assignment: d's own (idle) server is freed
    wsc_send_text(&c.c, "after assign");
    CHECK(c.recv().second == "after assign", "echo after move assignment");
    std::thread client_side([&] {
        char reason[64];
        int code = wsc_recv_close(&c.c, 5000, nullptr, reason, sizeof reason);
        CHECK(code == 1001, "destructor sent close 1001 to the connected client");
        wsc_send_close(&c.c, 1001, nullptr);
    });
    { wsserver::Server gone(std::move(d)); } // destructor: close (grace) and free
    client_side.join();
    CHECK(wsc_wait_eof(&c.c, 5000) == 1, "the connection is closed after the destructor");
    Client late(port);
    CHECK(late.status != 101, "nothing listens after the destructor");
}

// The seed-004 facade: start, poll (never blocking), send, stop.
static void test_websocket_facade() {
    std::ostringstream log;
    websocket::Server bad;
    CHECK(!bad.start("not-a-host", 0, log), "start on a bad host: false");
    CHECK(log.str().find("WS_ERR_BAD_HOST") != std::string::npos, "the reason went to the log stream");
    websocket::Event event{};
    websocket::ConnectionId id = 0;
    std::string message;
    CHECK(!bad.poll(event, id, message) && !bad.send(1, "x"), "a server that did not start: poll/send false");

    websocket::Server server;
    CHECK(server.start("127.0.0.1", 0, log) && server.port() != 0, "start on port 0");
    auto next = [&](websocket::Event want) {
        return wait_until([&] { return server.poll(event, id, message) && event == want; });
    };
    auto t0 = std::chrono::steady_clock::now();
    CHECK(!server.poll(event, id, message), "poll with nothing waiting: false");
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(500), "and it does not block");
    Client c(server.port(), "/any/path?q");
    CHECK(c.status == 101, "auto-accepted");
    CHECK(next(websocket::Event::NewConnection) && id != 0, "Event::NewConnection");
    websocket::ConnectionId first = id;
    std::string big(1000, 'y');
    wsc_send_text(&c.c, big.c_str());
    CHECK(next(websocket::Event::Message) && id == first && message == big,
          "Event::Message with a 1000-byte message (over seed 004's 125)");
    CHECK(server.send(id, message), "send");
    CHECK(c.recv().second == big, "the client got the reply");
    const char frag1[] = "frag", frag2[] = "mented";
    wsc_send_frame(&c.c, WSC_TEXT, 0, frag1, 4);
    wsc_send_frame(&c.c, WSC_CONT, 1, frag2, 6);
    CHECK(next(websocket::Event::Message) && message == "fragmented", "a fragmented message, reassembled");
    wsc_send_close(&c.c, 1000, nullptr);
    CHECK(next(websocket::Event::Disconnect) && id == first, "Event::Disconnect");
    CHECK(!server.send(first, "gone"), "send to a disconnected id: false");
    Client c2(server.port());
    CHECK(next(websocket::Event::NewConnection), "second client");
    std::thread closer([&] {
        int code = wsc_recv_close(&c2.c, 5000, nullptr, nullptr, 0);
        CHECK(code == 1001, "stop() closes clients with 1001");
        wsc_send_close(&c2.c, 1001, nullptr);
    });
    server.stop();
    closer.join();
    CHECK(!server.poll(event, id, message), "poll after stop: false");
}

// The HTTP body after a non-101 answer's head (Content-Length bytes).
static std::string answer_body(Client &c) {
    char cl[32];
    if (!wsc_answer_header(&c.c, "Content-Length", cl, sizeof cl)) return "<no Content-Length>";
    size_t want = std::strtoul(cl, nullptr, 10);
    if (c.c.len < want) wsc_read_some(&c.c, want - c.c.len, 5000);
    if (c.c.len < want) return "<short body>";
    return std::string(reinterpret_cast<char *>(c.c.buf), want);
}

// Ids of the connections opened, by request path ("/a" -> id).
struct Opened {
    std::mutex mu;
    std::vector<std::pair<std::string, uint64_t>> ids;
    uint64_t get(const std::string &path) {
        uint64_t id = 0;
        wait_until([&] {
            std::lock_guard<std::mutex> g(mu);
            for (auto &p : ids)
                if (p.first == path) id = p.second;
            return id != 0;
        });
        return id;
    }
};

static void test_topics() {
    Opened opened;
    std::atomic<uint64_t> closed{0};
    wsserver::Handlers h;
    h.on_open = [&](wsserver::Connection c, const wsserver::Request &r) {
        std::lock_guard<std::mutex> g(opened.mu);
        opened.ids.emplace_back(std::string(r.path()), c.id());
        return wsserver::accept();
    };
    h.on_message = [](wsserver::Connection c, std::string_view d, wsserver::Kind) {
        // Subscribing from inside a callback.
        if (d.substr(0, 5) == "join ") c.subscribe(std::string(d.substr(5)));
        if (d.substr(0, 6) == "leave ") c.unsubscribe(std::string(d.substr(6)));
        c.send("ok " + std::string(d));
    };
    h.on_close = [&](wsserver::Connection c, uint16_t, std::string_view) { closed = c.id(); };
    wsserver::Server s(std::move(h));
    s.listen("127.0.0.1", 0);
    Client a(s.port(), "/a"), b(s.port(), "/b");
    auto c = std::make_unique<Client>(s.port(), "/c");
    CHECK(a.status == 101 && b.status == 101 && c->status == 101, "three clients");
    uint64_t ia = opened.get("/a"), ib = opened.get("/b"), ic = opened.get("/c");
    CHECK(ia && ib && ic, "their ids");
    CHECK(s.subscribers("news") == 0, "no subscribers before subscribing");
    CHECK(s.subscribe(ia, "news") == WS_OK && s.subscribe(ib, "news") == WS_OK, "subscribe from the host thread");
    CHECK(s.subscribe(ib, "news") == WS_OK, "subscribing twice is fine");
    wsc_send_text(&c->c, "join news");
    CHECK(c->recv().second == "ok join news", "subscribed from inside on_message");
    CHECK(s.subscribers("news") == 3, "subscribers: 3");
    CHECK(s.publish("news", "headline", wsserver::Kind::Text, ia) == 2, "publish except a: queued for 2");
    auto mb = b.recv(), mc = c->recv();
    CHECK(mb.first == WSC_TEXT && mb.second == "headline", "b got the publication");
    CHECK(mc.first == WSC_TEXT && mc.second == "headline", "c got the publication");
    CHECK(s.send(ia, "direct").result == WS_OK && a.recv().second == "direct",
          "a got nothing published before its next direct message");
    const std::string bin("\0\1\2", 3);
    CHECK(s.publish(std::string("news"), bin, wsserver::Kind::Binary) == 3, "binary publish to all 3");
    for (Client *cl : {&a, &b, c.get()}) {
        auto m = cl->recv();
        CHECK(m.first == WSC_BINARY && m.second == bin, "binary publication received");
    }
    ws_result r = WS_ERR_PANIC;
    CHECK(s.publish("nobody-here", "x", wsserver::Kind::Text, 0, &r) == 0 && r == WS_OK,
          "publish to an unknown topic: 0 queued, WS_OK");
    CHECK(s.publish("", "x", wsserver::Kind::Text, 0, &r) == 0 && r == WS_ERR_INVALID_ARGUMENT,
          "publish to an empty topic: WS_ERR_INVALID_ARGUMENT");
    CHECK(s.connection(ia).subscribe("") == WS_ERR_INVALID_ARGUMENT, "subscribe to an empty topic refused");
    CHECK(s.unsubscribe(ib, "news") == WS_OK && s.subscribers("news") == 2, "unsubscribe: 2 left");
    CHECK(s.unsubscribe(ib, "never") == WS_OK, "unsubscribe from a topic not subscribed: fine");
    wsc_send_close(&c->c, 1000, nullptr);
    CHECK(wait_until([&] { return closed == ic; }), "c closed");
    c.reset();
    CHECK(s.subscribers("news") == 1, "c's subscription ended with it: 1 left");
    CHECK(s.subscribe(ic, "news") == WS_ERR_CLOSED, "subscribe a closed connection: WS_ERR_CLOSED");
    CHECK(s.subscribe(ic + 1000, "news") == WS_ERR_NO_SUCH_CONN, "subscribe an id never issued");
    CHECK(s.publish("news", "last") == 1 && a.recv().second == "last", "publish reaches the one left");
}

static void test_stats() {
    std::atomic<uint64_t> opened{0};
    wsserver::Handlers h = echo_handlers();
    h.on_open = [&](wsserver::Connection c, const wsserver::Request &r) {
        if (r.path() == "/no") return wsserver::refuse(403);
        opened = c.id();
        return wsserver::accept();
    };
    wsserver::Server s(std::move(h));
    s.listen("127.0.0.1", 0);
    wsserver::Stats z = s.stats();
    CHECK(z.open_connections == 0 && z.handshakes_accepted == 0 && z.messages_in == 0 && z.topics == 0,
          "stats start at zero");
    Client c(s.port());
    CHECK(c.status == 101, "connected");
    CHECK(wait_until([&] { return s.stats().open_connections == 1; }), "open_connections: 1");
    wsc_send_text(&c.c, "12345");
    CHECK(c.recv().second == "12345", "echo");
    // A count moves right after what it counts: the reply may arrive first.
    wsserver::Stats st;
    CHECK(wait_until([&] {
              st = s.stats();
              return st.messages_out >= 1 && st.bytes_out > z.bytes_out;
          }),
          "messages_out and bytes_out moved");
    CHECK(st.handshakes_accepted == 1, "handshakes_accepted: 1");
    CHECK(st.messages_in == 1 && st.bytes_in == 5, "messages_in 1, bytes_in 5");
    Client no(s.port(), "/no");
    CHECK(no.status == 403, "refused");
    CHECK(wait_until([&] { return s.stats().handshakes_refused == 1; }), "handshakes_refused: 1");
    uint64_t id = opened;
    s.subscribe(id, "t1");
    s.subscribe(id, "t2");
    st = s.stats();
    CHECK(st.topics == 2 && st.subscriptions == 2, "topics 2, subscriptions 2");
    wsc_send_close(&c.c, 1000, nullptr);
    CHECK(wait_until([&] { return s.stats().open_connections == 0; }), "open_connections back to 0");
    st = s.stats();
    CHECK(st.topics == 0 && st.subscriptions == 0, "topics and subscriptions gone with the connection");
}

// A loopback port nothing listens on (bound, then closed).
static uint16_t free_port() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t n = sizeof a;
    bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a);
    getsockname(fd, reinterpret_cast<sockaddr *>(&a), &n);
    close(fd);
    return ntohs(a.sin_port);
}

// A redis-server of the test's own on a free loopback port; killed by the destructor.
struct Redis {
    pid_t pid = -1;
    uint16_t port = free_port();
    Redis() {
        std::string p = std::to_string(port);
        const char *argv[] = {"redis-server", "--port", p.c_str(), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--dir", "/tmp", "--logfile", "", nullptr};
        pid = fork();
        if (pid == 0) {
            int null = open("/dev/null", O_WRONLY);
            dup2(null, 1);
            execvp(argv[0], const_cast<char **>(argv));
            _exit(127);
        }
        wait_until([&] {
            int c = wsc_tcp_connect("127.0.0.1", port, 0);
            if (c >= 0) close(c);
            return c >= 0;
        });
    }
    ~Redis() {
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, nullptr, 0);
        }
    }
};

static void test_backplane() {
    Redis redis;
    wsserver::Options o;
    o.backplane = "redis://127.0.0.1:" + std::to_string(redis.port) + "?prefix=cpp-test:";
    wsserver::Handlers ha, hb;
    hb.on_open = [](wsserver::Connection c, const wsserver::Request &) {
        c.subscribe("news");
        return wsserver::accept();
    };
    wsserver::Server a(std::move(ha), o), b(std::move(hb), o);
    a.listen("127.0.0.1", 0);
    b.listen("127.0.0.1", 0);
    Client c(b.port());
    CHECK(c.status == 101, "a client on server B, subscribed to news");
    std::pair<int, std::string> m;
    CHECK(wait_until([&] { // until B's subscription has reached A
              a.publish("news", "probe");
              m = c.recv(50);
              return m.first == WSC_TEXT;
          }),
          "A's publish reaches B's subscriber through the broker");
    CHECK(wait_until([&] { return b.stats().backplane_received == a.stats().backplane_published; }),
          "every probe A sent has come in");
    while (c.recv(50).first == WSC_TEXT) {
    }
    a.publish("news", "after");
    CHECK(c.recv().second == "after", "...and the next one");
    // A count moves right after what it counts: "after" may arrive first.
    wsserver::Stats sa;
    wait_until([&] {
        sa = a.stats();
        return sa.backplane_published >= 2;
    });
    CHECK(sa.backplane_connected == 1 && sa.backplane_published >= 2 && sa.backplane_local_only == 0,
          "A's backplane counters");
    try {
        wsserver::Options bad;
        bad.backplane = "redis://127.0.0.1:6379?channel=x";
        wsserver::Server s({}, bad);
        CHECK(false, "a malformed backplane URL throws");
    } catch (const wsserver::Error &e) {
        CHECK(e.result() == WS_ERR_INVALID_ARGUMENT && std::string(e.what()).find("channel") != std::string::npos,
              "a malformed backplane URL: Error WS_ERR_INVALID_ARGUMENT naming the parameter");
    }
    wsserver::Options gone;
    gone.backplane = "redis://127.0.0.1:" + std::to_string(free_port());
    wsserver::Server s({}, gone);
    try {
        s.listen("127.0.0.1", 0);
        CHECK(false, "listen with no broker throws");
    } catch (const wsserver::Error &e) {
        CHECK(e.result() == WS_ERR_IO, "listen with no broker: Error WS_ERR_IO");
    }
}

static void test_handshake_control() {
    // The open handler defers; a worker thread answers (accept with a
    // cookie, refuse with a body, refuse with a status).
    std::mutex mu;
    std::vector<std::pair<std::string, wsserver::Connection>> waiting;
    std::atomic<int> answer_errors{0};
    wsserver::Handlers h = echo_handlers();
    h.on_open = [&](wsserver::Connection c, const wsserver::Request &r) {
        if (r.path() == "/now") { // answered inside on_open
            c.add_header("Set-Cookie", "early=1");
            return wsserver::accept();
        }
        if (r.path() == "/now-refused") {
            c.add_header("WWW-Authenticate", "Bearer");
            c.refuse_with_body(401, "no token");
            return wsserver::accept(); // the refusal above takes precedence
        }
        std::lock_guard<std::mutex> g(mu);
        waiting.emplace_back(std::string(r.path()), c);
        return wsserver::defer();
    };
    wsserver::Server s(std::move(h));
    s.listen("127.0.0.1", 0);
    std::atomic<bool> stop{false};
    std::thread worker([&] {
        while (!stop) {
            std::vector<std::pair<std::string, wsserver::Connection>> batch;
            {
                std::lock_guard<std::mutex> g(mu);
                batch.swap(waiting);
            }
            for (auto &[path, c] : batch) {
                std::this_thread::sleep_for(std::chrono::milliseconds(20)); // "checking a token elsewhere"
                if (path == "/login") {
                    if (s.add_header(c.id(), "Set-Cookie", "session=abc123; HttpOnly") != WS_OK) ++answer_errors;
                    if (s.accept(c.id()) != WS_OK) ++answer_errors;
                    // Answered already: WS_ERR_STATE, or WS_ERR_CLOSED once the client has left (the header says either).
                    if (auto again = s.accept(c.id()); again != WS_ERR_STATE && again != WS_ERR_CLOSED) ++answer_errors;
                } else if (path == "/secret") {
                    if (s.refuse_with_body(c.id(), 401, "token required") != WS_OK) ++answer_errors;
                } else {
                    if (s.refuse(c.id(), 403) != WS_OK) ++answer_errors;
                }
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
    });
    {
        Client c(s.port(), "/login");
        CHECK(c.status == 101, "deferred open accepted from another thread");
        char v[128];
        CHECK(wsc_answer_header(&c.c, "Set-Cookie", v, sizeof v) && std::string(v) == "session=abc123; HttpOnly",
              "Set-Cookie on the 101");
        wsc_send_text(&c.c, "after defer");
        CHECK(c.recv().second == "after defer", "the deferred connection works");
    }
    {
        Client c(s.port(), "/secret");
        CHECK(c.status == 401, "deferred open refused with 401");
        CHECK(answer_body(c) == "token required", "the refusal's body");
        char v[64];
        CHECK(wsc_answer_header(&c.c, "Content-Type", v, sizeof v) && std::string(v).rfind("text/plain", 0) == 0,
              "text/plain body");
    }
    {
        Client c(s.port(), "/else");
        CHECK(c.status == 403, "deferred open refused with a status");
    }
    {
        Client c(s.port(), "/now");
        char v[64];
        CHECK(c.status == 101 && wsc_answer_header(&c.c, "Set-Cookie", v, sizeof v) && std::string(v) == "early=1",
              "add_header inside on_open, then accept()");
    }
    {
        Client c(s.port(), "/now-refused");
        char v[64];
        CHECK(c.status == 401 && answer_body(c) == "no token", "refuse_with_body inside on_open");
        CHECK(wsc_answer_header(&c.c, "WWW-Authenticate", v, sizeof v) && std::string(v) == "Bearer",
              "an added header on the refusal");
    }
    stop = true;
    worker.join();
    CHECK(answer_errors == 0, "every answer call returned what the C ABI documents");
    CHECK(s.add_header(12345, "X-A", "b") == WS_ERR_NO_SUCH_CONN, "add_header on an id never issued");
}

static void test_handshake_event_mode() {
    wsserver::Options o;
    o.event_queue = 1;
    wsserver::Server s({}, o);
    s.listen("127.0.0.1", 0);
    std::atomic<bool> stop{false};
    std::thread loop([&] {
        while (!stop) {
            auto ev = s.poll(std::chrono::milliseconds(20));
            if (!ev || ev->type() != wsserver::EventType::Open) continue;
            auto c = ev->connection();
            if (ev->request()->path() == "/ok") {
                c.add_header("Set-Cookie", "ev=1");
                c.accept();
            } else {
                c.add_header("Content-Type", "application/json");
                c.refuse_with_body(429, "{\"retry\":1}");
            }
        }
    });
    {
        Client c(s.port(), "/ok");
        char v[64];
        CHECK(c.status == 101 && wsc_answer_header(&c.c, "Set-Cookie", v, sizeof v) && std::string(v) == "ev=1",
              "event mode: accept with a header");
    }
    {
        Client c(s.port(), "/busy");
        char v[64];
        CHECK(c.status == 429 && answer_body(c) == "{\"retry\":1}", "event mode: refuse with a body");
        CHECK(wsc_answer_header(&c.c, "Content-Type", v, sizeof v) && std::string(v) == "application/json",
              "the body's Content-Type set with add_header");
    }
    stop = true;
    loop.join();
}

static void test_origins_and_paths() {
    wsserver::Options o;
    o.allowed_origins = {"https://good.example", "http://localhost:8080"};
    o.paths = {"/chat", "/feed"};
    wsserver::Server s(echo_handlers(), o);
    s.listen("127.0.0.1", 0);
    {
        Client c(s.port(), "/chat", "Origin: https://good.example\r\n");
        CHECK(c.status == 101, "allowed origin on an allowed path: 101");
    }
    {
        Client c(s.port(), "/feed?x=1", "Origin: HTTPS://GOOD.EXAMPLE\r\n");
        CHECK(c.status == 101, "origin compared ignoring case; path without the query");
    }
    {
        Client c(s.port(), "/chat", "Origin: https://evil.example\r\n");
        CHECK(c.status == 403, "another origin: 403");
    }
    {
        Client c(s.port(), "/chat");
        CHECK(c.status == 101, "no Origin (not a browser): 101");
    }
    {
        Client c(s.port(), "/other", "Origin: https://good.example\r\n");
        CHECK(c.status == 404, "a path not configured: 404");
    }
    {
        Client c(s.port(), "/");
        CHECK(c.status == 404, "/ not configured: 404");
    }
    try {
        wsserver::Options bad;
        bad.paths = {"no-slash"};
        wsserver::Server b({}, bad);
        CHECK(false, "a path without '/' throws");
    } catch (const wsserver::Error &e) {
        CHECK(e.result() == WS_ERR_INVALID_ARGUMENT, "path without '/': WS_ERR_INVALID_ARGUMENT");
    }
    try {
        wsserver::Options bad;
        bad.allowed_origins = {""};
        wsserver::Server b({}, bad);
        CHECK(false, "an empty origin throws");
    } catch (const wsserver::Error &e) {
        CHECK(e.result() == WS_ERR_INVALID_ARGUMENT, "empty origin: WS_ERR_INVALID_ARGUMENT");
    }
}

static void test_request_headers() {
    std::mutex mu;
    std::vector<std::pair<std::string, std::string>> seen;
    size_t c_count = 0;
    wsserver::Handlers h;
    h.on_open = [&](wsserver::Connection, const wsserver::Request &r) {
        std::lock_guard<std::mutex> g(mu);
        for (const auto &hd : r.headers()) seen.emplace_back(std::string(hd.name), std::string(hd.value));
        c_count = ws_request_header_count(r.native_handle());
        return wsserver::accept();
    };
    wsserver::Server s(std::move(h));
    s.listen("127.0.0.1", 0);
    Client c(s.port(), "/", "X-First: 1\r\nX-Custom-Thing: hello world\r\nX-First: 2\r\n");
    CHECK(c.status == 101, "accepted");
    std::lock_guard<std::mutex> g(mu);
    CHECK(seen.size() == c_count && c_count >= 8, "headers(): as many as ws_request_header_count");
    auto index = [&](const std::string &name, const std::string &value) {
        for (size_t i = 0; i < seen.size(); ++i)
            if (seen[i].first == name && seen[i].second == value) return int(i);
        return -1;
    };
    int f1 = index("X-First", "1"), f2 = index("X-First", "2"), xc = index("X-Custom-Thing", "hello world");
    CHECK(f1 >= 0 && xc > f1 && f2 > xc, "repeated and custom headers, in the client's order");
    bool host = false, upgrade = false, key = false;
    for (auto &p : seen) {
        host |= p.first == "Host";
        upgrade |= p.first == "Upgrade" && p.second == "websocket";
        key |= p.first == "Sec-WebSocket-Key";
    }
    CHECK(host && upgrade && key, "the standard handshake headers are listed too");
}


// ---- plain HTTP ----

// A minimal HTTP/1.1 client on one TCP socket (keep-alive: several
// requests in turn), every read bounded by a timeout.
struct HttpClient {
    int fd = -1;
    std::string buf;
    explicit HttpClient(uint16_t port) { fd = wsc_tcp_connect("127.0.0.1", port, 0); }
    ~HttpClient() {
        if (fd >= 0) ::close(fd);
    }
    bool send_raw(const std::string &s) { return ::send(fd, s.data(), s.size(), MSG_NOSIGNAL) == ssize_t(s.size()); }
    bool fill(int timeout_ms) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, timeout_ms) <= 0) return false;
        char tmp[4096];
        ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
        if (n <= 0) return false;
        buf.append(tmp, size_t(n));
        return true;
    }
    struct Response {
        int status = -1;
        std::string head, body;
        std::string header(const std::string &name) const {
            std::istringstream in(head);
            std::string line;
            while (std::getline(in, line)) {
                if (!line.empty() && line.back() == '\r') line.pop_back();
                auto colon = line.find(':');
                if (colon == std::string::npos || colon != name.size()) continue;
                bool same = true;
                for (size_t i = 0; i < colon; ++i)
                    same &= std::tolower(static_cast<unsigned char>(line[i])) == std::tolower(static_cast<unsigned char>(name[i]));
                if (!same) continue;
                size_t v = colon + 1;
                while (v < line.size() && line[v] == ' ') ++v;
                return line.substr(v);
            }
            return "<none>";
        }
    };
    // Reads one response (head, then Content-Length bytes of body unless HEAD).
    Response read(bool head_only = false, int timeout_ms = 5000) {
        Response r;
        size_t end;
        while ((end = buf.find("\r\n\r\n")) == std::string::npos)
            if (!fill(timeout_ms)) return r;
        r.head = buf.substr(0, end + 2);
        buf.erase(0, end + 4);
        if (r.head.rfind("HTTP/1.1 ", 0) == 0) r.status = std::atoi(r.head.c_str() + 9);
        std::string cl = r.header("Content-Length");
        size_t len = head_only || cl == "<none>" ? 0 : std::strtoul(cl.c_str(), nullptr, 10);
        while (buf.size() < len)
            if (!fill(timeout_ms)) return r;
        r.body = buf.substr(0, len);
        buf.erase(0, len);
        return r;
    }
    Response request(const std::string &method, const std::string &target, const std::string &body = {},
                     const std::string &extra = {}) {
        std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra;
        if (!body.empty() || method == "POST") req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
        req += "\r\n" + body;
        if (!send_raw(req)) return {};
        return read(method == "HEAD");
    }
    // True when the server closes the connection within timeout_ms.
    bool closed_by_server(int timeout_ms) {
        auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        while (std::chrono::steady_clock::now() < end) {
            pollfd p{fd, POLLIN, 0};
            if (::poll(&p, 1, 50) > 0) {
                char tmp[256];
                if (::recv(fd, tmp, sizeof tmp, 0) <= 0) return true;
            }
        }
        return false;
    }
};

// A directory for static files: www/ (index.html, hello.txt, js/app.js)
// and, beside it, secret.txt that no request may reach.
struct Site {
    std::string base, root;
    Site() {
        char tmpl[] = "/tmp/wsserver-cpp-http.XXXXXX";
        base = mkdtemp(tmpl);
        root = base + "/www";
        mkdir(root.c_str(), 0755);
        mkdir((root + "/js").c_str(), 0755);
        write(root + "/index.html", "<!doctype html><p>hello</p>");
        write(root + "/hello.txt", "hello, file");
        write(root + "/js/app.js", "console.log(1)");
        write(base + "/secret.txt", "SECRET");
    }
    ~Site() {
        std::string cmd = "rm -rf '" + base + "'";
        if (std::system(cmd.c_str()) != 0) std::printf("note: could not remove %s\n", base.c_str());
    }
    static void write(const std::string &path, const std::string &text) {
        FILE *f = std::fopen(path.c_str(), "wb");
        if (!f) return;
        std::fwrite(text.data(), 1, text.size(), f);
        std::fclose(f);
    }
};

// Runs a shell command, returns its standard output.
static std::string run_command(const std::string &cmd) {
    std::string out;
    FILE *p = popen(cmd.c_str(), "r");
    if (!p) return out;
    char tmp[4096];
    size_t n;
    while ((n = std::fread(tmp, 1, sizeof tmp, p)) > 0) out.append(tmp, n);
    pclose(p);
    return out;
}

static void test_http_static_and_health() {
    Site site;
    wsserver::Options o;
    o.static_dir = site.root;
    o.health_path = "/healthz";
    wsserver::Server s(echo_handlers(), o);
    s.listen("127.0.0.1", 0);
    const std::string base = "http://127.0.0.1:" + std::to_string(s.port());
    {
        HttpClient c(s.port());
        auto r = c.request("GET", "/hello.txt");
        CHECK(r.status == 200 && r.body == "hello, file", "static file served");
        CHECK(r.header("Content-Type").rfind("text/plain", 0) == 0, "static file: text/plain by its extension");
        r = c.request("GET", "/js/app.js");
        CHECK(r.status == 200 && r.header("Content-Type").rfind("text/javascript", 0) == 0,
              "static .js: text/javascript, on the same connection");
        r = c.request("GET", "/");
        CHECK(r.status == 200 && r.body == "<!doctype html><p>hello</p>" &&
                  r.header("Content-Type").rfind("text/html", 0) == 0,
              "/ serves index.html as text/html");
        std::string etag = r.header("ETag");
        r = c.request("GET", "/index.html", {}, "If-None-Match: " + etag + "\r\n");
        CHECK(r.status == 304, "If-None-Match with the ETag: 304");
        r = c.request("HEAD", "/hello.txt");
        CHECK(r.status == 200 && r.header("Content-Length") == "11", "HEAD: the length, no body");
        for (const char *evil : {"/..%2fsecret.txt", "/js/..%2f..%2fsecret.txt", "/%2e%2e/secret.txt", "/../secret.txt"}) {
            r = c.request("GET", evil);
            std::string what = std::string("traversal ") + evil + ": 404, not the secret";
            CHECK(r.status == 404 && r.body.find("SECRET") == std::string::npos, what.c_str());
        }
        r = c.request("GET", "/healthz");
        CHECK(r.status == 200 && r.body == "ok\n", "health path: 200 ok");
        r = c.request("GET", "/missing.txt");
        CHECK(r.status == 404, "no file, no handler: 404");
    }
    {
        Client ws(s.port(), "/chat");
        CHECK(ws.status == 101, "WebSocket upgrades still work beside static files");
    }
    if (std::system("command -v curl >/dev/null 2>&1") == 0) {
        std::string out = run_command("curl -s -S -m 5 -o - -w ' %{http_code} %{content_type}' " + base + "/hello.txt");
        CHECK(out.rfind("hello, file 200 text/plain", 0) == 0, ("curl gets the static file: " + out).c_str());
        out = run_command("curl -s -m 5 -o /dev/null -w '%{http_code}' --path-as-is " + base + "/..%2fsecret.txt");
        CHECK(out == "404", ("curl: ..%2f traversal is 404: " + out).c_str());
        out = run_command("curl -s -m 5 " + base + "/healthz");
        CHECK(out == "ok\n", "curl: health");
    } else {
        std::printf("note: no curl; the static file was checked with the test's own client only\n");
    }
    try {
        wsserver::Options bad;
        bad.static_dir = site.base + "/no-such-dir";
        wsserver::Server b({}, bad);
        CHECK(false, "a static_dir that is no directory throws");
    } catch (const wsserver::Error &e) {
        CHECK(e.result() == WS_ERR_INVALID_ARGUMENT, "static_dir not a directory: WS_ERR_INVALID_ARGUMENT");
    }
    try {
        wsserver::Options bad;
        bad.health_path = "healthz";
        wsserver::Server b({}, bad);
        CHECK(false, "a health_path without '/' throws");
    } catch (const wsserver::Error &e) {
        CHECK(e.result() == WS_ERR_INVALID_ARGUMENT, "health_path without '/': WS_ERR_INVALID_ARGUMENT");
    }
}

static void test_http_handler() {
    std::mutex mu;
    std::vector<std::thread> workers;
    std::string seen_query, seen_header, seen_method;
    std::atomic<int> answer_errors{0};
    wsserver::Handlers h = echo_handlers();
    wsserver::Server *srv = nullptr;
    h.on_http = [&](const wsserver::HttpRequest &r) -> wsserver::HttpAnswer {
        if (r.path() == "/teapot") return 418;
        if (r.path() == "/throw") throw std::runtime_error("handler failed");
        if (r.path() == "/echo") {
            {
                std::lock_guard<std::mutex> g(mu);
                seen_query = std::string(r.query());
                seen_header = std::string(r.header("X-Token").value_or("<none>"));
                seen_method = std::string(r.method());
            }
            r.add_header("X-Seen", std::string(r.method()));
            std::string body = std::string(r.method()) + " " + std::string(r.path()) + " " + std::string(r.body());
            if (r.respond(200, "text/plain", body) != WS_OK) ++answer_errors;
            // Answered already: WS_ERR_STATE, or WS_ERR_CLOSED once the answer was sent (the header says either).
            if (auto again = r.respond(200, "text/plain", "twice"); again != WS_ERR_STATE && again != WS_ERR_CLOSED)
                ++answer_errors;
            return wsserver::Handled;
        }
        if (r.path() == "/later") {
            uint64_t id = r.id();
            std::lock_guard<std::mutex> g(mu);
            workers.emplace_back([&, id] {
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
                if (srv->add_header(id, "Cache-Control", "no-store") != WS_OK) ++answer_errors;
                if (srv->respond(id, 200, "application/json", "{\"later\":true}") != WS_OK) ++answer_errors;
            });
            return wsserver::Handled;
        }
        return 404;
    };
    std::atomic<int> logged_throw{0};
    h.on_log = [&](wsserver::LogLevel, std::string_view m) {
        if (m.find("on_http handler threw") != std::string_view::npos) ++logged_throw;
    };
    wsserver::Options o;
    o.health_path = "/healthz";
    wsserver::Server s(std::move(h), o);
    srv = &s;
    CHECK(s.get_option(WS_OPT_HTTP_HANDLER) == 1, "an on_http handler turns WS_OPT_HTTP_HANDLER on");
    s.listen("127.0.0.1", 0);
    {
        HttpClient c(s.port());
        auto r = c.request("POST", "/echo?x=1", "hello body", "X-Token: t0k\r\n");
        CHECK(r.status == 200 && r.body == "POST /echo hello body", "handler echoes the POST body");
        CHECK(r.header("X-Seen") == "POST", "HttpRequest::add_header on the answer");
        {
            std::lock_guard<std::mutex> g(mu);
            CHECK(seen_query == "x=1" && seen_header == "t0k" && seen_method == "POST",
                  "HttpRequest: method, query, header");
        }
        r = c.request("GET", "/teapot");
        CHECK(r.status == 418 && r.body.empty(), "a returned status answers at once, no body");
        r = c.request("GET", "/later");
        CHECK(r.status == 200 && r.body == "{\"later\":true}" && r.header("Content-Type") == "application/json",
              "answered later from another thread (Server::respond)");
        CHECK(r.header("Cache-Control") == "no-store", "Server::add_header before a later respond");
        r = c.request("GET", "/healthz");
        CHECK(r.status == 200 && r.body == "ok\n", "health beside the handler");
        r = c.request("GET", "/throw");
        CHECK(r.status == 500, "a handler that throws answers 500");
        CHECK(wait_until([&] { return logged_throw > 0; }), "... and on_log hears of it");
        r = c.request("GET", "/other");
        CHECK(r.status == 404, "a handler's 404; six requests on one keep-alive connection");
        // The same connection then upgrades.
        wsc w;
        wsc_init(&w, c.fd);
        c.fd = -1;
        int st = wsc_handshake(&w, "127.0.0.1", s.port(), "/chat", nullptr, 5000);
        CHECK(st == 101, "after HTTP requests, the connection upgrades");
        wsc_send_text(&w, "still here");
        wsc_frame f{};
        CHECK(wsc_recv(&w, &f, 5000) == WSC_OK && std::string(reinterpret_cast<char *>(f.data), f.len) == "still here",
              "and echoes");
        wsc_frame_free(&f);
        wsc_free(&w);
    }
    {
        // keep-alive: two requests on one socket, the second one pipelined.
        HttpClient c(s.port());
        c.send_raw("GET /teapot HTTP/1.1\r\nHost: x\r\n\r\nPOST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi");
        auto a = c.read(), b = c.read();
        CHECK(a.status == 418 && b.status == 200 && b.body == "POST /echo hi", "two pipelined requests, in order");
        c.send_raw("GET /teapot HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        CHECK(c.read().status == 418 && c.closed_by_server(3000), "Connection: close ends it");
    }
    CHECK(s.respond(987654, 200) == WS_ERR_NO_SUCH_CONN, "respond to an id never issued: WS_ERR_NO_SUCH_CONN");
    {
        std::lock_guard<std::mutex> g(mu);
        for (auto &t : workers) t.join();
    }
    CHECK(answer_errors == 0, "every respond/add_header returned what the C ABI documents");
}

static void test_http_event_mode() {
    Site site;
    wsserver::Options o;
    o.event_queue = 1;
    o.auto_accept = 1;
    o.http_handler = 1;
    o.static_dir = site.root;
    wsserver::Server s({}, o);
    s.listen("127.0.0.1", 0);
    std::atomic<bool> stop{false};
    std::atomic<int> errors{0};
    std::vector<std::thread> later;
    std::thread loop([&] {
        while (!stop) {
            auto ev = s.poll(std::chrono::milliseconds(20));
            if (!ev || ev->type() != wsserver::EventType::Http) continue;
            auto r = ev->http_request();
            if (!r) {
                ++errors;
                continue;
            }
            if (r->path() == "/api") {
                r->add_header("X-Mode", "event");
                std::string body = std::string(r->method()) + ":" + std::string(r->body());
                if (ev->respond(201, "text/plain", body) != WS_OK) ++errors;
            } else if (r->path() == "/later") {
                uint64_t id = r->id(); // the Event (and its request) is freed; the id lives on
                later.emplace_back([&, id] {
                    std::this_thread::sleep_for(std::chrono::milliseconds(30));
                    if (s.respond(id, 200, nullptr, "late") != WS_OK) ++errors;
                });
            } else {
                if (r->respond(404) != WS_OK) ++errors;
            }
        }
    });
    {
        HttpClient c(s.port());
        auto r = c.request("POST", "/api", "data");
        CHECK(r.status == 201 && r.body == "POST:data" && r.header("X-Mode") == "event",
              "event mode: an Http event answered with Event::respond and a header");
        r = c.request("GET", "/hello.txt");
        CHECK(r.status == 200 && r.body == "hello, file", "event mode: static files need no event");
        r = c.request("GET", "/later");
        CHECK(r.status == 200 && r.body == "late" && r.header("Content-Type") == "<none>",
              "event mode: answered later from a thread, no content type");
        r = c.request("GET", "/nope");
        CHECK(r.status == 404, "event mode: HttpRequest::respond(404)");
    }
    stop = true;
    loop.join();
    for (auto &t : later) t.join();
    CHECK(errors == 0, "event mode: every respond returned WS_OK");
}

int main() {
    struct {
        const char *name;
        void (*fn)();
    } tests[] = {
        {"echo", test_echo},
        {"deflate", test_deflate},
        {"open request and refusal", test_open_request_and_refusal},
        {"throwing handlers", test_throwing_handlers},
        {"send status and user data", test_send_status_and_user_data},
        {"errors", test_errors},
        {"option defaults", test_option_defaults},
        {"event queue", test_event_queue},
        {"move and destruction", test_move_and_destruction},
        {"websocket.hpp facade (seed 004)", test_websocket_facade},
        {"topics", test_topics},
        {"stats", test_stats},
        {"backplane (a real redis-server)", test_backplane},
        {"handshake control (deferred, headers, bodies)", test_handshake_control},
        {"handshake control in event mode", test_handshake_event_mode},
        {"allowed origins and paths", test_origins_and_paths},
        {"request headers()", test_request_headers},
        {"HTTP: static files, traversal, health", test_http_static_and_health},
        {"HTTP: on_http handler, respond from a thread, keep-alive", test_http_handler},
        {"HTTP: event mode", test_http_event_mode},
    };
    for (auto &t : tests) {
        int f0 = failed;
        try {
            t.fn();
        } catch (const std::exception &e) {
            ++failed;
            std::printf("FAIL %s: unexpected exception: %s\n", t.name, e.what());
        }
        std::printf("%s %s\n", failed == f0 ? "ok  " : "FAIL", t.name);
        std::fflush(stdout);
    }
    std::printf("%d passed, %d failed\n", passed.load(), failed.load());
    return failed == 0 ? 0 : 1;
}
