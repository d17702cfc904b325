"""The shape of the code (../DESIGN's arrows), checked on every run from the import statements.

root (pension) → everything; channels → bot → (nlu, faq, services); console → services;
face (the face-check page) → services;
nlu and faq → services (the region data); services → nothing of ours but itself, and no Flask.
Nothing imports the root, and no two top-level packages import each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("pension", "channels", "bot", "console", "face", "nlu", "faq", "services")
ALLOWED = {
    "pension": set(PACKAGES),
    "channels": {"channels", "bot", "services"},
    "bot": {"bot", "nlu", "faq", "services"},
    "console": {"console", "services"},
    "face": {"face", "services"},
    "nlu": {"nlu", "services"},
    "faq": {"faq", "services"},
    "services": {"services"},
}
WEB_OR_PLATFORM = {"flask", "flask_login", "flask_wtf", "werkzeug", "wechatpy", "alipay"}


def imports_of(package: str) -> dict[str, set[str]]:
    """module path → the top-level names it imports (anywhere in the file, lazily or not)."""
    found = {}
    for path in sorted((REPO / package).rglob("*.py")):
        if "migrations" in path.parts and package == "services":
            continue  # Alembic's env imports the models; it is not part of the layering
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        names = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(REPO))] = names
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_imports_only_what_its_layer_allows(package):
    wrong = {
        module: sorted(names & set(PACKAGES) - ALLOWED[package])
        for module, names in imports_of(package).items()
        if names & set(PACKAGES) - ALLOWED[package]
    }
    assert wrong == {}


def test_services_import_no_web_framework_and_no_platform_sdk():
    wrong = {
        m: sorted(n & WEB_OR_PLATFORM)
        for m, n in imports_of("services").items()
        if n & WEB_OR_PLATFORM
    }
    assert wrong == {}


def test_no_cycle_between_top_level_packages():
    edges = {
        package: {name for names in imports_of(package).values() for name in names}
        & set(PACKAGES) - {package}
        for package in PACKAGES
    }
    cycles = [(a, b) for a in PACKAGES for b in edges[a] if a in edges[b]]
    assert cycles == []
