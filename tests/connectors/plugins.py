"""Installs the example connector plugin (tests/plugin_example) for the tests that use it.

`example_plugin` builds a wheel of the package, installs it with pip into a temporary
directory (offline: --no-index, --no-deps), puts that directory on sys.path and lets the
registry load the `grouparoo.connectors` entry points — exactly what happens when a user runs
`pip install grouparoo-jsonl` and restarts the server. Afterwards the classes are unregistered
and the directory leaves sys.path again.

The wheel is written here rather than by `pip wheel`: the package is pure Python, and building
it through setuptools would need setuptools and wheel in the build environment (a download, or
packages this project does not otherwise need).
"""
from __future__ import annotations

import base64
import hashlib
import importlib
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from connectors import registry

PLUGIN_DIR = Path(__file__).resolve().parent.parent / "plugin_example"
PLUGIN_TYPES = {"app": "jsonl", "source": "jsonl-file", "destination": "jsonl-export"}


def build_wheel(project: Path, out: Path) -> Path:
    """A py3-none-any wheel of a pure-Python src-layout project, from its pyproject.toml."""
    meta = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    name, version = meta["name"], meta["version"]
    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    files: dict[str, bytes] = {}
    src = project / "src"
    for path in sorted(src.rglob("*.py")):
        files[path.relative_to(src).as_posix()] = path.read_bytes()
    files[f"{info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: {meta.get('description', '')}\n"
    ).encode()
    files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: grouparoo-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    groups = meta.get("entry-points", {})
    files[f"{info}/entry_points.txt"] = "".join(
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in points.items()) + "\n" for group, points in groups.items()
    ).encode()
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = out / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return wheel


def install(wheel: Path, target: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--no-compile",
         "--disable-pip-version-check", "--target", str(target), str(wheel)],
        check=True, capture_output=True, text=True, timeout=120,
    )


_installed: list[str] = []  # the site directory, while installed
_users = 0  # fixture instances using it (each test module importing the fixture makes one)


@pytest.fixture(scope="session")
def example_plugin(tmp_path_factory) -> Iterator[ModuleType]:
    """The installed example plugin's connector module, its classes registered."""
    global _users
    if not _installed:
        base = tmp_path_factory.mktemp("plugin")
        target = base / "site"
        install(build_wheel(PLUGIN_DIR, base), target)
        sys.path.insert(0, str(target))
        _installed.append(str(target))
        importlib.invalidate_caches()
        registry.load_entry_points()
    _users += 1
    try:
        yield sys.modules["grouparoo_jsonl.connector"]
    finally:
        _users -= 1
        if _users == 0:
            _uninstall()


def _uninstall() -> None:
    tables = {"app": registry._apps, "source": registry._sources, "destination": registry._destinations}
    for kind, key in PLUGIN_TYPES.items():
        cls = tables[kind].get(key)
        if cls is not None:
            registry.unregister(cls)
    while _installed:
        sys.path.remove(_installed.pop())
    for name in [n for n in sys.modules if n == "grouparoo_jsonl" or n.startswith("grouparoo_jsonl.")]:
        del sys.modules[name]
    importlib.invalidate_caches()
