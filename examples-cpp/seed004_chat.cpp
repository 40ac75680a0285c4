// Seed 004's sample program, whole, on the websocket.hpp facade: the body of
// the loop is the seed's usage snippet as written. What was added around it:
// optional [host] [port] arguments (the seed's 0.0.0.0 8888 by default), a
// "listening on" line, and a loop that runs until SIGINT/SIGTERM (exit 0).
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>

#include "websocket.hpp"

static volatile std::sig_atomic_t stopping = 0;
static void on_signal(int) { stopping = 1; }

int main(int argc, char **argv) {
    std::string host = argc > 1 ? argv[1] : "0.0.0.0";
    int port = argc > 2 ? std::atoi(argv[2]) : 8888;
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);

    websocket::Server server;
    // listen on 0.0.0.0:8888
    // log errors to stderr
    if (!server.start(host, static_cast<std::uint16_t>(port), std::cerr)) return 1;
    std::cout << "listening on ws://" << host << ':' << server.port() << std::endl;

    while (!stopping) {
        // check for a new event
        websocket::Event event;
        websocket::ConnectionId connId;
        std::string message;
        if (server.poll(event, connId, message)) {
            switch (event) {
            case websocket::Event::NewConnection:
                std::cout << '#' << connId << " connected\n";
                break;
            case websocket::Event::Message:
                std::cout << '#' << connId << " says " << message << '\n';
                // send reply
                server.send(connId, message);
                break;
            case websocket::Event::Disconnect:
                std::cout << '#' << connId << " disconnected\n";
                break;
            }
        } else {
            // poll() never blocks: idle a little when nothing is waiting
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    }

    // stop server
    server.stop();
    // destructor also can call stop(), but it's better to do it explicitly
    return 0;
}
