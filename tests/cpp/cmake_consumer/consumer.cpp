// Built by the CMake consumer test against both imported targets: the
// installed C++ headers (both include spellings), a listen that throws,
// and a facade start on a free port. Prints "consumer_cpp ok" and exits 0.
#include <wsserver/wsserver.hpp>
#include <websocket.hpp>

#include <iostream>
#include <sstream>

int main() {
    try {
        wsserver::Server s;
        s.listen("no such host", 0);
        std::cout << "consumer_cpp: listen did not throw\n";
        return 1;
    } catch (const wsserver::Error &e) {
        if (e.result() != WS_ERR_BAD_HOST) {
            std::cout << "consumer_cpp: wrong error " << e.what() << '\n';
            return 1;
        }
    }
    std::ostringstream log;
    websocket::Server server;
    if (!server.start("127.0.0.1", 0, log) || server.port() == 0) {
        std::cout << "consumer_cpp: start failed: " << log.str() << '\n';
        return 1;
    }
    server.stop();
    std::cout << "consumer_cpp ok " << wsserver::version() << '\n';
    return 0;
}
