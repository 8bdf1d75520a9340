"""The package's import graph: no cycles (counting lazy and TYPE_CHECKING imports too), and the
layers point one way (docs/architecture.md)."""

from __future__ import annotations

import ast
import os

import pytest

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "hatoba")


def _modules() -> dict[str, str]:
    out = {}
    for d, _, files in os.walk(ROOT):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(d, f)
                rel = os.path.relpath(path, os.path.dirname(ROOT))[:-3].replace(os.sep, ".")
                out[rel[:-9] if rel.endswith(".__init__") else rel] = path
    return out


MODULES = _modules()


def _resolve(name: str) -> str | None:
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(mod: str) -> set[str]:
    tree = ast.parse(open(MODULES[mod]).read())
    pkg = mod if MODULES[mod].endswith("__init__.py") else mod.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = pkg.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for n in names:
            if n.startswith("hatoba"):
                r = _resolve(n)
                if r and r != mod:
                    found.add(r)
    return found


GRAPH = {m: imports_of(m) for m in MODULES}


def _cycles() -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for m in sorted(GRAPH):
        if m not in index:
            visit(m)
    return out


def test_no_import_cycles() -> None:
    assert _cycles() == []


# package → packages it must never import (the layers of docs/architecture.md, pointing down)
FORBIDDEN = {
    "hatoba.engine": ("hatoba.api", "hatoba.cli", "hatoba.daemon"),
    "hatoba.images": ("hatoba.api", "hatoba.engine", "hatoba.cli", "hatoba.daemon"),
    "hatoba.distribution": ("hatoba.api", "hatoba.engine", "hatoba.cli", "hatoba.daemon"),
    "hatoba.runtime": ("hatoba.api", "hatoba.engine", "hatoba.images", "hatoba.distribution", "hatoba.cli"),
    "hatoba.storage": ("hatoba.api", "hatoba.engine", "hatoba.images", "hatoba.distribution", "hatoba.runtime",
                       "hatoba.cli"),
    "hatoba.network": ("hatoba.api", "hatoba.engine", "hatoba.cli", "hatoba.daemon"),
    "hatoba.api": ("hatoba.cli", "hatoba.daemon"),
    "hatoba.cli": ("hatoba.api", "hatoba.engine", "hatoba.runtime", "hatoba.storage", "hatoba.distribution",
                   "hatoba.daemon", "hatoba.db"),
    "hatoba.client": ("hatoba.api", "hatoba.engine", "hatoba.cli", "hatoba.daemon"),
}


@pytest.mark.parametrize("pkg", sorted(FORBIDDEN))
def test_layers_point_down(pkg: str) -> None:
    bad = []
    for mod, deps in GRAPH.items():
        if mod == pkg or mod.startswith(pkg + "."):
            for d in deps:
                if any(d == f or d.startswith(f + ".") for f in FORBIDDEN[pkg]):
                    bad.append(f"{mod} -> {d}")
    assert bad == []
