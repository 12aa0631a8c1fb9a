"""The README's first command installs only `install_requires`: Parley's own code must run on it.

The test suite installs the `test` extra too, so a runtime module importing a package that only
the tests bring (httpx did, in workers/retrieval/rerank.py) passed every test and broke
`flask --app web run` on a fresh machine. This imports every module of the runtime packages in a
fresh interpreter in which the test extra's packages cannot be imported.
"""
from __future__ import annotations

import configparser
import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
RUNTIME_PACKAGES = ("models", "web", "workers")

IMPORT_ALL = """
import importlib, importlib.abc, json, pkgutil, sys

blocked = set(json.loads(sys.argv[1]))

class TestOnly(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in blocked:
            raise ModuleNotFoundError(f"{name} comes only with the test extra", name=name)
        return None

sys.meta_path.insert(0, TestOnly())
failed = []
for root in sys.argv[2:]:
    for info in pkgutil.walk_packages([root], prefix=root + "."):
        try:
            importlib.import_module(info.name)
        except Exception as exc:
            failed.append(f"{info.name}: {type(exc).__name__}: {exc}")
print(json.dumps(failed))
"""


def requirements(section: str, key: str) -> list[Requirement]:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    return [Requirement(line) for line in config[section][key].split("\n") if line.strip()]


def distributions_needed(roots: list[Requirement]) -> set[str]:
    """The installed distributions `roots` pull in, with their extras' requirements."""
    seen: set[tuple[str, tuple[str, ...]]] = set()
    todo = [(r.name, tuple(sorted(r.extras))) for r in roots]
    while todo:
        name, extras = todo.pop()
        key = (normal(name), extras)
        if key in seen:
            continue
        seen.add(key)
        try:
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:
            continue
        for line in requires:
            req = Requirement(line)
            if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in extras or ("",)):
                todo.append((req.name, tuple(sorted(req.extras))))
    return {name for name, _ in seen}


def normal(name: str) -> str:
    return name.lower().replace("_", "-")


def test_runtime_modules_import_without_the_test_extra():
    runtime = distributions_needed(requirements("options", "install_requires"))
    test_only = distributions_needed(requirements("options.extras_require", "test")) - runtime
    blocked = sorted(module for module, dists in metadata.packages_distributions().items()
                     if all(normal(d) in test_only for d in dists))
    assert "httpx" in blocked  # the test extra's HTTP client; Parley's own code uses httpx2
    done = subprocess.run([sys.executable, "-c", IMPORT_ALL, json.dumps(blocked), *RUNTIME_PACKAGES],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == []
