"""The one rule of the import graph (docs/architecture.md): arrows point down only.

Built with grimp (import-linter's graph) from every import statement, function-level ones
included: no module may sit in an import circle, and nothing below the composition root
(`llmgw`) imports it.
"""

from __future__ import annotations

import grimp
import pytest

ROOT = "llmgw"
DOMAIN = ("api", "jobs", "workers", "routing", "providers", "storage", "monitoring")


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(ROOT, *DOMAIN)


def import_circles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []
    for start in sorted(graph.modules):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    imported = sorted(graph.find_modules_directly_imported_by(child))
                    work.append((child, iter(imported)))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    circles.append(sorted(component))
    return circles


def test_no_import_circle(graph):
    assert import_circles(graph) == []


def test_the_circle_finder_finds_a_circle():
    graph = grimp.ImportGraph()
    for module in ("a", "b", "c"):
        graph.add_module(module)
    graph.add_import(importer="a", imported="b")
    graph.add_import(importer="b", imported="a")
    graph.add_import(importer="b", imported="c")
    assert import_circles(graph) == [["a", "b"]]


@pytest.mark.parametrize("package", DOMAIN)
def test_no_domain_package_imports_the_root(graph, package):
    offenders = sorted(
        (module, imported)
        for module in graph.find_descendants(package) | {package}
        for imported in graph.find_modules_directly_imported_by(module)
        if imported == ROOT or imported.startswith(ROOT + ".")
    )
    assert offenders == []


def test_jobs_is_below_the_api_and_the_workers(graph):
    """jobs/ is the layer the API and the workers share: it imports neither."""
    for upper in ("api", "workers", "monitoring.collectors"):
        assert not graph.chain_exists(importer="jobs", imported=upper, as_packages=True), upper
