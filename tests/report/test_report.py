"""HTML report: content from each run file, escaping, sample selection, CLI, headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from reasonrl import cli
from reasonrl.report.html import eval_tables
from reasonrl.report.plots import ema, group_by_prefix, series
from reasonrl.report.report import select_samples, write_report
from tests.report.fake_run import make_fake_run


@pytest.fixture(scope="module")
def fake_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = make_fake_run(tmp_path_factory.mktemp("runs") / "fake")
    write_report(run)
    return run


def test_report_sections(fake_report: Path) -> None:
    page = (fake_report / "report" / "index.html").read_text()
    for anchor in ("summary", "curves", "eval", "rollouts", "config"):
        assert f'<section id="{anchor}">' in page
    images = re.findall(r'src="img/([^"]+)"', page)
    assert images and all((fake_report / "report" / "img" / name).is_file() for name in images)
    assert {"curves_reward.png", "curves_eval.png", "curves_actor.png"} <= set(images)
    assert "run_name: fake" in page  # the resolved config
    assert page.count('<details class="card"') == 72  # 6 logged steps x 3 groups x 4, all kept
    assert "per-step correctness" in page and 'title="wrong_value"' in page


def test_eval_table_values() -> None:
    data = {"before": {"3": {"pass@1": 0.25}}, "after": {"3": {"pass@1": 0.5}}, "meta": {"k": 8}}
    table = eval_tables("eval.json", data)
    # before 0.25, after 0.5 -> change +0.25, rendered positive
    assert '<td>0.25</td><td>0.5</td><td class="pos">+0.25</td>' in table
    assert "after − before" in table and "{&quot;k&quot;: 8}" in table


def test_user_text_is_escaped(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    row = {"step": 1, "prompt": "<script>alert(1)</script>", "completion": "a & b", "reward": 0.0}
    (run / "samples.jsonl").write_text(json.dumps(row) + "\n{torn")
    page = write_report(run).read_text()
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page
    assert "a &amp; b" in page
    assert "No metrics.jsonl rows yet" in page and "No eval*.json files" in page
    assert not (run / "report" / "img").exists()  # nothing to plot: matplotlib not needed


def test_select_samples_spreads_steps() -> None:
    rows = [{"step": s, "group": g} for s in range(1, 21) for g in (1, 0)]
    chosen = select_samples(rows, max_samples=8, max_steps=4)
    # 20 steps -> picks at indices round(i * 19 / 3) = 0, 6, 13, 19 -> steps 1, 7, 14, 20;
    # 8 rows / 4 steps = 2 per step, group 0 first.
    assert [(r["step"], r["group"]) for r in chosen] == [
        (1, 0), (1, 1), (7, 0), (7, 1), (14, 0), (14, 1), (20, 0), (20, 1),
    ]  # fmt: skip


def test_plot_helpers() -> None:
    rows = [{"step": 1, "a/x": 1.0, "b": None}, {"step": 2, "a/x": 3.0, "flag": True}, {"x": 1}]
    assert series(rows) == {"a/x": ([1, 2], [1.0, 3.0])}
    assert group_by_prefix(["perf/s", "reward/m", "zz/q", "plain"]) == [
        ("reward", ["reward/m"]),
        ("perf", ["perf/s"]),
        ("other", ["plain"]),
        ("zz", ["zz/q"]),
    ]
    assert ema([0.0, 1.0, 1.0], alpha=0.5) == [0.0, 0.5, 0.75]


def test_cli_report(fake_report: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run, out = tmp_path / "run", tmp_path / "alt"
    run.mkdir()
    shutil.copy(fake_report / "samples.jsonl", run)  # no metrics: skips the slow plotting
    assert cli.main(["report", str(run), "--out", str(out), "--samples", "5"]) == 0
    assert capsys.readouterr().out.strip() == str(out / "index.html")
    assert (out / "index.html").read_text().count('<details class="card"') == 5


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def headless(*args: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory() as profile:
        flags = [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run",
            "--hide-scrollbars", f"--user-data-dir={profile}",
        ]  # fmt: skip
        return subprocess.run(
            [chromium(), *flags, *args], capture_output=True, text=True, timeout=120
        )


@pytest.mark.slow
def test_renders_in_headless_chromium(fake_report: Path, tmp_path: Path) -> None:
    if chromium() is None:
        pytest.fail("needs the Debian `chromium` package: apt-get install -y chromium")
    url = (fake_report / "report" / "index.html").resolve().as_uri()
    dom = headless("--dump-dom", url)
    assert dom.returncode == 0, dom.stderr
    assert dom.stdout.count('class="card"') == 72 and "Learning curves" in dom.stdout
    shot = Path(os.environ.get("REASONRL_REPORT_SHOT", tmp_path / "report.png"))
    result = headless(f"--screenshot={shot}", "--window-size=1280,1600", url)
    assert result.returncode == 0, result.stderr
    from matplotlib.image import imread

    pixels = imread(shot)
    assert pixels.shape[:2] == (1600, 1280)
    assert pixels.std() > 0.05  # not a blank page: text, tables and curves were drawn
