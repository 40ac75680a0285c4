// wsserver.hpp — a header-only C++17 binding over the wsserver C ABI
// (wsserver.h). Thin: every call is one C call; the C header's comments
// say who owns what, which thread may call, and what each result means.
//
//   wsserver::Handlers h;
//   h.on_message = [](wsserver::Connection c, std::string_view data, wsserver::Kind kind) {
//       c.send(data, kind);                              // echo; never throws
//   };
//   wsserver::Server server(std::move(h));               // Options(): the C defaults
//   server.listen("127.0.0.1", 8080);                    // throws wsserver::Error
//   ...
//   // ~Server closes (1 s grace) and frees
//
// Errors: set-up (options, TLS, listen, event fd, stats) throws
// wsserver::Error, which carries the ws_result and the C message. Calls on
// the hot path (send, broadcast, publish, subscribe, disconnect, accept,
// refuse, add_header, poll) never throw: they return a SendResult, a count
// or a ws_result.
//
// Topics: server.subscribe(conn, "room"), server.publish("room", data)
// (encoded once for every subscriber), server.subscribers("room").
// Handshake control: on_open returns accept(), refuse(status) or defer()
// and answers later, from any thread, with server.accept(conn) /
// server.refuse(conn, status) / server.refuse_with_body(conn, status, body);
// server.add_header(conn, "Set-Cookie", "...") adds to whichever answer.
//
// Plain HTTP on the same port: Options::static_dir and Options::health_path
// answer on their own; Handlers::on_http gets the other requests (an
// HttpRequest: method, path, query, headers, body) and returns a status to
// answer now with no body, or wsserver::Handled after answering with
// request.respond(status, content_type, body) — or to answer later, from
// any thread, with server.respond(id, status, content_type, body). In
// event mode the request comes as an EventType::Http Event.
//
// Handlers run on the server's I/O thread (see ws_callbacks). An exception
// thrown by a handler is caught before it reaches C and reported through
// on_log (level WS_LOG_ERROR); an on_open that throws refuses the handshake
// with HTTP 500.
#ifndef WSSERVER_HPP
#define WSSERVER_HPP

#include <wsserver.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wsserver {

/// A set-up failure: the ws_result and ws_last_error()'s message.
class Error : public std::runtime_error {
public:
    Error(ws_result result, const std::string &call, const std::string &message)
        : std::runtime_error(call + ": " + message + " (" + ws_result_name(result) + ")"),
          result_(result), message_(message) {}
    /// The C result code, e.g. WS_ERR_ADDR_IN_USE.
    ws_result result() const noexcept { return result_; }
    /// Its name, e.g. "WS_ERR_ADDR_IN_USE".
    const char *name() const noexcept { return ws_result_name(result_); }
    /// ws_last_error() as the failing call left it.
    const std::string &c_message() const noexcept { return message_; }

private:
    ws_result result_;
    std::string message_;
};

namespace detail {
inline void check(ws_result r, const char *call) {
    if (r < 0) throw Error(r, call, ws_last_error());
}
inline std::string_view view(const char *s) { return s ? std::string_view(s) : std::string_view(); }
inline std::optional<std::string_view> opt(const char *s) {
    if (!s) return std::nullopt;
    return std::string_view(s);
}
inline const uint8_t *bytes(std::string_view s) { return reinterpret_cast<const uint8_t *>(s.data()); }
} // namespace detail

enum class Kind : ws_kind { Text = WS_TEXT, Binary = WS_BINARY };

enum class LogLevel : ws_log_level {
    Error = WS_LOG_ERROR,
    Warn = WS_LOG_WARN,
    Info = WS_LOG_INFO,
    Debug = WS_LOG_DEBUG,
};

/// What a send did: queued, queued over the send-queue limit (wait for
/// on_drain), or refused (`result` says why: WS_ERR_CLOSED, ...).
enum class SendStatus { Queued, Backpressure, Refused };

struct SendResult {
    SendStatus status;
    ws_result result; ///< WS_OK, WS_BACKPRESSURE or the refusal's reason
    static SendResult from(ws_result r) noexcept {
        return {r == WS_OK ? SendStatus::Queued : r == WS_BACKPRESSURE ? SendStatus::Backpressure : SendStatus::Refused,
                r};
    }
    /// True when the message was queued (with or without backpressure).
    explicit operator bool() const noexcept { return status != SendStatus::Refused; }
};

/// Limits and timeouts (WS_OPT_*), applied by the Server constructor. Every
/// member starts at the library's own default (ws_option_info).
struct Options {
    static uint64_t default_of(ws_option opt) {
        uint64_t v = 0;
        detail::check(ws_option_info(opt, nullptr, &v, nullptr, nullptr, nullptr), "ws_option_info");
        return v;
    }
    uint64_t max_message_size = default_of(WS_OPT_MAX_MESSAGE_SIZE);
    uint64_t max_frame_size = default_of(WS_OPT_MAX_FRAME_SIZE);
    uint64_t max_connections = default_of(WS_OPT_MAX_CONNECTIONS);
    uint64_t handshake_timeout_ms = default_of(WS_OPT_HANDSHAKE_TIMEOUT_MS);
    uint64_t ping_interval_ms = default_of(WS_OPT_PING_INTERVAL_MS);
    uint64_t idle_timeout_ms = default_of(WS_OPT_IDLE_TIMEOUT_MS);
    uint64_t close_timeout_ms = default_of(WS_OPT_CLOSE_TIMEOUT_MS);
    uint64_t send_queue_limit = default_of(WS_OPT_SEND_QUEUE_LIMIT);
    uint64_t send_queue_hard_limit = default_of(WS_OPT_SEND_QUEUE_HARD_LIMIT);
    uint64_t overflow_policy = default_of(WS_OPT_OVERFLOW_POLICY);
    uint64_t threads = default_of(WS_OPT_THREADS);
    uint64_t log_level = default_of(WS_OPT_LOG_LEVEL);
    uint64_t event_queue = default_of(WS_OPT_EVENT_QUEUE);
    uint64_t event_queue_bytes = default_of(WS_OPT_EVENT_QUEUE_BYTES);
    uint64_t event_queue_events = default_of(WS_OPT_EVENT_QUEUE_EVENTS);
    uint64_t auto_accept = default_of(WS_OPT_AUTO_ACCEPT);
    /// 1 hands plain HTTP requests to the host (Handlers::on_http, or an
    /// EventType::Http Event in event mode). A Server given an on_http
    /// handler turns it on itself.
    uint64_t http_handler = default_of(WS_OPT_HTTP_HANDLER);
    uint64_t http_max_requests = default_of(WS_OPT_HTTP_MAX_REQUESTS);
    uint64_t http_idle_timeout_ms = default_of(WS_OPT_HTTP_IDLE_TIMEOUT_MS);
    uint64_t http_max_body = default_of(WS_OPT_HTTP_MAX_BODY);
    /// 1 accepts permessage-deflate offers (RFC 7692).
    uint64_t deflate = default_of(WS_OPT_DEFLATE);
    /// 1 keeps compression contexts between messages (memory per connection).
    uint64_t deflate_context = default_of(WS_OPT_DEFLATE_CONTEXT);
    uint64_t deflate_level = default_of(WS_OPT_DEFLATE_LEVEL);
    uint64_t deflate_min_size = default_of(WS_OPT_DEFLATE_MIN_SIZE);
    /// Bytes all connections may hold together (WS_OPT_MEMORY_BUDGET); 0: no budget.
    uint64_t memory_budget = default_of(WS_OPT_MEMORY_BUDGET);
    /// Subprotocols the server speaks, in preference order.
    std::vector<std::string> subprotocols;
    /// Origins allowed to open a WebSocket (others get 403); empty: all
    /// (ws_server_set_allowed_origins).
    std::vector<std::string> allowed_origins;
    /// Paths that take upgrades (others get 404); empty: all
    /// (ws_server_set_paths).
    std::vector<std::string> paths;
    /// Serves GET/HEAD from this directory (ws_server_set_static_dir);
    /// empty: off.
    std::string static_dir;
    /// Answers GET on this path (e.g. "/healthz") with 200 "ok"
    /// (ws_server_set_health_path); empty: off.
    std::string health_path;
    /// Joins a Redis backplane, e.g. "redis://127.0.0.1:6379?prefix=app:"
    /// (ws_server_set_backplane: publish() then reaches the topic's
    /// subscribers on every server on that broker and prefix; listen()
    /// throws WS_ERR_IO when the broker cannot be reached); empty: none.
    std::string backplane;
    /// Grace given to clients by ~Server (ws_server_close).
    uint32_t close_grace_ms = 1000;

    /// Each option id with the member holding its value.
    template <typename F> void each(F &&f) const {
        f(WS_OPT_MAX_MESSAGE_SIZE, max_message_size);
        f(WS_OPT_MAX_FRAME_SIZE, max_frame_size);
        f(WS_OPT_MAX_CONNECTIONS, max_connections);
        f(WS_OPT_HANDSHAKE_TIMEOUT_MS, handshake_timeout_ms);
        f(WS_OPT_PING_INTERVAL_MS, ping_interval_ms);
        f(WS_OPT_IDLE_TIMEOUT_MS, idle_timeout_ms);
        f(WS_OPT_CLOSE_TIMEOUT_MS, close_timeout_ms);
        f(WS_OPT_SEND_QUEUE_LIMIT, send_queue_limit);
        f(WS_OPT_SEND_QUEUE_HARD_LIMIT, send_queue_hard_limit);
        f(WS_OPT_OVERFLOW_POLICY, overflow_policy);
        f(WS_OPT_THREADS, threads);
        f(WS_OPT_LOG_LEVEL, log_level);
        f(WS_OPT_EVENT_QUEUE, event_queue);
        f(WS_OPT_EVENT_QUEUE_BYTES, event_queue_bytes);
        f(WS_OPT_EVENT_QUEUE_EVENTS, event_queue_events);
        f(WS_OPT_AUTO_ACCEPT, auto_accept);
        f(WS_OPT_HTTP_HANDLER, http_handler);
        f(WS_OPT_HTTP_MAX_REQUESTS, http_max_requests);
        f(WS_OPT_HTTP_IDLE_TIMEOUT_MS, http_idle_timeout_ms);
        f(WS_OPT_HTTP_MAX_BODY, http_max_body);
        f(WS_OPT_DEFLATE, deflate);
        f(WS_OPT_DEFLATE_CONTEXT, deflate_context);
        f(WS_OPT_DEFLATE_LEVEL, deflate_level);
        f(WS_OPT_DEFLATE_MIN_SIZE, deflate_min_size);
        f(WS_OPT_MEMORY_BUDGET, memory_budget);
    }
};

/// Certificate, key and optional client CA (ws_tls_config). Move-only.
class TlsConfig {
public:
    TlsConfig() : cfg_(ws_tls_config_new()) {
        if (!cfg_) throw Error(WS_ERR_PANIC, "ws_tls_config_new", ws_last_error());
    }
    static TlsConfig from_files(const std::string &cert, const std::string &key, const char *password = nullptr) {
        TlsConfig t;
        t.cert_file(cert).key_file(key, password);
        return t;
    }
    static TlsConfig from_pem(std::string_view cert, std::string_view key, const char *password = nullptr) {
        TlsConfig t;
        t.cert_pem(cert).key_pem(key, password);
        return t;
    }
    TlsConfig &cert_file(const std::string &path) {
        detail::check(ws_tls_config_set_cert_file(cfg_.get(), path.c_str()), "ws_tls_config_set_cert_file");
        return *this;
    }
    TlsConfig &cert_pem(std::string_view pem) {
        detail::check(ws_tls_config_set_cert_pem(cfg_.get(), detail::bytes(pem), pem.size()),
                      "ws_tls_config_set_cert_pem");
        return *this;
    }
    /// `password`: for an encrypted PKCS#8 key, else NULL.
    TlsConfig &key_file(const std::string &path, const char *password = nullptr) {
        detail::check(ws_tls_config_set_key_file(cfg_.get(), path.c_str(), password), "ws_tls_config_set_key_file");
        return *this;
    }
    TlsConfig &key_pem(std::string_view pem, const char *password = nullptr) {
        detail::check(ws_tls_config_set_key_pem(cfg_.get(), detail::bytes(pem), pem.size(), password),
                      "ws_tls_config_set_key_pem");
        return *this;
    }
    /// Mutual TLS: clients must present a certificate from this CA.
    TlsConfig &ca_file(const std::string &path) {
        detail::check(ws_tls_config_set_ca_file(cfg_.get(), path.c_str()), "ws_tls_config_set_ca_file");
        return *this;
    }
    TlsConfig &ca_pem(std::string_view pem) {
        detail::check(ws_tls_config_set_ca_pem(cfg_.get(), detail::bytes(pem), pem.size()), "ws_tls_config_set_ca_pem");
        return *this;
    }
    const ws_tls_config *native_handle() const noexcept { return cfg_.get(); }

private:
    struct Free {
        void operator()(ws_tls_config *c) const noexcept { ws_tls_config_free(c); }
    };
    std::unique_ptr<ws_tls_config, Free> cfg_;
};

/// One header line of a request (views into the library's memory).
struct Header {
    std::string_view name;
    std::string_view value;
};

/// A view of a client's handshake request, valid as long as the C request
/// is (during on_open, or until its Event is destroyed). Every string_view
/// points into the library's memory.
class Request {
public:
    explicit Request(const ws_request *req) noexcept : req_(req) {}
    std::string_view path() const { return detail::view(ws_request_path(req_)); }
    std::string_view query() const { return detail::view(ws_request_query(req_)); }
    std::string_view peer() const { return detail::view(ws_request_peer(req_)); }
    /// "GET" for an upgrade; a plain HTTP request's own method.
    std::string_view method() const { return detail::view(ws_request_method(req_)); }
    /// A plain HTTP request's body (Content-Length bytes); empty for upgrades.
    std::string_view body() const {
        size_t n = 0;
        const uint8_t *p = ws_request_body(req_, &n);
        return p ? std::string_view(reinterpret_cast<const char *>(p), n) : std::string_view();
    }
    /// The first header called `name` (case-insensitive), if any.
    std::optional<std::string_view> header(const char *name) const { return detail::opt(ws_request_header(req_, name)); }
    std::optional<std::string_view> header(const std::string &name) const { return header(name.c_str()); }
    /// Every header line, in the client's order (repeated names each time).
    std::vector<Header> headers() const {
        std::vector<Header> out;
        size_t n = ws_request_header_count(req_);
        out.reserve(n);
        for (size_t i = 0; i < n; ++i) {
            const char *name = nullptr, *value = nullptr;
            if (ws_request_header_at(req_, i, &name, &value) != WS_OK) break;
            out.push_back({detail::view(name), detail::view(value)});
        }
        return out;
    }
    /// The subprotocol the server chose, if any.
    std::optional<std::string_view> subprotocol() const { return detail::opt(ws_request_subprotocol(req_)); }
    /// The subprotocols the client offered, in its order.
    std::vector<std::string_view> offered_subprotocols() const {
        std::vector<std::string_view> out;
        for (size_t i = 0;; ++i) {
            const char *s = ws_request_offered_subprotocol(req_, i);
            if (!s) break;
            out.emplace_back(s);
        }
        return out;
    }
    /// With mutual TLS, the client certificate's subject (RFC 4514).
    std::optional<std::string_view> client_subject() const { return detail::opt(ws_request_client_subject(req_)); }
    const ws_request *native_handle() const noexcept { return req_; }

private:
    const ws_request *req_;
};

/// The answer of an open handler: accept, refuse with an HTTP status, or
/// defer (answer later with Server::accept / refuse / refuse_with_body,
/// from any thread, within Options::handshake_timeout_ms, else 503).
struct OpenAnswer {
    int status = 0; ///< 0: accept; 400..599: refuse with that status; WS_OPEN_DEFER: later
};
inline OpenAnswer accept() noexcept { return {0}; }
inline OpenAnswer refuse(int http_status) noexcept { return {http_status}; }
inline OpenAnswer defer() noexcept { return {WS_OPEN_DEFER}; }

/// A plain HTTP request waiting for its answer: the request (valid during
/// on_http, or while its Event lives) plus its id and server, so it can be
/// answered here; the id stays valid after, for Server::respond from any
/// thread (within Options::handshake_timeout_ms, else 503).
class HttpRequest : public Request {
public:
    HttpRequest(const ws_request *req, const ws_server *srv, uint64_t id) noexcept : Request(req), srv_(srv), id_(id) {}
    uint64_t id() const noexcept { return id_; }
    /// ws_http_respond: `content_type` nullptr sends none. Once only
    /// (WS_ERR_STATE after). Any thread.
    ws_result respond(uint16_t status, const char *content_type = nullptr, std::string_view body = {}) const noexcept {
        return ws_http_respond(srv_, id_, status, content_type, detail::bytes(body), body.size());
    }
    ws_result respond(uint16_t status, const std::string &content_type, std::string_view body) const noexcept {
        return respond(status, content_type.c_str(), body);
    }
    /// A header for the answer (before respond), e.g. Cache-Control.
    ws_result add_header(const char *name, const char *value) const noexcept {
        return ws_conn_add_header(srv_, id_, name, value);
    }
    ws_result add_header(const std::string &name, const std::string &value) const noexcept {
        return add_header(name.c_str(), value.c_str());
    }

private:
    const ws_server *srv_;
    uint64_t id_;
};

/// The answer of an HTTP handler: a status (100..599) answers now with no
/// body; Handled (0) says the request was answered with respond(), or will
/// be, later. An int converts, so `return 404;` works in a handler declared
/// `-> wsserver::HttpAnswer`.
struct HttpAnswer {
    int status = 0;
    constexpr HttpAnswer(int s = 0) noexcept : status(s) {}
};
inline constexpr HttpAnswer Handled{0};

/// Server statistics (ws_stats): counters since listen, and
/// open_connections, queued_bytes, topics, subscriptions,
/// backplane_connected now.
using Stats = ws_stats;

/// One connection of a server: an id plus the server it belongs to. A
/// cheap value; valid while its Server lives. After the connection ended
/// every call reports WS_ERR_CLOSED. Never throws.
class Connection {
public:
    Connection() noexcept = default;
    Connection(const ws_server *srv, uint64_t id) noexcept : srv_(srv), id_(id) {}
    uint64_t id() const noexcept { return id_; }

    /// `compress` false: sent uncompressed even where deflate was negotiated
    /// (data that is compressed already; WS_SEND_NO_COMPRESS).
    SendResult send(std::string_view data, Kind kind = Kind::Text, bool compress = true) const noexcept {
        return SendResult::from(ws_server_send_ex(srv_, id_, detail::bytes(data), data.size(), static_cast<ws_kind>(kind),
                                                  compress ? 0u : WS_SEND_NO_COMPRESS));
    }
    SendResult send_binary(const void *data, size_t len) const noexcept {
        return SendResult::from(ws_server_send(srv_, id_, static_cast<const uint8_t *>(data), len, WS_BINARY));
    }
    /// Starts the close handshake (code 1000-1003, 1007-1014, 3000-4999;
    /// reason at most 123 bytes of UTF-8).
    ws_result close(uint16_t code = 1000, const char *reason = nullptr) const noexcept {
        return ws_server_disconnect(srv_, id_, code, reason);
    }
    /// Answers an open that waits (deferred on_open, or a WS_EVENT_OPEN
    /// without auto-accept); any thread. `subprotocol`: nullptr keeps the
    /// server's choice, else one the client offered.
    ws_result accept(const char *subprotocol = nullptr) const noexcept { return ws_conn_accept(srv_, id_, subprotocol); }
    ws_result refuse(uint16_t http_status) const noexcept { return ws_conn_refuse(srv_, id_, http_status); }
    /// Refuses with `status` and a body (at most 64 KiB; text/plain unless
    /// a Content-Type is added with add_header).
    ws_result refuse_with_body(uint16_t http_status, std::string_view body) const noexcept {
        return ws_conn_refuse_with_body(srv_, id_, http_status, detail::bytes(body), body.size());
    }
    /// Adds `name: value` to the answer of an open that waits (the 101 or
    /// the refusal), e.g. Set-Cookie.
    ws_result add_header(const char *name, const char *value) const noexcept {
        return ws_conn_add_header(srv_, id_, name, value);
    }
    ws_result add_header(const std::string &name, const std::string &value) const noexcept {
        return add_header(name.c_str(), value.c_str());
    }
    /// Topics: ends with the connection (ws_conn_subscribe / unsubscribe).
    ws_result subscribe(const char *topic) const noexcept { return ws_conn_subscribe(srv_, id_, topic); }
    ws_result subscribe(const std::string &topic) const noexcept { return subscribe(topic.c_str()); }
    ws_result unsubscribe(const char *topic) const noexcept { return ws_conn_unsubscribe(srv_, id_, topic); }
    ws_result unsubscribe(const std::string &topic) const noexcept { return unsubscribe(topic.c_str()); }

    ws_result set_user_data(void *p) const noexcept { return ws_conn_set_user_data(srv_, id_, p); }
    /// The pointer set with set_user_data (nullptr if none, or when gone).
    void *user_data() const noexcept {
        void *p = nullptr;
        ws_conn_user_data(srv_, id_, &p);
        return p;
    }
    /// Bytes queued and not yet written (nullopt when gone).
    std::optional<size_t> queued_bytes() const noexcept {
        size_t n = 0;
        if (ws_server_queued_bytes(srv_, id_, &n) != WS_OK) return std::nullopt;
        return n;
    }

private:
    const ws_server *srv_ = nullptr;
    uint64_t id_ = 0;
};

/// The events of a server, each may be empty (ignored). Run on the I/O
/// thread; callback mode only (in event-queue mode none runs: use poll).
struct Handlers {
    std::function<OpenAnswer(Connection, const Request &)> on_open;
    std::function<void(Connection, std::string_view data, Kind)> on_message;
    std::function<void(Connection, uint16_t code, std::string_view reason)> on_close;
    std::function<void(Connection, ws_result error, std::string_view message)> on_error;
    std::function<void(Connection)> on_drain;
    std::function<void(LogLevel, std::string_view message)> on_log;
    /// A plain HTTP request (no upgrade) that no static file or health path
    /// answered. Returns a status, or Handled (see HttpAnswer). A handler
    /// that throws answers 500 (and on_log hears of it).
    std::function<HttpAnswer(const HttpRequest &)> on_http;
};

enum class EventType : ws_event_type {
    Open = WS_EVENT_OPEN,
    Message = WS_EVENT_MESSAGE,
    Close = WS_EVENT_CLOSE,
    Error = WS_EVENT_ERROR,
    Drain = WS_EVENT_DRAIN,
    Log = WS_EVENT_LOG,
    Http = WS_EVENT_HTTP, ///< a plain HTTP request: http_request(), answered with Event::respond
};

/// One event from Server::poll, owned (ws_event_free on destruction).
/// Move-only; any thread may own and destroy it.
class Event {
public:
    explicit Event(ws_event *ev, const ws_server *srv) noexcept : ev_(ev), srv_(srv) {}
    EventType type() const noexcept { return static_cast<EventType>(ev_->type); }
    /// The connection (id 0 for a Log event).
    Connection connection() const noexcept { return Connection(srv_, ev_->conn); }
    uint64_t id() const noexcept { return ev_->conn; }
    /// Payload, close reason, or error/log text; valid while the Event lives.
    std::string_view data() const noexcept {
        return std::string_view(reinterpret_cast<const char *>(ev_->data), ev_->len);
    }
    Kind kind() const noexcept { return static_cast<Kind>(ev_->kind); }
    /// Close code, ws_result (Error) or log level (Log).
    int32_t code() const noexcept { return ev_->code; }
    void *user_data() const noexcept { return ev_->user_data; }
    /// For an Open or Http event, the request (valid while the Event lives).
    std::optional<Request> request() const noexcept {
        if (!ev_->request) return std::nullopt;
        return Request(ev_->request);
    }
    /// For an Http event, the request with its id (the request's views are
    /// valid while the Event lives; its respond() works after).
    std::optional<HttpRequest> http_request() const noexcept {
        if (ev_->type != WS_EVENT_HTTP || !ev_->request) return std::nullopt;
        return HttpRequest(ev_->request, srv_, ev_->conn);
    }
    /// Answers an Http event (ws_http_respond); any thread.
    ws_result respond(uint16_t status, const char *content_type = nullptr, std::string_view body = {}) const noexcept {
        return ws_http_respond(srv_, ev_->conn, status, content_type, detail::bytes(body), body.size());
    }
    const ws_event *native_handle() const noexcept { return ev_.get(); }

private:
    struct Free {
        void operator()(ws_event *e) const noexcept { ws_event_free(e); }
    };
    std::unique_ptr<ws_event, Free> ev_;
    const ws_server *srv_;
};

/// A WebSocket server (ws_server). Move-only; a moved-from Server is
/// inert (its calls report WS_ERR_NULL). The destructor closes (with
/// Options::close_grace_ms) and frees.
class Server {
public:
    explicit Server(Handlers handlers = {}, const Options &options = Options())
        : state_(std::make_unique<State>(std::move(handlers), options.close_grace_ms)) {
        ws_callbacks cb{};
        const Handlers &h = state_->handlers;
        if (h.on_open) cb.on_open = &Server::open_cb;
        if (h.on_message) cb.on_message = &Server::message_cb;
        if (h.on_close) cb.on_close = &Server::close_cb;
        if (h.on_error) cb.on_error = &Server::error_cb;
        if (h.on_drain) cb.on_drain = &Server::drain_cb;
        if (h.on_log) cb.on_log = &Server::log_cb;
        if (h.on_http) cb.on_http = &Server::http_cb;
        state_->srv = ws_server_new(&cb, state_.get());
        if (!state_->srv) throw Error(WS_ERR_PANIC, "ws_server_new", ws_last_error());
        options.each([this](ws_option opt, uint64_t v) { set_option(opt, v); });
        if (h.on_http && !options.http_handler) set_option(WS_OPT_HTTP_HANDLER, 1);
        if (!options.static_dir.empty())
            detail::check(ws_server_set_static_dir(state_->srv, options.static_dir.c_str()), "ws_server_set_static_dir");
        if (!options.health_path.empty())
            detail::check(ws_server_set_health_path(state_->srv, options.health_path.c_str()),
                          "ws_server_set_health_path");
        if (!options.backplane.empty())
            detail::check(ws_server_set_backplane(state_->srv, options.backplane.c_str()), "ws_server_set_backplane");
        set_list(ws_server_set_subprotocols, options.subprotocols, "ws_server_set_subprotocols");
        set_list(ws_server_set_allowed_origins, options.allowed_origins, "ws_server_set_allowed_origins");
        set_list(ws_server_set_paths, options.paths, "ws_server_set_paths");
    }
    Server(Server &&) noexcept = default;
    Server &operator=(Server &&) noexcept = default;
    Server(const Server &) = delete;
    Server &operator=(const Server &) = delete;
    ~Server() = default; // State's destructor closes and frees

    /// False for a moved-from Server.
    explicit operator bool() const noexcept { return state_ && state_->srv; }

    /// One option (WS_OPT_*), before listen. Throws Error.
    void set_option(ws_option opt, uint64_t value) {
        detail::check(ws_server_set_option(handle(), opt, value), "ws_server_set_option");
    }
    /// The value in force (after listen) or staged (before). Throws Error.
    uint64_t get_option(ws_option opt) const {
        uint64_t v = 0;
        detail::check(ws_server_get_option(handle(), opt, &v), "ws_server_get_option");
        return v;
    }
    /// Turns TLS on with `cfg` (checked now), before listen. Throws Error.
    void set_tls(const TlsConfig &cfg) { detail::check(ws_server_set_tls(handle(), cfg.native_handle()), "ws_server_set_tls"); }
    /// New certificate for new handshakes of a listening TLS server. Throws Error.
    void reload_tls(const TlsConfig &cfg) {
        detail::check(ws_server_reload_tls(handle(), cfg.native_handle()), "ws_server_reload_tls");
    }
    /// Binds and starts serving; address errors throw Error here.
    void listen(const std::string &host, uint16_t port) {
        detail::check(ws_server_listen(handle(), host.c_str(), port), "ws_server_listen");
    }
    /// The bound port. Throws Error when not listening.
    uint16_t port() const {
        uint16_t p = 0;
        detail::check(ws_server_port(handle(), &p), "ws_server_port");
        return p;
    }

    Connection connection(uint64_t id) const noexcept { return Connection(handle(), id); }
    SendResult send(uint64_t id, std::string_view data, Kind kind = Kind::Text, bool compress = true) const noexcept {
        return connection(id).send(data, kind, compress);
    }
    ws_result disconnect(uint64_t id, uint16_t code = 1000, const char *reason = nullptr) const noexcept {
        return connection(id).close(code, reason);
    }
    /// To every open connection but `except`; `*queued` (if given) gets how many took it.
    SendResult broadcast(std::string_view data, Kind kind = Kind::Text, uint64_t except = 0,
                         size_t *queued = nullptr) const noexcept {
        return SendResult::from(
            ws_server_broadcast(handle(), detail::bytes(data), data.size(), static_cast<ws_kind>(kind), except, queued));
    }

    // ---- handshake control: answers to an open that waits (any thread) ----

    ws_result accept(uint64_t id, const char *subprotocol = nullptr) const noexcept {
        return connection(id).accept(subprotocol);
    }
    ws_result refuse(uint64_t id, uint16_t http_status) const noexcept { return connection(id).refuse(http_status); }
    ws_result refuse_with_body(uint64_t id, uint16_t http_status, std::string_view body) const noexcept {
        return connection(id).refuse_with_body(http_status, body);
    }
    ws_result add_header(uint64_t id, const char *name, const char *value) const noexcept {
        return connection(id).add_header(name, value);
    }
    ws_result add_header(uint64_t id, const std::string &name, const std::string &value) const noexcept {
        return connection(id).add_header(name, value);
    }

    // ---- plain HTTP: answers to a request that waits (any thread) ----

    /// ws_http_respond: answers request `id` (from on_http or an Http
    /// event) with `status`, `content_type` (nullptr: none) and `body`.
    ws_result respond(uint64_t id, uint16_t status, const char *content_type = nullptr,
                      std::string_view body = {}) const noexcept {
        return ws_http_respond(handle(), id, status, content_type, detail::bytes(body), body.size());
    }
    ws_result respond(uint64_t id, uint16_t status, const std::string &content_type,
                      std::string_view body) const noexcept {
        return respond(id, status, content_type.c_str(), body);
    }

    // ---- topics ----

    ws_result subscribe(uint64_t id, const char *topic) const noexcept { return connection(id).subscribe(topic); }
    ws_result subscribe(uint64_t id, const std::string &topic) const noexcept { return connection(id).subscribe(topic); }
    ws_result unsubscribe(uint64_t id, const char *topic) const noexcept { return connection(id).unsubscribe(topic); }
    ws_result unsubscribe(uint64_t id, const std::string &topic) const noexcept {
        return connection(id).unsubscribe(topic);
    }
    /// To every subscriber of `topic` but `except` (encoded once); returns
    /// how many connections queued it (0 for a topic nobody subscribes to,
    /// and on an error, whose ws_result goes to `*result` when given).
    size_t publish(const char *topic, std::string_view data, Kind kind = Kind::Text, uint64_t except = 0,
                   ws_result *result = nullptr) const noexcept {
        size_t n = 0;
        ws_result r =
            ws_server_publish(handle(), topic, detail::bytes(data), data.size(), static_cast<ws_kind>(kind), except, &n);
        if (result) *result = r;
        return r < 0 ? 0 : n;
    }
    size_t publish(const std::string &topic, std::string_view data, Kind kind = Kind::Text, uint64_t except = 0,
                   ws_result *result = nullptr) const noexcept {
        return publish(topic.c_str(), data, kind, except, result);
    }
    /// Connections subscribed to `topic` now (0 on an error).
    size_t subscribers(const char *topic) const noexcept {
        size_t n = 0;
        if (ws_server_subscribers(handle(), topic, &n) != WS_OK) return 0;
        return n;
    }
    size_t subscribers(const std::string &topic) const noexcept { return subscribers(topic.c_str()); }
    /// A snapshot of the statistics (cheap; any thread). Throws Error for
    /// a moved-from Server.
    Stats stats() const {
        Stats st{};
        detail::check(ws_server_stats(handle(), &st), "ws_server_stats");
        return st;
    }

    /// Graceful close (ws_server_close); the destructor also does it.
    ws_result close(uint32_t grace_ms = 1000) noexcept { return ws_server_close(handle(), grace_ms); }

    // ---- event-queue mode (Options::event_queue = 1) ----

    /// The fd readable while events wait (owned by the server). Throws
    /// Error when not in event mode or not listening.
    int event_fd() const {
        int fd = -1;
        detail::check(ws_server_event_fd(handle(), &fd), "ws_server_event_fd");
        return fd;
    }
    /// The next event, waiting at most `timeout` (0: not at all, negative:
    /// forever). nullopt when none came in time, or when the server is
    /// closed and every event has been taken (then closed() is true).
    /// Never throws for those; throws Error when not in event mode.
    std::optional<Event> poll(std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) {
        ws_event *ev = nullptr;
        int64_t ms = timeout.count();
        int32_t t = ms < 0 ? -1 : ms > INT32_MAX ? INT32_MAX : static_cast<int32_t>(ms);
        ws_result r = ws_server_poll(handle(), t, &ev);
        if (r == WS_OK) return Event(ev, handle());
        if (r == WS_ERR_CLOSED) {
            state_->closed = true;
            return std::nullopt;
        }
        if (r == WS_ERR_TIMEOUT) return std::nullopt;
        detail::check(r, "ws_server_poll");
        return std::nullopt;
    }
    /// True once poll() has seen the closed server's last event.
    bool closed() const noexcept { return state_ && state_->closed; }

    ws_server *native_handle() const noexcept { return handle(); }

private:
    struct State {
        State(Handlers h, uint32_t grace) : handlers(std::move(h)), grace_ms(grace) {}
        ~State() {
            if (srv) {
                ws_server_close(srv, grace_ms);
                ws_server_free(srv);
            }
        }
        State(const State &) = delete;
        State &operator=(const State &) = delete;
        Handlers handlers;
        uint32_t grace_ms;
        ws_server *srv = nullptr;
        bool closed = false;
    };
    std::unique_ptr<State> state_;

    ws_server *handle() const noexcept { return state_ ? state_->srv : nullptr; }

    template <typename Set> void set_list(Set set, const std::vector<std::string> &items, const char *call) {
        if (items.empty()) return;
        std::vector<const char *> p;
        p.reserve(items.size());
        for (const auto &s : items) p.push_back(s.c_str());
        detail::check(set(state_->srv, p.data(), p.size()), call);
    }

    // Trampolines: noexcept, and every exception stops here.
    static void report(State *s, const char *handler, const char *what) noexcept {
        if (!s->handlers.on_log) return;
        try {
            std::string m = std::string("wsserver.hpp: the ") + handler + " handler threw: " + what;
            s->handlers.on_log(LogLevel::Error, m);
        } catch (...) {
            // the log handler threw too: nowhere left to report it
        }
    }
    template <typename F> static void guard(State *s, const char *handler, F &&f) noexcept {
        try {
            f();
        } catch (const std::exception &e) {
            report(s, handler, e.what());
        } catch (...) {
            report(s, handler, "an exception not derived from std::exception");
        }
    }
    static int open_cb(void *ud, uint64_t conn, const ws_request *req) noexcept {
        State *s = static_cast<State *>(ud);
        int status = 500; // a handler that threw refuses the handshake
        guard(s, "on_open", [&] { status = s->handlers.on_open(Connection(s->srv, conn), Request(req)).status; });
        return status;
    }
    static void message_cb(void *ud, uint64_t conn, const uint8_t *data, size_t len, ws_kind kind) noexcept {
        State *s = static_cast<State *>(ud);
        guard(s, "on_message", [&] {
            s->handlers.on_message(Connection(s->srv, conn), std::string_view(reinterpret_cast<const char *>(data), len),
                                   static_cast<Kind>(kind));
        });
    }
    static void close_cb(void *ud, uint64_t conn, uint16_t code, const char *reason, size_t len) noexcept {
        State *s = static_cast<State *>(ud);
        guard(s, "on_close",
              [&] { s->handlers.on_close(Connection(s->srv, conn), code, std::string_view(reason ? reason : "", len)); });
    }
    static void error_cb(void *ud, uint64_t conn, ws_result error, const char *message) noexcept {
        State *s = static_cast<State *>(ud);
        guard(s, "on_error", [&] { s->handlers.on_error(Connection(s->srv, conn), error, detail::view(message)); });
    }
    static void drain_cb(void *ud, uint64_t conn) noexcept {
        State *s = static_cast<State *>(ud);
        guard(s, "on_drain", [&] { s->handlers.on_drain(Connection(s->srv, conn)); });
    }
    static int http_cb(void *ud, uint64_t id, const ws_request *req) noexcept {
        State *s = static_cast<State *>(ud);
        int status = 500; // a handler that threw answers 500
        guard(s, "on_http", [&] { status = s->handlers.on_http(HttpRequest(req, s->srv, id)).status; });
        return status;
    }
    static void log_cb(void *ud, ws_log_level level, const char *message) noexcept {
        State *s = static_cast<State *>(ud);
        try {
            s->handlers.on_log(static_cast<LogLevel>(level), detail::view(message));
        } catch (...) {
            // a log handler that throws has nowhere to report to
        }
    }
};

/// The library's version at run time, e.g. "0.1.0".
inline std::string_view version() noexcept { return ws_version(); }

} // namespace wsserver

#endif // WSSERVER_HPP
