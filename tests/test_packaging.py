"""What a release ships: the sdist and the wheel built from a copy of the checkout.

Both carry the LICENSE, classifiers and project URLs, a README whose links work on a package
index page, and only the package (no tests/, bench/, docs/); the wheel installs no ``pytest11``
entry point, so floorstream's fixtures are opt-in rather than loaded into every pytest run of
the environment (an ERP's own test suite included). Every runtime dependency is imported by the
package.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from email.message import Message
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SKIP = {".git", ".venv", "build", "dist", "demo", ".mypy_cache", ".ruff_cache", ".pytest_cache",
        ".hypothesis"}
#: a Markdown link or reference definition whose target is not absolute
RELATIVE_LINK = re.compile(r"\]\((?!https?://|#|mailto:)[^)]*\)|^\[[^\]]+\]:\s+(?!https?://)",
                           re.MULTILINE)


def _ignore(directory: str, names: list[str]) -> set[str]:
    top = Path(directory) == ROOT
    return {n for n in names
            if (top and n in SKIP) or n == "__pycache__" or n.endswith((".pyc", ".egg-info"))
            or re.search(r"\.db(-wal|-shm)?$", n)}


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(sdist, wheel) as ``python -m build`` makes them: the wheel is built from the sdist."""
    if importlib.util.find_spec("build") is None:
        message = "the `build` package is not installed (pip install -e '.[dev]')"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    checkout = tmp_path_factory.mktemp("checkout") / "floorstream"
    shutil.copytree(ROOT, checkout, ignore=_ignore)
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(checkout)],
        capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return sdist, wheel


def _check_metadata(meta: Message) -> None:
    assert meta["License-Expression"] == "Apache-2.0"
    assert "LICENSE" in (meta.get_all("License-File") or [])
    classifiers = meta.get_all("Classifier") or []
    assert "Programming Language :: Python :: 3.11" in classifiers
    assert "Intended Audience :: Manufacturing" in classifiers
    assert not [c for c in classifiers if c.startswith("License ::")]  # the expression says it
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL") or [])
    assert urls["Source"] == "https://github.com/floorstream/floorstream"
    assert {"Homepage", "Documentation", "Issues"} <= set(urls)
    requires = meta.get_all("Requires-Dist") or []
    # not at run time (the dev extra has it: Starlette's TestClient, tests/web)
    assert not [r for r in requires if r.lower().startswith("httpx") and "extra ==" not in r]
    description = meta.get_payload()
    assert isinstance(description, str) and "floorstream" in description
    assert RELATIVE_LINK.findall(description) == []  # links work on a package index page


def test_sdist_ships_the_package_and_its_license_not_the_tests(dists: tuple[Path, Path]) -> None:
    sdist, _ = dists
    with tarfile.open(sdist) as tar:
        names = tar.getnames()
        prefix = names[0].split("/")[0] + "/"
        info = tar.extractfile(prefix + "PKG-INFO")
        assert info is not None
        meta = Parser().parsestr(info.read().decode())
    files = {n[len(prefix):] for n in names if n.startswith(prefix)}
    assert "LICENSE" in files
    assert "src/floorstream/py.typed" in files
    assert "src/floorstream/adapters/mqtt/sparkplug_b/LICENSE-EPL-2.0.txt" in files
    shipped_tops = {f.split("/")[0] for f in files}
    assert not shipped_tops & {"tests", "bench", "docs", "examples", "plugins"}, shipped_tops
    _check_metadata(meta)


def test_wheel_ships_the_license_and_no_pytest_plugin(dists: tuple[Path, Path]) -> None:
    _, wheel = dists
    with zipfile.ZipFile(wheel) as whl:
        names = whl.namelist()
        info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        meta = Parser().parsestr(whl.read(f"{info}/METADATA").decode())
        entry_points = whl.read(f"{info}/entry_points.txt").decode()
    assert f"{info}/licenses/LICENSE" in names
    assert {n.split("/")[0] for n in names} == {"floorstream", info}  # no tests/ package
    assert "floorstream/adapters/supply/codes/generic.json" in names
    for data in ("sparkplug_b.proto", "sparkplug_b_pb2.pyi", "LICENSE-EPL-2.0.txt"):
        assert f"floorstream/adapters/mqtt/sparkplug_b/{data}" in names  # package data
    assert "[console_scripts]" in entry_points
    assert "floorstream = floorstream.cli:main" in entry_points
    assert "pytest11" not in entry_points
    _check_metadata(meta)


def test_license_is_the_apache_license() -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.lstrip().startswith("Apache License\n")
    assert "Version 2.0, January 2004" in text and "END OF TERMS AND CONDITIONS" in text
    assert text == (ROOT / "tests/samples/LICENSES/Apache-2.0.txt").read_text(encoding="utf-8")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_runtime_dependency_is_imported() -> None:
    """A dependency nothing imports is a dependency every install pays for (httpx was)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = {_canonical(re.split(r"[\s<>=!~;\[]", dep, maxsplit=1)[0])
              for dep in project["dependencies"]}
    imported: set[str] = set()
    for path in (ROOT / "src" / "floorstream").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module.split(".")[0])
    providers = importlib.metadata.packages_distributions()
    used = {_canonical(dist) for module in imported for dist in providers.get(module, [])}
    assert wanted - used == set()


TEST_USING_THE_FIXTURES = """\
def test_kit(recording_emitter, floorstream_plugins):
    assert recording_emitter is not None and floorstream_plugins is not None
"""

TEST_OF_ANOTHER_PROJECT = """\
import sys

def test_floorstream_stays_out():
    assert not [m for m in sys.modules if m == "floorstream" or m.startswith("floorstream.")]
"""


def _pytest(directory: Path) -> subprocess.CompletedProcess[str]:
    (directory / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_ADDOPTS")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "-c", str(directory / "pytest.ini"), str(directory)],
        cwd=directory, capture_output=True, text=True, env=env, timeout=300, check=False)


def test_pytest_plugin_is_opt_in(tmp_path: Path) -> None:
    """Installed floorstream adds nothing to another project's pytest run (checks the
    environment's installed metadata: after changing entry points, reinstall with
    ``pip install -e .``); a suite that wants the fixtures names the plugin."""
    other = tmp_path / "erp_suite"
    other.mkdir()
    (other / "test_erp.py").write_text(TEST_OF_ANOTHER_PROJECT, encoding="utf-8")
    result = _pytest(other)
    loaders = [f"{ep.value} ({getattr(ep.dist, '_path', '?')})"
               for ep in importlib.metadata.entry_points(group="pytest11")
               if ep.value.startswith("floorstream")]
    assert result.returncode == 0, (
        f"pytest11 entry points of floorstream: {loaders} (a stale install or "
        f"src/floorstream.egg-info? pip install -e .)\n{result.stdout[-3000:]}")
    kit = tmp_path / "plugin_suite"
    kit.mkdir()
    (kit / "test_kit.py").write_text(TEST_USING_THE_FIXTURES, encoding="utf-8")
    result = _pytest(kit)
    assert result.returncode != 0 and "fixture 'recording_emitter' not found" in result.stdout
    (kit / "conftest.py").write_text('pytest_plugins = ["floorstream.testing.pytest_plugin"]\n',
                                     encoding="utf-8")
    result = _pytest(kit)
    assert result.returncode == 0, result.stdout[-3000:]
