"""The package's shape: no module imports one that imports it back (directly or around a loop), and
networks, training modules and degraders stay apart."""

import ast
from pathlib import Path

import degrade_lab

ROOT = Path(degrade_lab.__file__).parent


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports anywhere (imports inside functions count), read with ast."""
    files = {".".join(f.relative_to(ROOT.parent).with_suffix("").parts).removesuffix(".__init__"): f
             for f in ROOT.rglob("*.py")}
    graph = {name: set() for name in files}
    for name, file in files.items():
        package = name if file.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(file.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            for target in targets:
                while target and target not in files:
                    target = target.rpartition(".")[0]
                if target and target != name and target != "degrade_lab":
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_networks_training_modules_and_degraders_stay_apart():
    graph = import_graph()
    for name, imports in graph.items():
        if name.startswith("degrade_lab.archs"):
            assert not any(i.startswith(("degrade_lab.lit", "degrade_lab.degradations", "degrade_lab.tasks"))
                           for i in imports), (name, imports)
        if name.startswith("degrade_lab.degradations"):
            assert not any(i.startswith(("degrade_lab.lit", "degrade_lab.tasks")) for i in imports), (name, imports)


def test_the_readme_is_short_and_every_local_link_resolves():
    import re

    repo = ROOT.parent.parent
    readme = repo / "README.md"
    if not readme.is_file():  # an installed wheel carries no docs
        return
    assert len(readme.read_text().splitlines()) <= 250
    for page in [readme, *sorted((repo / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if not target.startswith(("http://", "https://")):
                assert (page.parent / target).exists(), f"{page.name} links to missing {target}"
