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
from reasonrl.report.html import eval_table, highlight_trace
from reasonrl.report.plots import (
    ema,
    eval_metric_order,
    group_by_prefix,
    series,
    split_constant,
)
from reasonrl.report.report import (
    eval_points,
    group_rollouts,
    select_samples,
    window_summary,
    write_report,
)
from reasonrl.rl.evaluation import write_summary
from tests.report.fake_run import GOOD, PROMPT, make_fake_run


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
    # eval/ keys are drawn in the Evaluation section, not as a training-curve group
    assert {"curves_reward.png", "curves_actor.png", "eval_curves.png"} <= set(images)
    assert "curves_eval.png" not in images
    assert "run_name: fake" in page  # the resolved config
    # 6 logged steps x 3 prompts, 4 completions each, all kept
    assert page.count('<details class="group"') == 18 and page.count('class="comp"') == 72
    assert 'title="adult bears in Zoo A: wrong_value"' in page  # per-step correctness


def test_eval_curves_and_table_from_step_files(tmp_path: Path) -> None:
    """A run with trainer.eval_every: eval_step{N}.json (rl/evaluation.py's format) give one
    curve figure over the steps and one op x metric table; eval.json is not tabled again."""
    run = tmp_path / "run"
    run.mkdir()
    for step, p in ((0, 0.2), (4, 0.3), (8, 0.5)):
        metrics = {"problems": 2.0, "pass@1": p, "pass@2": p + 0.1, "pass@4": p + 0.2,
                   "maj@1": p, "maj@4": p + 0.05, "strict_pass@1": p / 2,
                   "strict_pass@4": p, "mean_tokens": 40.0}  # fmt: skip
        result = {"step": step, "source": "synthetic held-out split",
                  "settings": {"samples_per_problem": 4, "temperature": 1.0},
                  "overall": {**metrics, "problems": 4.0},
                  "per_op": {"3": metrics, "4": {**metrics, "pass@1": p / 4}}}  # fmt: skip
        (run / f"eval_step{step}.json").write_text(json.dumps(result))
    assert write_summary(run) == run / "eval.json"  # as the trainer leaves it
    page = write_report(run).read_text()
    assert (run / "report" / "img" / "eval_curves.png").is_file()
    assert "3 evaluations, steps 0, 4, 8" in page
    assert page.count("<th>group</th>") == 1  # one table: eval.json is the same data
    head = re.search(r"<tr><th>group</th>(.*?)</tr>", page)[1]
    assert re.findall(r"<th>(.*?)</th>", head) == [
        "problems", "pass@1", "pass@4", "maj@4", "strict_pass@1", "strict_pass@4", "mean_tokens",
    ]  # fmt: skip
    # op 3 at step 8: pass@1 0.5, up 0.3 since step 0; the overall row comes last
    assert '<tr><td>op 3</td><td>2</td><td>0.5 <small class="pos">+0.3</small></td>' in page
    rows = re.findall(r"<tr(?: class=\"overall\")?><td>([^<]+)</td><td>", page)
    assert rows[-3:] == ["op 3", "op 4", "overall"]
    assert "at step 8 (change since step 0)" in page


def test_eval_points_from_metrics_keys() -> None:
    """Without eval_step files, the eval/ keys of metrics.jsonl give the points."""
    rows = [
        {"step": 0, "eval/pass@1": 0.1, "eval/op3/pass@1": 0.2},
        {"step": 1, "reward/mean": 0.5},
        {"step": 2, "eval/pass@1": 0.4, "eval/op3/pass@1": 0.6, "eval/op3/x": None},
    ]
    assert eval_points([], rows) == [
        (0, {"overall": {"pass@1": 0.1}, "3": {"pass@1": 0.2}}),
        (2, {"overall": {"pass@1": 0.4}, "3": {"pass@1": 0.6}}),
    ]


def test_eval_table_values() -> None:
    first = {"3": {"pass@1": 0.25}, "overall": {"pass@1": 0.3}}
    latest = {"3": {"pass@1": 0.5}, "overall": {"pass@1": 0.25}}
    table = eval_table(first, latest, "before", "after")
    # before 0.25, after 0.5 -> change +0.25, rendered positive; overall fell -> negative
    assert '<td>op 3</td><td>0.5 <small class="pos">+0.25</small></td>' in table
    assert '<td>overall</td><td>0.25 <small class="neg">-0.05</small></td>' in table
    assert "at after (change since before)" in table
    single = eval_table(latest, latest, "result", "result")
    assert "<small" not in single and "change since" not in single and "at result" in single


def test_eval_metric_order() -> None:
    found = ["pass@1", "pass@2", "pass@8", "maj@1", "maj@8", "strict_pass@2", "strict_pass@8",
             "strict_pass@1", "problems", "truncated", "outcome_pass@1"]  # fmt: skip
    assert eval_metric_order(found) == [
        "problems", "pass@1", "pass@8", "maj@8", "strict_pass@1", "strict_pass@8",
        "outcome_pass@1", "truncated",
    ]  # fmt: skip


def test_constant_series_hidden(fake_report: Path, tmp_path: Path) -> None:
    moving, constant = split_constant({"a": ([1, 2], [0.0, 1.0]), "b": ([1, 2], [3.0, 3.0])})
    assert list(moving) == ["a"] and constant == {"b": 3.0}
    page = (fake_report / "report" / "index.html").read_text()
    assert "<b>constant</b> (not drawn): actor/clipfrac=0" in page
    # a group of constants only gets no figure at all
    run = tmp_path / "run"
    run.mkdir()
    rows = [{"step": s, "reward/mean": s / 10, "data/skipped": 0.0} for s in range(1, 4)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    page = write_report(run).read_text()
    assert "data/skipped=0" in page and "curves_data" not in page
    assert not (run / "report" / "img" / "curves_data.png").exists()


def test_each_group_once(tmp_path: Path) -> None:
    """20 actor/ series: one heading and one figure (it was split in two, both `actor/`)."""
    run = tmp_path / "run"
    run.mkdir()
    rows = [{"step": s, **{f"actor/m{i}": s * (i + 1.0) for i in range(20)}} for s in (1, 2)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    page = write_report(run).read_text()
    assert page.count("<h3>actor/</h3>") == 1
    assert re.findall(r'src="img/(curves_actor[^"]*)"', page) == ["curves_actor.png"]


def test_window_summary(tmp_path: Path) -> None:
    # 20 training steps -> windows of ceil(0.1 * 20) = 2 steps; step 0 (eval only) is not one
    rows = [{"step": 0, "eval/pass@1": 0.1}] + [{"step": s, "x": float(s)} for s in range(1, 21)]
    first, last, a, b = window_summary(rows, ["x"])
    assert (first, last) == ((1, 2), (19, 20)) and a == {"x": 1.5} and b == {"x": 19.5}
    # 3 steps -> one step each; a key missing from a window has no mean there
    rows = [{"step": 1, "x": 1.0}, {"step": 2, "x": 5.0, "y": 2.0}, {"step": 3, "x": 3.0}]
    assert window_summary(rows, ["x", "y"]) == ((1, 1), (3, 3), {"x": 1.0}, {"x": 3.0})
    assert window_summary([{"step": 0, "eval/pass@1": 0.1}], ["x"]) is None
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    page = write_report(run).read_text()
    assert "first 10% (step 1)" in page and "last 10% (step 3)" in page
    assert "<td>reward/mean</td>" not in page  # only logged keys
    assert '<td>x</td><td>1</td><td>3</td><td class="">+2</td>' in page


def test_rollouts_grouped_by_prompt(fake_report: Path) -> None:
    page = (fake_report / "report" / "index.html").read_text()
    prompt = PROMPT.replace("<", "&lt;").replace(">", "&gt;")
    assert page.count(prompt) == 18  # once per (step, prompt), not once per completion
    cards = re.findall(r'<details class="group".*?</details>', page, flags=re.S)
    assert [c.count('class="comp"') for c in cards] == [4] * 18
    steps = [int(re.search(r'data-step="(\d+)"', c)[1]) for c in cards]
    assert steps == sorted(steps, reverse=True)  # newest first
    assert sum(" open data-step" in c for c in cards) == 1
    assert "finish stop" in page and "gold answer" in page
    assert "Advantages are not logged in samples.jsonl" in page  # not faked
    assert "No gold trace in samples.jsonl" in page
    assert "the samples.jsonl rows carry no op" in page
    # a right step's sentence is marked green in the completion text
    assert '<mark style="background:#dafbe1">Define adult lions in Zoo A as a' in page
    rows = [{"step": 1, "group": 0, "id": "a"}, {"step": 1, "group": 1, "id": "b"},
            {"step": 1, "group": 0, "id": "a"}, {"step": 2, "group": 0, "id": "a"}]  # fmt: skip
    assert [(s, len(m)) for s, m in group_rollouts(rows)] == [(1, 2), (1, 1), (2, 1)]


def test_rollouts_with_advantage_gold_trace_and_op(tmp_path: Path) -> None:
    """What the page shows when samples.jsonl rows carry advantage and meta (op, trace)."""
    run = tmp_path / "run"
    run.mkdir()
    rows = [
        {"step": s, "group": g, "id": f"p{g}", "prompt": f"q{g}", "answer": "5",
         "completion": "x", "reward": r, "advantage": r - 0.5, "finish_reason": "length",
         "meta": {"op": op, "trace": "Define a as a; so a = 5. Answer: 5."}}
        for s in (1, 2) for g, op in ((0, 3), (1, 4)) for r in (0.0, 1.0 if s == 2 else 0.0)
    ]  # fmt: skip
    (run / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    page = write_report(run).read_text()
    assert "advantage +0.5" in page and "advantage -0.5" in page
    assert "Advantages are not logged" not in page
    assert page.count("gold trace</div><pre>Define a as a; so a = 5. Answer: 5.</pre>") == 4
    assert '<span class="badge bad">finish length</span>' in page
    assert "training reward by op" in page and (run / "report" / "img" / "op_reward.png").exists()
    # op 3: step 1 rewards (0, 0), step 2 (0, 1) -> mean 0.25 over 4 rollouts
    assert (
        "<tr><td>op 3</td><td>4</td><td>0.25</td><td>0 (step 1)</td><td>0.5 (step 2)</td>" in page
    )


def test_highlight_trace() -> None:
    steps = [{"name": "adult lions in Zoo A", "var": "a", "status": "ok"},
             {"name": "adult bears in Zoo A", "var": "b", "status": "wrong_value"},
             {"name": "owls", "var": "o", "status": "missing"}]  # fmt: skip
    html = highlight_trace(GOOD, steps)
    assert html.startswith('<mark style="background:#dafbe1">Define adult lions in Zoo A as a ;')
    assert (
        '<mark style="background:#ffebe9">Define adult bears in Zoo A as b ; so b = a + 2' in html
    )
    assert html.endswith("&lt;/solution&gt; &lt;answer&gt; 5 &lt;/answer&gt;")  # unmarked, escaped
    assert highlight_trace("<b>", None) == "&lt;b&gt;"
    # a step the parser could not match ("adult bears" without "in Zoo A") is left unmarked
    html = highlight_trace("Define adult lions in Zoo A as a ; so a = 3 . Define b", steps)
    assert html.endswith("a = 3 . </mark>Define b")


def test_user_text_is_escaped(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    row = {"step": 1, "prompt": "<script>alert(1)</script>", "completion": "a & b", "reward": 0.0}
    (run / "samples.jsonl").write_text(json.dumps(row) + "\n{torn")
    page = write_report(run).read_text()
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page
    assert "a &amp; b" in page
    assert "No metrics.jsonl rows yet" in page and "No evaluation" in page
    assert not (run / "report" / "img").exists()  # nothing to plot: matplotlib not needed


def test_select_samples_spreads_steps() -> None:
    rows = [{"step": s, "group": g} for s in range(1, 21) for g in (1, 0)]
    chosen = select_samples(rows, max_samples=8, max_steps=4)
    # 20 steps -> picks at indices round(i * 19 / 3) = 0, 6, 13, 19 -> steps 1, 7, 14, 20;
    # 8 rows / 4 steps = 2 per step, group 0 first.
    assert [(r["step"], r["group"]) for r in chosen] == [
        (1, 0), (1, 1), (7, 0), (7, 1), (14, 0), (14, 1), (20, 0), (20, 1),
    ]  # fmt: skip
    # 3 prompts of 4 completions, 10 rows for the step: 2 whole prompts, not 2.5
    rows = [{"step": 1, "group": g, "i": i} for g in range(3) for i in range(4)]
    assert [r["group"] for r in select_samples(rows, max_samples=10)] == [0] * 4 + [1] * 4
    assert len(select_samples(rows, max_samples=3)) == 3  # one prompt cut when none fits


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
    assert (out / "index.html").read_text().count('class="comp"') == 5


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
    assert dom.stdout.count('class="comp"') == 72 and "Training curves" in dom.stdout
    shot = Path(os.environ.get("REASONRL_REPORT_SHOT", tmp_path / "report.png"))
    result = headless(f"--screenshot={shot}", "--window-size=1280,1600", url)
    assert result.returncode == 0, result.stderr
    from matplotlib.image import imread

    pixels = imread(shot)
    assert pixels.shape[:2] == (1600, 1280)
    assert pixels.std() > 0.05  # not a blank page: text, tables and curves were drawn
