"""The import graph of ``hubbub`` (grimp: every import, those inside functions too): no circles, and
imports point one way (models <- pipeline <- cli, demo, recipes; the last three never import each other)."""

import pytest

grimp = pytest.importorskip("grimp")


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph("hubbub", include_external_packages=False)


def _cycles(graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        x = stack.pop()
                        on.discard(x)
                        comp.append(x)
                        if x == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
            elif w not in index:
                index[w] = low[w] = counter[0]
                counter[0] += 1
                stack.append(w)
                on.add(w)
                work.append((w, iter(edges[w])))
            elif w in on:
                low[v] = min(low[v], index[w])
    return out


def test_no_import_circles(graph):
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_circle():
    class Fake:
        modules = {"a", "b", "c"}

        @staticmethod
        def find_modules_directly_imported_by(m):
            return {"a": {"b"}, "b": {"a"}, "c": {"a"}}[m]

    assert _cycles(Fake()) == [["a", "b"]]


@pytest.mark.parametrize("low, high", [
    ("hubbub.models", "hubbub.pipeline"), ("hubbub.models", "hubbub.recipes"), ("hubbub.models", "hubbub.demo"),
    ("hubbub.models", "hubbub.cli"), ("hubbub.pipeline", "hubbub.recipes"), ("hubbub.pipeline", "hubbub.demo"),
    ("hubbub.pipeline", "hubbub.cli"), ("hubbub.demo", "hubbub.recipes"), ("hubbub.recipes", "hubbub.demo"),
    ("hubbub.demo", "hubbub.cli"), ("hubbub.cli", "hubbub.demo"), ("hubbub.cli", "hubbub.recipes"),
    ("hubbub.recipes", "hubbub.cli"),
])
def test_imports_point_one_way(graph, low, high):
    """``low`` never imports ``high``, directly or through another module."""
    chains = graph.find_shortest_chains(importer=low, imported=high, as_packages=True)
    assert not chains, sorted(chains)[:3]


def test_the_demo_imports_only_the_pipeline(graph):
    demo = {m for m in graph.modules if m.startswith("hubbub.demo")}
    direct = {(m, i) for m in demo for i in graph.find_modules_directly_imported_by(m)}
    assert not {(m, i) for m, i in direct if not i.startswith(("hubbub.pipeline", "hubbub.demo"))}
