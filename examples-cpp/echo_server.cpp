// An echo server on the C++ binding: every text or binary message goes back
// to its sender. Usage: echo_server [host] [port]   (127.0.0.1 8080)
// Prints one "listening on ws://HOST:PORT" line; SIGINT/SIGTERM close the
// server (1 s grace) and exit 0.
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <string>

#include <pthread.h>

#include "wsserver.hpp"

int main(int argc, char **argv) {
    std::string host = argc > 1 ? argv[1] : "127.0.0.1";
    unsigned long port = 8080;
    if (argc > 2) {
        char *end = nullptr;
        port = std::strtoul(argv[2], &end, 10);
        if (*argv[2] == '\0' || *end != '\0' || port > 65535) {
            std::cerr << "usage: " << argv[0] << " [host] [port]   (port 0-65535, not '" << argv[2] << "')\n";
            return 2;
        }
    }
    // SIGINT and SIGTERM are blocked here and in the server's threads, and
    // taken by sigwait below.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);

    wsserver::Handlers handlers;
    handlers.on_message = [](wsserver::Connection conn, std::string_view data, wsserver::Kind kind) {
        conn.send(data, kind); // a refusal (client gone, queue full) just drops the echo
    };
    handlers.on_log = [](wsserver::LogLevel level, std::string_view message) {
        static const char *names[] = {"?", "error", "warn", "info", "debug"};
        auto l = static_cast<unsigned>(level);
        std::cerr << '[' << names[l <= 4 ? l : 0] << "] " << message << '\n';
    };
    try {
        wsserver::Server server(std::move(handlers));
        server.listen(host, static_cast<uint16_t>(port));
        bool v6 = host.find(':') != std::string::npos && host[0] != '[';
        std::cout << "listening on ws://" << (v6 ? "[" : "") << host << (v6 ? "]" : "") << ':' << server.port()
                  << std::endl;
        int sig = 0;
        sigwait(&signals, &sig);
        server.close(1000);
    } catch (const wsserver::Error &e) {
        std::cerr << "echo_server: " << e.what() << '\n';
        return 1;
    }
    return 0;
}
