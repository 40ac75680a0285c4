"""Builds libwsserver with cargo and ships the shared library inside the
`wsserver` package, where ctypes loads it (no compiled extension module).

`pip install ./bindings/python` builds in-tree, so the Rust crate is two
directories up. CARGO names the cargo binary, CARGO_TARGET_DIR is honoured,
and WSSERVER_CARGO_PROFILE names the cargo profile (default "release";
tests/python_pkg uses "checked": debug assertions and overflow checks on).
"""
import os
import re
import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.bdist_wheel import bdist_wheel
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
LIBRARY = "libwsserver.so"


def crate_version() -> str:
    """The package version is the library's: one number, kept in Cargo.toml."""
    cargo_toml = ROOT / "Cargo.toml"
    if not cargo_toml.is_file():
        raise SystemExit(f"wsserver: {cargo_toml} not found; build from the wsserver source tree")
    match = re.search(r'^version\s*=\s*"([^"]+)"', cargo_toml.read_text(), re.M)
    if not match:
        raise SystemExit(f"wsserver: no version in {cargo_toml}")
    return match.group(1)


class BuildWithCargo(build_py):
    """build_py, plus `cargo build --profile release --lib` (or
    WSSERVER_CARGO_PROFILE) and a copy of the .so."""

    def run(self) -> None:
        super().run()
        cargo = os.environ.get("CARGO", "cargo")
        if shutil.which(cargo) is None:
            raise SystemExit(f"wsserver: '{cargo}' not found: the Rust toolchain is needed to build libwsserver")
        profile = os.environ.get("WSSERVER_CARGO_PROFILE") or "release"
        subprocess.run([cargo, "build", "--profile", profile, "--lib"], cwd=ROOT, check=True)
        target = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
        if not target.is_absolute():
            target = ROOT / target
        built = target / ("debug" if profile == "dev" else profile) / LIBRARY
        dest = Path(self.build_lib) / "wsserver" / LIBRARY
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built, dest)

    def get_outputs(self, include_bytecode: bool = True) -> list:
        return super().get_outputs(include_bytecode) + [str(Path(self.build_lib) / "wsserver" / LIBRARY)]


class NativeLibrary(Distribution):
    """The package holds a native library: platform-specific (platlib), as
    with an extension module, though there is none."""

    def has_ext_modules(self) -> bool:
        return True


class PlatformWheel(bdist_wheel):
    """Any Python 3 can load the library with ctypes: py3-none-<platform>."""

    def get_tag(self) -> tuple:
        return ("py3", "none", super().get_tag()[2])


setup(
    version=crate_version(),
    distclass=NativeLibrary,
    cmdclass={"build_py": BuildWithCargo, "bdist_wheel": PlatformWheel},
)
