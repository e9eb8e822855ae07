"""Checkpoints: exact round trip, RNG replay, keep-last-K; partial or corrupt dirs never load."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from reasonrl.runtime.checkpoint import (
    MARKER,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    prune_checkpoints,
    save_checkpoint,
    verify_checkpoint,
)


class Tiny(torch.nn.Module):
    """Embedding tied to the output head, like the small Qwen2 models (shared tensor on disk)."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(11, 6)
        self.mid = torch.nn.Linear(6, 6)
        self.head = torch.nn.Linear(6, 11, bias=False)
        self.head.weight = self.emb.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.mid(self.emb(ids))))


def make(seed: int) -> tuple[Tiny, torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    torch.manual_seed(seed)
    model = Tiny()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (1 + s))
    return model, opt, sched


def train(model: Tiny, opt: torch.optim.Optimizer, sched: object, steps: int) -> None:
    for _ in range(steps):
        ids = torch.randint(0, 11, (4, 5))  # consumes the torch RNG, like sampling would
        loss = torch.nn.functional.cross_entropy(model(ids).flatten(0, 1), ids.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()  # type: ignore[attr-defined]


def save(run: Path, step: int, model: Tiny, opt: object, sched: object, **kw: object) -> Path:
    return save_checkpoint(
        run, step, model=model, optimizer=opt, scheduler=sched, sampler_state={"pos": step}, **kw
    )


def test_resume_is_bit_identical(tmp_path: Path) -> None:
    # Uninterrupted: 6 steps. Interrupted: 3 steps, save, fresh objects, load, 3 more steps.
    model_a, opt_a, sched_a = make(0)
    train(model_a, opt_a, sched_a, 6)

    model_b, opt_b, sched_b = make(0)
    train(model_b, opt_b, sched_b, 3)
    save(tmp_path, 3, model_b, opt_b, sched_b, engine_state={"seed": 7}, extra={"best": 0.5})
    torch.manual_seed(123)  # scramble everything the checkpoint must restore
    model_c, opt_c, sched_c = make(99)
    info = load_checkpoint(
        latest_checkpoint(tmp_path), model=model_c, optimizer=opt_c, scheduler=sched_c
    )
    assert info["step"] == 3 and info["sampler_state"] == {"pos": 3}
    assert info["engine_state"] == {"seed": 7} and info["extra"] == {"best": 0.5}
    assert model_c.head.weight is model_c.emb.weight  # tying survives the load
    train(model_c, opt_c, sched_c, 3)
    for (name, a), c in zip(model_a.state_dict().items(), model_c.state_dict().values()):
        assert torch.equal(a, c), name
    assert sched_c.get_last_lr() == sched_a.get_last_lr()


def test_rng_restore_gives_identical_numbers(tmp_path: Path) -> None:
    model, opt, sched = make(0)
    save(tmp_path, 1, model, opt, sched)
    expected = (random.random(), np.random.rand(3).tolist(), torch.rand(3).tolist())
    np.random.randn()  # leaves numpy's cached gaussian state set: it must round-trip too
    random.seed(5), np.random.seed(5), torch.manual_seed(5)
    load_checkpoint(tmp_path / "checkpoints" / "step_00000001", model=model)
    assert (random.random(), np.random.rand(3).tolist(), torch.rand(3).tolist()) == expected


def test_keep_last_k(tmp_path: Path) -> None:
    model, opt, sched = make(0)
    for step in (2, 4, 6, 8):
        save(tmp_path, step, model, opt, sched, keep_last=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000006", "step_00000008"]
    # Saving a step that already exists replaces it and stays valid.
    save(tmp_path, 8, model, opt, sched, keep_last=2)
    assert latest_checkpoint(tmp_path).name == "step_00000008"
    with pytest.raises(ValueError, match="keep_last"):
        prune_checkpoints(tmp_path, 0)


def test_partial_and_corrupt_dirs_are_ignored(tmp_path: Path) -> None:
    model, opt, sched = make(0)
    good = save(tmp_path, 1, model, opt, sched)
    root = good.parent
    # 1) a temp dir with a full set of files and even a marker, but never renamed
    save(tmp_path, 2, model, opt, sched).rename(root / ".tmp-step_00000002-1-abc")
    # 2) a step dir whose marker is missing (crafted by hand / copied halfway)
    third = save(tmp_path, 3, model, opt, sched)
    (third / MARKER).unlink()
    # 3) a step dir with a truncated weight file (sizes and checksums no longer match)
    fourth = save(tmp_path, 4, model, opt, sched)
    with (fourth / "model.safetensors").open("r+b") as fh:
        fh.truncate(10)
    # 4) a step dir with the right size but flipped bytes (only the checksum catches it)
    fifth = save(tmp_path, 5, model, opt, sched)
    raw = bytearray((fifth / "optimizer.pt").read_bytes())
    raw[-20] ^= 0xFF
    (fifth / "optimizer.pt").write_bytes(bytes(raw))
    assert verify_checkpoint(fifth, deep=False) and not verify_checkpoint(fifth)
    with pytest.warns(UserWarning, match="skipping invalid checkpoint"):
        assert latest_checkpoint(tmp_path) == good
    with pytest.raises(ValueError, match="not a complete checkpoint"):
        load_checkpoint(third, model=model)
    assert latest_checkpoint(tmp_path / "nowhere") is None


KILLER = """
import importlib.util, os, signal
import reasonrl.runtime.checkpoint as ckpt

spec = importlib.util.spec_from_file_location("t_ckpt", {this!r})
helpers = importlib.util.module_from_spec(spec)
spec.loader.exec_module(helpers)

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

setattr(ckpt, {where!r}, die)
model, opt, sched = helpers.make(0)
helpers.save({run!r}, 7, model, opt, sched)
"""


def test_sigkill_mid_save_leaves_previous_checkpoint(tmp_path: Path) -> None:
    # Kill the saving process (SIGKILL: no cleanup runs) while writing files, before the
    # manifest, and just before the rename; the three runs go in parallel to save wall time.
    model, opt, sched = make(0)
    procs = {}
    for where in ("_torch_save", "_write_manifest", "_publish"):
        run = tmp_path / where
        save(run, 5, model, opt, sched)
        code = KILLER.format(this=str(Path(__file__)), where=where, run=str(run))
        procs[run] = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE)
    for run, proc in procs.items():
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == -signal.SIGKILL, err.decode()
        leftovers = [p.name for p in (run / "checkpoints").iterdir()]
        assert any(name.startswith(".tmp-step_00000007") for name in leftovers)  # died mid-save
        assert latest_checkpoint(run) == run / "checkpoints" / "step_00000005"
        # The next save cleans the debris up.
        save(run, 6, model, opt, sched, keep_last=2)
        names = sorted(p.name for p in (run / "checkpoints").iterdir())
        assert names == ["step_00000005", "step_00000006"]
