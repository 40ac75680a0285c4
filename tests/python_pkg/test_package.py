"""The installed package: where the library comes from, what happens when
it cannot be found, version, options read from the C library, errors."""
import importlib.metadata
import inspect
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import wsserver
from conftest import ROOT


def python(code: str, env_extra: dict, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("WSSERVER_LIBRARY", "LD_LIBRARY_PATH", "PYTHONPATH")}
    env.update(env_extra)
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=60)


def test_installed_package_carries_the_library(tmp_path):
    pkg = Path(wsserver.__file__).parent
    assert "site-packages" in str(pkg), f"tests must import the installed package, got {pkg}"
    assert (pkg / "libwsserver.so").is_file()
    assert (pkg / "py.typed").is_file()
    # No LD_LIBRARY_PATH, not run from the source tree: the package's own copy.
    r = python("import wsserver; print(wsserver.library_path)", {}, tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(pkg / "libwsserver.so")


def test_version_is_the_crates():
    cargo = (ROOT / "Cargo.toml").read_text()
    assert f'version = "{wsserver.__version__}"' in cargo
    assert importlib.metadata.version("wsserver") == wsserver.__version__


def test_wsserver_library_overrides_the_path(tmp_path):
    copy = tmp_path / "renamed-libwsserver.so"
    shutil.copyfile(wsserver.library_path, copy)
    r = python("import wsserver; print(wsserver.library_path)", {"WSSERVER_LIBRARY": str(copy)}, tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(copy)

    r = python("import wsserver", {"WSSERVER_LIBRARY": str(tmp_path / "missing.so")}, tmp_path)
    assert r.returncode != 0
    assert "ImportError" in r.stderr and "missing.so (no such file)" in r.stderr


def test_not_found_names_every_place_it_looked(tmp_path):
    # A copy of the package without its library, inside a fake source tree
    # without target/release, and find_library finding nothing.
    tree = tmp_path / "tree"
    pkg = tree / "bindings" / "python" / "wsserver"
    shutil.copytree(Path(wsserver.__file__).parent, pkg, ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    (tree / "Cargo.toml").write_text("[package]\nname = \"wsserver\"\n")
    code = "import ctypes.util; ctypes.util.find_library = lambda name: None; import wsserver"
    r = python(code, {"PYTHONPATH": str(pkg.parent)}, tmp_path)
    assert r.returncode != 0
    err = r.stderr
    assert "ImportError: wsserver: cannot load libwsserver" in err
    assert f"package dir: {pkg / 'libwsserver.so'} (no such file)" in err
    assert "WSSERVER_LIBRARY: not set" in err
    assert f"source tree: {tree / 'target' / 'release' / 'libwsserver.so'} (no such file)" in err
    assert "ctypes.util.find_library('wsserver'): nothing found" in err


def test_options_come_from_the_library():
    opts = wsserver.OPTIONS
    for name in ("max_message_size", "send_queue_limit", "send_queue_hard_limit", "event_queue", "auto_accept"):
        assert name in opts
        assert opts[name].why, name
        assert opts[name].min <= opts[name].default <= opts[name].max
    assert opts["max_message_size"].c_name == "WS_OPT_MAX_MESSAGE_SIZE"
    # The defaults shown in Server's signature are the ones a new server has
    # in force (ws_option_info against ws_server_get_option).
    params = inspect.signature(wsserver.Server).parameters
    with wsserver.Server() as srv:
        in_force = srv.options
    assert set(in_force) == set(opts)
    for name, info in opts.items():
        assert params[name].default == info.default == in_force[name], name


def test_options_are_set_and_checked():
    with wsserver.Server(max_message_size=1234, event_queue=True) as srv:
        assert srv.options["max_message_size"] == 1234
        assert srv.options["event_queue"] == 1
    with pytest.raises(TypeError, match="unknown wsserver option 'max_mesage_size'"):
        wsserver.Server(max_mesage_size=1)
    with pytest.raises(wsserver.InvalidArgumentError) as e:
        wsserver.Server(threads=0)
    assert e.value.name == "WS_ERR_INVALID_ARGUMENT" and e.value.code == -2 and e.value.message


def test_failures_raise_with_code_name_and_message(make_server):
    srv = make_server(listen=False)
    with pytest.raises(wsserver.BadHostError) as e:
        srv.listen("not a host", 0)
    assert (e.value.code, e.value.name) == (-4, "WS_ERR_BAD_HOST")
    assert "not a host" in e.value.message
    assert isinstance(e.value, wsserver.WsError)

    srv.listen("127.0.0.1", 0)
    with pytest.raises(wsserver.StateError):
        srv.listen("127.0.0.1", 0)
    with pytest.raises(wsserver.AddrInUseError) as e:
        make_server(listen=False).listen("127.0.0.1", srv.port)
    assert e.value.name == "WS_ERR_ADDR_IN_USE"
    with pytest.raises(wsserver.NoSuchConnError) as e:
        srv.send(12345, "x")
    assert "WS_ERR_NO_SUCH_CONN" in str(e.value)
    with pytest.raises(wsserver.NoSuchConnError):
        srv.queued_bytes(12345)
    with pytest.raises(wsserver.InvalidUtf8Error):
        srv.send(1, "\ud800")
    with pytest.raises(TypeError):
        srv.send(1, 42)  # type: ignore[arg-type]
    assert srv.broadcast("nobody") == 0


def test_a_freed_server_refuses_calls():
    srv = wsserver.Server()
    srv.listen("127.0.0.1", 0)
    with srv:
        pass
    with pytest.raises(wsserver.ClosedError, match="freed"):
        srv.send(1, "x")
    srv.close()  # idempotent, even after free


def test_type_hints_pass_mypy_strict(tmp_path):
    """Type hints everywhere: the installed package (py.typed) and the examples."""
    examples = sorted(map(str, (ROOT / "bindings" / "python" / "examples").glob("*.py")))
    for target in (["-p", "wsserver"], examples):  # mypy takes a package or files, not both
        r = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path), *target],
                           capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert r.returncode == 0 and "Success" in r.stdout, r.stdout + r.stderr
