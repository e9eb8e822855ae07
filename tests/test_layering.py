"""The dependency rule of docs/architecture.md, checked on the source: every import in src/reasonrl
(module level, inside functions, under TYPE_CHECKING) is an edge of one graph, and that graph has
no cycle, no arrow to a higher layer, no sideways arrow outside the allowed list, and no private
name (`_x`) imported from another module."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "reasonrl"

# Lower layers never import higher ones. A package not listed here fails the test: place it.
LAYERS: dict[str, int] = {
    "types": 0, "text": 0, "exports": 0,
    "runtime": 1,
    "dist": 1,  # torch.distributed plumbing (process group, collectives, shards): no RL in it
    "algos": 2,
    "models": 3, "rollout": 3, "rewards": 3, "tasks": 3, "data": 3, "config": 3,
    "envs": 3,
    "rl": 4, "sft": 4, "eval": 4, "report": 4, "rm": 4,
    "es": 4,  # EGGROLL evolution strategies: its generation runs inside the RL run loop
    "distributed_ray": 5,  # the Ray backend: actors around the rl loop (trainer.backend=ray)
    "cli": 6,
}  # fmt: skip
# Sideways arrows between packages of one layer that the design allows, with the reason.
SIDEWAYS = {
    ("data", "tasks"),  # data.sources draws synthetic problems from the task's generator
    ("data", "config"),  # data.templates applies the prompt-key rule config.prompt checks at load
    ("sft", "eval"),  # SFT reports greedy strict pass@1 with the evaluator
    ("rl", "eval"),  # rl.evaluation scores held-out problems during training (trainer.eval_every)
    ("rm", "eval"),  # the DPO run reports strict pass@1 before and after with the evaluator
    ("es", "rl"),  # es.run is rl.run with the ES generation as its step (checkpoints, resume)
    ("rewards", "models"),  # rewards.learned / rewards.judge load a reward model or a judge LM
    ("envs", "rewards"),  # envs.tools.python runs tool calls in the rewards.sandbox
    # (envs -> rewards also: envs.rollout scores episodes with rewards.batch.call_reward_batch)
    ("envs", "rollout"),  # envs.rollout drives episodes through the RolloutEngine protocol
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    """Every module of the package (`assets/` holds model files, e.g. a tokenizer class that
    `from_pretrained` loads from the checkpoint directory, not package code)."""
    return {module_name(p): p for p in sorted(SRC.rglob("*.py")) if "assets" not in p.parts}


def imports(name: str, path: Path, known: set[str]) -> Iterator[tuple[str, str | None]]:
    """(imported module, imported name or None) for every import statement in the file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                yield (sub, None) if sub in known else (target, alias.name)


def graph() -> tuple[dict[str, set[str]], list[tuple[str, str, str]]]:
    mods = modules()
    known = set(mods)
    edges: dict[str, set[str]] = {m: set() for m in mods}
    private: list[tuple[str, str, str]] = []
    for name, path in mods.items():
        for target, imported in imports(name, path, known):
            if not target.startswith("reasonrl"):
                continue
            while target not in known and "." in target:
                target = target.rpartition(".")[0]
            if target != name:
                edges[name].add(target)
                if imported and imported.startswith("_") and not imported.startswith("__"):
                    private.append((name, target, imported))
    return edges, private


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def package_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None  # None: the root package `reasonrl`


def test_no_import_cycles() -> None:
    edges, _ = graph()
    assert cycles(edges) == []


def test_no_private_names_imported_across_modules() -> None:
    _, private = graph()
    assert private == []


def test_every_package_has_a_layer() -> None:
    packages = {package_of(m) for m in modules()} - {None}
    assert packages == set(LAYERS), f"place these in LAYERS: {sorted(packages - set(LAYERS))}"


def test_no_upward_or_unlisted_sideways_imports() -> None:
    edges, _ = graph()
    bad = []
    for source, targets in edges.items():
        src = package_of(source)
        for target in targets:
            dst = package_of(target)
            if src is None:
                ok = dst in ("types", "exports")  # `import reasonrl` stays light: records only
            elif dst is None or src == dst:
                ok = dst is not None
            elif LAYERS[src] == LAYERS[dst]:
                ok = (src, dst) in SIDEWAYS
            else:
                ok = LAYERS[src] > LAYERS[dst]
            if not ok:
                bad.append(f"{source} -> {target}")
    assert bad == []


@pytest.mark.parametrize(
    ("edges", "expected"),
    [
        ({"a": {"b"}, "b": {"a"}, "c": set()}, [["a", "b"]]),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, [["a", "b", "c"]]),
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"a"}}, []),  # a self-import is not a cycle between modules
    ],
)
def test_cycle_finder(edges: dict[str, set[str]], expected: list[list[str]]) -> None:
    assert cycles(edges) == expected


def test_graph_sees_function_level_and_type_only_imports(tmp_path: Path) -> None:
    src = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from reasonrl.rl.state import TrainState\n"
        "def f():\n    from reasonrl.eval import evaluate\n"
        "from . import sibling\n"
    )
    path = tmp_path / "mod.py"
    path.write_text(src)
    known = {"reasonrl.rl.state", "reasonrl.eval", "reasonrl.eval.evaluate", "reasonrl.x.sibling"}
    got = set(imports("reasonrl.x.mod", path, known))
    assert {("reasonrl.rl.state", "TrainState"), ("reasonrl.eval.evaluate", None)} <= got
    assert ("reasonrl.x.sibling", None) in got
