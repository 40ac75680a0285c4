"""wss:// through TlsConfig: files, PEM bytes, encrypted keys, mutual TLS,
live reload, and the errors a bad configuration raises."""
import ssl

import pytest
from websockets.exceptions import InvalidHandshake

import wsserver
from conftest import Recorder, client, client_context, recv, run


def subject_of(ws):
    return dict(x[0] for x in ws.transport.get_extra_info("peercert")["subject"])


def serve_echo(make_server, tls, **kw):
    holder = {}
    srv = make_server(tls=tls, on_message=lambda conn, data: holder["srv"].send(conn, data), **kw)
    holder["srv"] = srv
    return srv


async def echo_once(srv, ctx, text="over tls"):
    async with client(srv, ssl=ctx) as ws:
        await ws.send(text)
        assert await recv(ws) == text
        return subject_of(ws)


def test_certificate_and_key_from_files(make_server, certs):
    srv = serve_echo(make_server, wsserver.TlsConfig(certs / "server.pem", str(certs / "server.key")))
    assert run(echo_once(srv, client_context(certs)))["organizationName"] == "wsserver"


def test_certificate_and_encrypted_key_from_pem_bytes(make_server, certs):
    tls = wsserver.TlsConfig((certs / "server.pem").read_bytes(), (certs / "server-enc.key").read_bytes(),
                             password="secret")
    srv = serve_echo(make_server, tls)
    run(echo_once(srv, client_context(certs)))


def test_rsa_pkcs1_key(make_server, certs):
    srv = serve_echo(make_server, wsserver.TlsConfig(certs / "server-rsa.pem", certs / "server-rsa.key"))
    assert run(echo_once(srv, client_context(certs)))["organizationName"] == "wsserver rsa"


def test_mutual_tls_gives_the_client_subject(make_server, certs):
    subjects, warnings = Recorder(), Recorder()
    tls = wsserver.TlsConfig(certs / "server.pem", certs / "server.key", ca=(certs / "ca.pem").read_bytes())
    srv = make_server(tls=tls, on_open=lambda conn, req: subjects.add(req.client_subject),
                      on_log=lambda level, msg: "TLS handshake failed" in msg and warnings.add(msg))

    async def go():
        async with client(srv, ssl=client_context(certs, "client")):
            pass
        for who in (None, "other-client"):  # no certificate, or one from another CA
            # TLS 1.3: the client may finish first and only see the connection end
            with pytest.raises((ssl.SSLError, OSError, InvalidHandshake)):
                async with client(srv, ssl=client_context(certs, who)) as ws:
                    await recv(ws)

    run(go())
    assert len(warnings.wait_for(lambda w: len(w) == 2)) == 2
    (subject,) = subjects.items  # the refused handshakes never reached on_open
    assert "CN=alice" in subject and "O=wsserver tests" in subject


def test_reload_serves_the_new_certificate_to_new_handshakes(make_server, certs):
    srv = serve_echo(make_server, wsserver.TlsConfig(certs / "server.pem", certs / "server.key"))
    ctx = client_context(certs)

    async def go():
        async with client(srv, ssl=ctx) as old:
            assert subject_of(old)["organizationName"] == "wsserver"
            srv.reload_tls(wsserver.TlsConfig(certs / "server2.pem", certs / "server2.key"))
            assert await echo_once(srv, ctx) == {"commonName": "localhost", "organizationName": "wsserver renewed"}
            await old.send("old one still works")
            assert await recv(old) == "old one still works"
        with pytest.raises(wsserver.TlsError):  # a mismatched pair: the renewed one stays
            srv.reload_tls(wsserver.TlsConfig(certs / "server.pem", certs / "server2.key"))
        assert (await echo_once(srv, ctx))["organizationName"] == "wsserver renewed"

    run(go())


def test_tls_configuration_errors(make_server, certs):
    with pytest.raises(wsserver.TlsError) as e:
        wsserver.TlsConfig(certs / "server.pem", certs / "server-enc.key", password="wrong")
    assert e.value.name == "WS_ERR_TLS" and e.value.message
    with pytest.raises(wsserver.TlsError) as e:
        wsserver.TlsConfig(certs / "missing.pem", certs / "server.key")
    assert "missing.pem" in e.value.message
    with pytest.raises(wsserver.TlsError):
        wsserver.TlsConfig(b"not a certificate", certs / "server.key")
    with pytest.raises(wsserver.TlsError):
        wsserver.TlsConfig(certs / "server.pem", certs / "ed448.key")
    with pytest.raises(wsserver.TlsError) as e:  # key and certificate do not match: reported by the server
        make_server(listen=False, tls=wsserver.TlsConfig(certs / "server.pem", certs / "server2.key"))
    assert e.value.message
    with pytest.raises(wsserver.StateError):
        make_server().reload_tls(wsserver.TlsConfig(certs / "server.pem", certs / "server.key"))  # not TLS
