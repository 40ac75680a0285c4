// echo_check PORT [PATH]: connects to ws://127.0.0.1:PORT/PATH with the C
// test client, sends a text and a binary message (and, with --text-only, a
// second text instead of the binary one) and checks that each comes back
// unchanged with its kind. Exit 0 when every echo matched; prints why not.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

extern "C" {
#include "client.h"
}

static bool expect(wsc *c, int opcode, const std::string &payload) {
    wsc_frame f{};
    int r = wsc_recv(c, &f, 5000);
    if (r != WSC_OK) {
        std::printf("echo_check: no echo (%d): %s\n", r, c->why);
        return false;
    }
    bool ok = f.opcode == opcode && std::string(reinterpret_cast<char *>(f.data), f.len) == payload;
    if (!ok) std::printf("echo_check: got opcode %d, %zu bytes; wanted %d, %zu bytes\n", f.opcode, f.len, opcode, payload.size());
    wsc_frame_free(&f);
    return ok;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: echo_check PORT [PATH] [--text-only]\n");
        return 2;
    }
    uint16_t port = static_cast<uint16_t>(std::atoi(argv[1]));
    const char *path = argc > 2 ? argv[2] : "/";
    bool text_only = argc > 3 && std::strcmp(argv[3], "--text-only") == 0;
    wsc c{};
    int status = wsc_open(&c, "127.0.0.1", port, path, nullptr, 0, 5000);
    if (status != 101) {
        std::printf("echo_check: handshake answered %d: %s\n", status, c.why);
        wsc_free(&c);
        return 1;
    }
    bool ok = true;
    const std::string text = "hello \xc3\xa9 from echo_check";
    ok = wsc_send_text(&c, text.c_str()) == 0 && expect(&c, WSC_TEXT, text) && ok;
    if (text_only) {
        ok = wsc_send_text(&c, "second") == 0 && expect(&c, WSC_TEXT, "second") && ok;
    } else {
        const std::string bin("\x00\x01\xfe\xff", 4);
        ok = wsc_send_frame(&c, WSC_BINARY, 1, bin.data(), bin.size()) == 0 && expect(&c, WSC_BINARY, bin) && ok;
    }
    std::string big(300, 'x'); // over seed 004's 125-byte limit
    ok = wsc_send_text(&c, big.c_str()) == 0 && expect(&c, WSC_TEXT, big) && ok;
    wsc_send_close(&c, 1000, nullptr);
    wsc_free(&c);
    std::printf("echo_check: %s\n", ok ? "all echoes matched" : "MISMATCH");
    return ok ? 0 : 1;
}
