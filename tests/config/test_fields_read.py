"""Every config field is read by the code: a field nothing reads is a setting that silently does
nothing (trainer.eval_every and data.eval_file of the RL config once were).

An AST scan of src/reasonrl outside config/ (and outside sft/ for the RL config, rl/ for the SFT
config: both have `model`, `data` and `optim` sections, and SFT's `data.eval_file` being read says
nothing about RL's). Field `section.name` counts as read when the code reads attribute `name` of
something that is that section:

- `<cfg>.section.name`, where <cfg> is a name or attribute containing "cfg" or "config"
  (`cfg.trainer.eval_every`, `state.cfg.algo.kl_coef`, `self.config.rollout.n`);
- `alias.name`, where the module binds `alias = <cfg>.section` (tuple assignments included) or
  annotates a parameter `alias: SectionClass` (`def f(t: TrainerConfig)`);
- `getattr(<one of those>, "name")`;
- or `name` is a string in a `*_KWARGS` mapping (`ADVANTAGE_KWARGS`, `LOSS_KWARGS`: settings
  picked out of a dumped section by name).

Aliases are per module, not per scope, so the scan can give credit too easily, never too
rarely to a field that has a real read of one of these shapes. Fields read only inside config/
(derivations, properties) are in ALLOWED with the reason. A field that fails: read it, or pass the
section object under an annotated parameter, or add it to ALLOWED saying why nothing reads it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel, create_model

from reasonrl.config import RLConfig
from reasonrl.config.base import ConfigModel
from reasonrl.config.sft import SFTConfig

SRC = Path(__file__).resolve().parents[2] / "src" / "reasonrl"

# Fields that no code outside config/ needs to read, with the reason.
ALLOWED: dict[str, str] = {
    "algo.preset": "expanded into the other algo fields by AlgoConfig itself (config/rl.py)",
    "trainer.out_dir": "read through the RLConfig.run_dir property (config/rl.py)",
    "trainer.run_name": "read through the RLConfig.run_dir property (config/rl.py)",
}
# Packages whose reads do not count for a root config (they read the other one).
NOT_READERS = {RLConfig: ("config", "assets", "sft"), SFTConfig: ("config", "assets", "rl")}


def sections(root: type[BaseModel]) -> dict[str, type[BaseModel]]:
    """{section name: section class} of a root config."""
    out = {}
    for name, info in root.model_fields.items():
        cls = info.annotation
        if isinstance(cls, type) and issubclass(cls, BaseModel):
            out[name] = cls
    return out


def source_files(root: Path, skip: tuple[str, ...]) -> Iterator[Path]:
    for path in sorted(root.rglob("*.py")):
        if path.relative_to(root).parts[0] not in skip:
            yield path


def _ident(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    return node.attr if isinstance(node, ast.Attribute) else ""


def _is_config(node: ast.AST) -> bool:
    name = _ident(node).lower()
    return "cfg" in name or "config" in name


def _bindings(node: ast.Assign | ast.AnnAssign) -> Iterator[tuple[ast.AST, ast.AST]]:
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    for target in targets:
        if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
            yield from zip(target.elts, node.value.elts, strict=False)
        elif node.value is not None:
            yield target, node.value


def fields_read(tree: ast.AST, secs: dict[str, type[BaseModel]]) -> set[tuple[str, str]]:
    """(section, field) pairs read in one module (see the module docstring); a `*_KWARGS`
    string gives ("*", name)."""
    by_class = {cls.__name__: name for name, cls in secs.items()}
    alias: dict[str, str] = {}

    def section_of(node: ast.AST) -> str | None:
        if isinstance(node, ast.Attribute) and node.attr in secs and _is_config(node.value):
            return node.attr
        return alias.get(node.id) if isinstance(node, ast.Name) else None

    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AnnAssign):
            for target, value in _bindings(node):
                section = section_of(value) if isinstance(value, ast.Attribute) else None
                if isinstance(target, ast.Name) and section is not None:
                    alias[target.id] = section
        elif isinstance(node, ast.arg) and node.annotation is not None:
            annotation = ast.unparse(node.annotation).strip("'\"")
            if annotation in by_class:
                alias[node.arg] = by_class[annotation]
    found: set[tuple[str, str]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
            section = section_of(node.value)
            if section is not None:
                found.add((section, node.attr))
        elif (
            isinstance(node, ast.Call)
            and _ident(node.func) == "getattr"
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            section = section_of(node.args[0])
            if section is not None:
                found.add((section, node.args[1].value))
        elif isinstance(node, ast.Assign | ast.AnnAssign) and any(
            _ident(t).endswith("KWARGS") for t, _ in _bindings(node)
        ):
            assert node.value is not None
            for sub in ast.walk(node.value):
                if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                    found.add(("*", sub.value))
    return found


def unread(
    root: type[BaseModel], *, src: Path = SRC, skip: tuple[str, ...] = ("config", "assets")
) -> list[str]:
    """Dotted names of the fields of `root` that no module under `src` reads."""
    secs = sections(root)
    found: set[tuple[str, str]] = set()
    for path in source_files(src, skip):
        found |= fields_read(ast.parse(path.read_text(encoding="utf-8"), str(path)), secs)
    return [
        f"{section}.{name}"
        for section, cls in secs.items()
        for name in cls.model_fields
        if (section, name) not in found
        and ("*", name) not in found
        and f"{section}.{name}" not in ALLOWED
    ]


def test_allowlist_entries_exist_and_say_why() -> None:
    fields = {f"{s}.{n}" for s, cls in sections(RLConfig).items() for n in cls.model_fields}
    assert set(ALLOWED) <= fields, "stale ALLOWED entries"
    assert all(len(why) > 10 for why in ALLOWED.values())


@pytest.mark.parametrize("root", [RLConfig, SFTConfig], ids=["rl", "sft"])
def test_every_config_field_is_read(root: type[BaseModel]) -> None:
    assert unread(root, skip=NOT_READERS[root]) == []


Dummy = create_model(
    "DummySection", __base__=ConfigModel, every=(int, 1), zz_never=(int, 0), zz_other=(int, 0)
)
DummyRoot = create_model("DummyRoot", __base__=ConfigModel, trainer=(Dummy, Dummy()))


def _scan(tmp_path: Path, code: str) -> list[str]:
    (tmp_path / "pkg").mkdir(exist_ok=True)
    (tmp_path / "pkg" / "m.py").write_text(code)
    return unread(DummyRoot, src=tmp_path)


def test_the_scan_is_not_vacuous(tmp_path: Path) -> None:
    # a field nothing reads is reported, even when the repository's real code is scanned
    assert "trainer.zz_never" in unread(DummyRoot)
    # reads of the section count, in each supported shape
    code = (
        "from x import DummySection\n"
        "X_KWARGS = {'a': ('zz_other',)}\n"
        "def f(cfg, t: DummySection):\n"
        "    return cfg.trainer.every, t.zz_never\n"
    )
    assert _scan(tmp_path, code) == []
    code = (
        "def f(state):\n"
        "    tr, n = state.cfg.trainer, 1\n"
        "    return tr.every + getattr(tr, 'zz_never')\n"
    )
    assert _scan(tmp_path, code) == ["trainer.zz_other"]
    # a docstring, comment, store, plain string or another object's attribute does not
    code = (
        '"""zz_never zz_other every"""\n'
        "OTHER = ('zz_other',)\n"
        "def f(cfg, sft_run):\n"
        "    cfg.trainer.zz_never = 1  # every\n"
        "    return sft_run.trainer.every, cfg.trainer\n"
    )
    assert _scan(tmp_path, code) == ["trainer.every", "trainer.zz_never", "trainer.zz_other"]
