#!/usr/bin/env python3
"""Writes the committed seed corpora, fuzz/corpus/<target>/, by hand-made
rules: valid and broken frames, fragmented and compressed messages (made
with zlib, a real compressor), HTTP requests, hostile paths, PEM material
from scripts/make-certs.sh, and option programs. Run it again only to
change the seeds (the PEM seeds then get fresh throwaway keys); what the
fuzzer finds during a run goes to build/fuzz/, never here."""
import os
import shutil
import struct
import subprocess
import tempfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- frames ------------------------------------------------------------

def frame(b0, payload, mask=b"\0\0\0\0", long=False):
    """A masked client frame; a zero mask keeps the payload readable (and
    easy for the fuzzer to mutate), `long` uses the 64-bit length form."""
    n = len(payload)
    if long:
        head = bytes([b0, 0x80 | 127]) + struct.pack(">Q", n)
    elif n < 126:
        head = bytes([b0, 0x80 | n])
    elif n < 65536:
        head = bytes([b0, 0x80 | 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, 0x80 | 127]) + struct.pack(">Q", n)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + body


def close(code=None, reason=b""):
    return frame(0x88, b"" if code is None else struct.pack(">H", code) + reason)


def deflated(z, data):
    """One message's payload as permessage-deflate sends it: a sync flush
    without its 00 00 ff ff tail."""
    out = z.compress(data) + z.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\0\0\xff\xff")
    return out[:-4]


def raw_deflate(level=6, bits=15):
    return zlib.compressobj(level, zlib.DEFLATED, -bits)


def reader_seeds():
    mask = bytes([0x37, 0xFA, 0x21, 0x3D])
    t = "reader"
    # cfg byte: limits (bits 0-3), then three chunk sizes (0: all the rest).
    write(t, "text-and-close", b"\0\0\0\0" + frame(0x81, b"hello") + close(1000, b"bye"))
    write(t, "fragmented-with-ping", b"\0\1\2\3" + frame(0x01, b"frag") + frame(0x89, b"ping!")
          + frame(0x00, b"men") + frame(0x80, "t \u20ac".encode()) + frame(0x82, bytes(range(10))) + close())
    write(t, "masked-utf8-split", b"\0\5\0\7" + frame(0x01, "κό".encode()[:3], mask)
          + frame(0x80, "κό".encode()[3:] + "σμε".encode(), mask) + frame(0x8A, b"pong", mask) + close(1001))
    write(t, "lengths-16-and-64-bit", b"\0\x40\x40\0" + frame(0x82, bytes(300)) + frame(0x81, b"x" * 130, long=True)
          + frame(0x82, b"", long=True))
    write(t, "bad-utf8", b"\0\3\0\0" + frame(0x81, b"ok\xff!") + close())
    write(t, "utf8-open-at-end", b"\0\0\0\0" + frame(0x81, b"\xe2\x82"))
    write(t, "over-limits", bytes([0x0A, 4, 4, 4]) + frame(0x82, bytes(40)) + frame(0x02, bytes(12))
          + frame(0x80, bytes(12)))
    write(t, "protocol-errors", b"\0\0\0\0" + frame(0x80, b"no message") + frame(0xC1, b"rsv1")
          + bytes([0x81, 0x05]) + b"plain" + frame(0x09, b"fragmented ping"))
    write(t, "close-payloads", b"\0\1\1\1" + frame(0x88, b"\x03") + close(1005) + close(4999, "é".encode()))
    write(t, "after-close", b"\0\0\0\0" + close(1000) + frame(0x81, b"after the close: ignored"))

    t = "reader_deflate"
    # cfg bit 4: the client keeps its context.
    z = raw_deflate()
    text = b"the same words again and again, " * 8
    write(t, "compressed-text-no-context", b"\0\0\0\0" + frame(0xC1, deflated(raw_deflate(), text))
          + frame(0xC2, deflated(raw_deflate(), bytes(500))) + frame(0x81, b"plain") + close())
    write(t, "compressed-context", b"\x10\0\0\0" + frame(0xC1, deflated(z, text)) + frame(0xC1, deflated(z, text))
          + frame(0xC1, deflated(z, b"and more")) + close())
    zz = deflated(raw_deflate(), b"\x07" * 3000)
    write(t, "compressed-fragmented", b"\0\3\x11\0" + frame(0x42, zz[: len(zz) // 2]) + frame(0x89, b"in between")
          + frame(0x80, zz[len(zz) // 2:]) + frame(0xC1, deflated(raw_deflate(1, 9), "héllo".encode())))
    write(t, "compressed-bomb", bytes([0x08, 0, 0, 0]) + frame(0xC1, deflated(raw_deflate(9), bytes(100_000))))
    write(t, "compressed-bad-utf8", b"\0\0\0\0" + frame(0xC1, deflated(raw_deflate(), b"ok\xff!")))
    write(t, "compressed-final-block", b"\0\0\0\0" + frame(0xC1, zlib.compressobj(6, zlib.DEFLATED, -15).compress(b"fin")
                                                        + zlib.compressobj(6, zlib.DEFLATED, -15).flush()))
    write(t, "not-deflate", b"\0\0\0\0" + frame(0xC1, b"\xff\xff\xff") + close())
    write(t, "rsv1-on-continuation", b"\0\0\0\0" + frame(0x41, deflated(raw_deflate(), b"a"))
          + frame(0xC0, b"") + frame(0xC9, b""))


# ---- HTTP --------------------------------------------------------------

UPGRADE = (b"GET /chat?room=1 HTTP/1.1\r\nHost: localhost:8080\r\nUpgrade: websocket\r\n"
           b"Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           b"Sec-WebSocket-Version: 13\r\nOrigin: http://localhost:8080\r\n")


def handshake_seeds():
    t = "handshake"
    # cfg bit 0: plain HTTP is served.
    write(t, "upgrade", b"\0" + UPGRADE + b"Sec-WebSocket-Protocol: a, chat\r\n\r\n")
    write(t, "upgrade-deflate-offers", b"\x81" + UPGRADE
          + b"Sec-WebSocket-Extensions: x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=\"10\"; "
            b"client_max_window_bits\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n"
            b"Sec-WebSocket-Protocol: superchat\r\nSec-WebSocket-Protocol: v2.json\r\n\r\n"
          + frame(0x81, b"first frame"))
    write(t, "upgrade-bad-offers", b"\0" + UPGRADE
          + b"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=8, permessage-deflate; foo, "
            b"permessage-deflate; client_max_window_bits=07\r\n\r\n")
    write(t, "upgrade-wrong-version", b"\0" + UPGRADE.replace(b"Version: 13", b"Version: 8") + b"\r\n")
    write(t, "upgrade-post", b"\0" + UPGRADE.replace(b"GET", b"POST") + b"\r\n")
    write(t, "upgrade-http10", b"\0" + UPGRADE.replace(b"HTTP/1.1", b"HTTP/1.0") + b"\r\n")
    write(t, "upgrade-bad-key", b"\0" + UPGRADE.replace(b"dGhlIHNhbXBsZSBub25jZQ==", b"short") + b"\r\n")
    write(t, "http-get-pipelined", b"\1GET /a/b?x=1 HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"1-2\"\r\n\r\n"
          b"GET /next HTTP/1.1\r\n\r\n")
    write(t, "http-post-body", b"\1POST /form HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
          b"Content-Type: text/plain\r\n\r\nhello")
    write(t, "http-chunked", b"\1POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    write(t, "http10-keepalive", b"\1HEAD /index.html HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    write(t, "http-bad-length", b"\1GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n")
    write(t, "http-absolute-target", b"\1GET http://evil/ HTTP/1.1\r\nHost: evil\r\n\r\n")
    write(t, "garbage", b"\1GARBAGE\r\n\r\n")
    write(t, "partial", b"\0GET /chat HTTP/1.1\r\nHost: x\r\nUpgr")


def static_path_seeds():
    t = "static_path"
    for i, p in enumerate([
        b"/", b"/index.html", b"/sub/a%20b.txt", b"//sub//deeper/", b"/inside", b"/sub/up/index.html",
        b"/../secret.txt", b"/sub/../../secret.txt", b"/%2e%2e/secret.txt", b"/%2E%2E/secret.txt",
        b"/.%2e/secret.txt", b"/sub%2f..%2f..%2fsecret.txt", b"/%252e%252e/secret.txt", b"/sub/%252e.txt",
        b"/..%5csecret.txt", b"/secret.txt%00.html", b"/index.html\0", b"/leak", b"/leak-relative",
        b"/dir-out/index.html", b"/dir-out/", b"/loop", b"/.hidden", b"/%", b"/%zz", b"/.", b"/sub/up/up/secret.txt",
        b"/\xc3\xa9t\xc3\xa9", b"/%c0%ae%c0%ae/secret.txt",
    ]):
        write(t, "path-%02d" % i, p)


# ---- the inflater ------------------------------------------------------

def inflater_seeds():
    t = "inflater"
    # cfg: bits 0-1 the limit, bit 2 separate messages, bit 3 round trip.
    json = b'{"user":"alice","text":"hello, world","room":"general"}' * 10
    write(t, "json", bytes([3, 0x55, 0x80]) + deflated(raw_deflate(), json))
    write(t, "json-small-limit", bytes([1, 0x10, 0x10]) + deflated(raw_deflate(9), json))
    write(t, "bomb", bytes([2, 0x80, 0x80]) + deflated(raw_deflate(9), bytes(200_000)))
    z = raw_deflate(6, 12)
    msgs = deflated(z, json) + deflated(z, json) + deflated(z, b"tail")
    write(t, "context-messages", bytes([7, 0x40, 0xA0]) + msgs)
    whole = zlib.compressobj(6, zlib.DEFLATED, -15)
    write(t, "final-block-then-more", bytes([3, 0x80, 0xC0]) + whole.compress(b"done") + whole.flush()
          + deflated(raw_deflate(), b"next stream"))
    write(t, "stored-block", bytes([3, 0, 0]) + b"\x00\x05\x00\xfa\xffhello")
    write(t, "corrupt", bytes([3, 0x20, 0x40]) + b"\xff\xff\xff\xff")
    write(t, "roundtrip-text", bytes([0x08 | 0x30, 0, 0]) + "κόσμε, the same words again ".encode() * 4)
    write(t, "roundtrip-context", bytes([0x08 | 0xF0, 0, 0]) + json)
    write(t, "roundtrip-empty", bytes([0x08 | 0x04, 0, 0]))


# ---- what a C caller hands over ----------------------------------------

def der_parse(b, i=0):
    """One DER TLV at b[i:] as [tag, bytes or children], and where it ends."""
    tag, n = b[i], b[i + 1]
    i += 2
    if n & 0x80:
        k = n & 0x7F
        n, i = int.from_bytes(b[i:i + k], "big"), i + k
    v = b[i:i + n]
    if tag & 0x20:
        kids, j = [], 0
        while j < len(v):
            kid, j = der_parse(v, j)
            kids.append(kid)
        v = kids
    return [tag, v], i + n


def der(node):
    tag, v = node
    if isinstance(v, list):
        v = b"".join(der(k) for k in v)
    n = len(v)
    size = bytes([n]) if n < 128 else bytes([0x80 | (n.bit_length() + 7) // 8]) + n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag]) + size + v


def pem_body(text):
    import base64
    return base64.b64decode("".join(l for l in text.decode().splitlines() if not l.startswith("-----")))


def as_pem(label, data):
    import base64
    b = base64.b64encode(data).decode()
    return ("-----BEGIN %s-----\n%s\n-----END %s-----\n" % (label, "\n".join(b[i:i + 64] for i in range(0, len(b), 64)), label)).encode()


def with_kdf_integer(pem, index, value):
    """An encrypted PKCS#8 key with one KDF parameter changed (index 1: PBKDF2
    iterations or scrypt N, 3: scrypt p): a key whose derivation would hang
    or abort must be refused first."""
    root, _ = der_parse(pem_body(pem))
    kdf_params = root[1][0][1][1][1][0][1][1][1]
    kdf_params[index] = [2, value.to_bytes((value.bit_length() + 8) // 8, "big")]
    return as_pem("ENCRYPTED PRIVATE KEY", der(root))

def pem_seeds():
    t = "ffi_tls_pem"
    root = os.path.dirname(HERE)
    tmp = tempfile.mkdtemp(prefix="wsserver-pem-seeds-")
    try:
        subprocess.run(["bash", os.path.join(root, "scripts", "make-certs.sh"), tmp], check=True,
                       stdout=subprocess.DEVNULL)

        def read(name):
            with open(os.path.join(tmp, name), "rb") as f:
                return f.read()

        # cert \0 key \0 ca \0 password; the input's parity picks PEM (even) or file (odd).
        def seed(name, *parts, file=False):
            data = b"\0".join(parts)
            write(t, name, data if len(data) % 2 == int(file) else data + b"\0")

        seed("ec-pkcs8", read("server.pem"), read("server.key"))
        seed("ec-pkcs8-file", read("server.pem"), read("server.key"), file=True)
        seed("ec-sec1-mtls", read("server-sec1.pem"), read("server-sec1.key"), read("ca.pem"))
        seed("rsa-pkcs1-file", read("server-rsa.pem"), read("server-rsa.key"), file=True)
        write(t, "encrypted-key", b"\0".join([read("server.pem"), read("server-enc.key"), b"", b"secret"]))
        pbkdf2 = subprocess.run(["openssl", "pkcs8", "-topk8", "-v2", "aes-256-cbc", "-iter", "1", "-in",
                                 os.path.join(tmp, "server.key"), "-passout", "pass:secret"],
                                check=True, capture_output=True).stdout
        scrypt = subprocess.run(["openssl", "pkcs8", "-topk8", "-scrypt", "-scrypt_N", "1024", "-scrypt_r", "8",
                                 "-scrypt_p", "1", "-in", os.path.join(tmp, "server.key"), "-passout", "pass:secret"],
                                check=True, capture_output=True).stdout
        write(t, "scrypt-key", b"\0".join([read("server.pem"), scrypt, b"", b"secret"]))
        write(t, "pbkdf2-2e32-iterations", b"\0".join([read("server.pem"), with_kdf_integer(pbkdf2, 1, 2**32 - 1),
                                                        b"", b"secret"]))
        write(t, "scrypt-2e40-cost", b"\0".join([read("server.pem"), with_kdf_integer(scrypt, 1, 2**40), b"", b"secret"]))
        write(t, "scrypt-parallel", b"\0".join([read("server.pem"), with_kdf_integer(scrypt, 3, 60000), b"", b"secret"]))
        write(t, "mismatched-key", b"\0".join([read("server.pem"), read("server2.key")]))
        write(t, "ed448-key", b"\0".join([read("server.pem"), read("ed448.key")]))
        write(t, "ca-only", b"\0".join([b"", b"", read("ca.pem")]))
        write(t, "legacy-encrypted", b"\0".join([read("server.pem"),
                                                 b"-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n"
                                                 b"DEK-Info: AES-128-CBC,00\n\nAAAA\n-----END EC PRIVATE KEY-----\n"]))
        write(t, "empty", b"")
    finally:
        shutil.rmtree(tmp)


def cstr(s):
    """A C string argument of the ffi_config program: length, bytes."""
    return bytes([len(s)]) + s


def config_seeds():
    t = "ffi_config"
    SET, GET, SUB, ORIGINS, PATHS, STATIC, HEALTH, SSL, INFO, NULL = range(10)
    # set_option: op, id byte, value kind (0 small byte, 1 min/max/max+1/min-1, else 8 bytes), value.
    every = b"".join(bytes([SET, i, 1, k]) + bytes([GET, i]) for i in range(26) for k in (0, 1, 2))
    write(t, "every-option-bounds", every)
    write(t, "options-values", bytes([SET, 1, 3]) + struct.pack(">Q", 4096) + bytes([GET, 1])
          + bytes([SET, 10, 3]) + struct.pack(">Q", 1008) + bytes([GET, 10]) + bytes([SET, 10, 0, 7, GET, 10])
          + bytes([SET, 0xF5]) + struct.pack(">I", 0xFFFFFFFF) + bytes([0, 1, INFO, 0xF0]) + struct.pack(">I", 21))
    write(t, "subprotocols", bytes([SUB, 2]) + cstr(b"chat") + cstr(b"superchat") + b"\0"
          + bytes([SUB, 2]) + cstr(b"bad name") + cstr(b"") + b"\0" + bytes([SUB, 1, 255, 0])
          + bytes([SUB, 0, 255]) + bytes([SUB, 3, 255]))
    write(t, "origins-and-paths", bytes([ORIGINS, 1]) + cstr(b"https://example.com") + b"\0"
          + bytes([ORIGINS, 1]) + cstr(b"") + b"\0" + bytes([PATHS, 2]) + cstr(b"/chat") + cstr(b"nope") + b"\0"
          + bytes([PATHS, 1]) + cstr(b"/\xff") + b"\0")
    write(t, "static-and-health", bytes([STATIC]) + cstr(b"/tmp") + bytes([STATIC]) + cstr(b"/nonexistent")
          + bytes([STATIC]) + cstr(b"/etc/hostname") + bytes([STATIC, 255]) + bytes([STATIC]) + cstr(b"\xff\xfe")
          + bytes([HEALTH]) + cstr(b"/healthz") + bytes([HEALTH]) + cstr(b"healthz") + bytes([HEALTH, 255])
          + bytes([SSL, 129, NULL]))


# ---- TLS 1.3 records -----------------------------------------------------

def tls13_records_seeds():
    """Inner plaintexts for tls13_records: `len`, then content, content type
    and padding; byte 0 picks the suite (bit 7: raw bytes instead)."""
    t = "tls13_records"

    def rec(inner):
        return bytes([len(inner)]) + inner
    data = rec(b"hello\x17")
    key_update = rec(b"\x18\0\0\x01\x01\x16")
    for suite in range(3):
        write(t, f"data-{suite}", bytes([suite]) + data + rec(b"\x17") + rec(b"padded\x17\0\0\0"))
        write(t, f"key-updates-{suite}", bytes([suite]) + key_update + data + rec(b"\x18\0\0\x01\x00\x16") + data)
    write(t, "alerts", bytes([0]) + data + rec(b"\x01\x5a\x15") + rec(b"\x01\x00\x15"))
    write(t, "fatal-alert", bytes([1]) + rec(b"\x02\x28\x15"))
    write(t, "refused", bytes([2]) + rec(b"\x04\0\0\x01\x00\x16") + rec(b"\0\0") + rec(b"\x01\x14"))
    write(t, "flipped", bytes([0]) + data + bytes([0xff]) + b"x" * 200 + b"\x17")
    write(t, "raw", bytes([0x80, 23, 3, 3, 0, 20]) + bytes(20))


if __name__ == "__main__":
    if os.path.isdir(CORPUS):
        shutil.rmtree(CORPUS)
    reader_seeds()
    handshake_seeds()
    static_path_seeds()
    inflater_seeds()
    pem_seeds()
    config_seeds()
    tls13_records_seeds()
    for target in sorted(os.listdir(CORPUS)):
        files = os.listdir(os.path.join(CORPUS, target))
        size = sum(os.path.getsize(os.path.join(CORPUS, target, f)) for f in files)
        print(f"{target}: {len(files)} seeds, {size} bytes")
