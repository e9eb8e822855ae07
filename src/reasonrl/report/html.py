"""HTML pieces of the run report: one static page, inline CSS and a few lines of vanilla JS.

Everything user-provided (prompts, completions, config text) goes through `html.escape`.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from typing import Any

# Typed reward fields of a samples.jsonl row, shown as badges on each rollout card.
HEADLINE_FIELDS = ("outcome", "verified", "parsed_answer")
# Reward info keys shown first in the breakdown (the synthetic task's process reward).
HEADLINE_INFO = ("process", "process_acc", "penalty")

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:0;color:#1b1f24;
 background:#f6f8fa}
header{background:#24292f;color:#fff;padding:14px 24px}
header h1{margin:0;font-size:20px} header .sub{opacity:.75;font-size:13px}
nav{position:sticky;top:0;background:#fff;border-bottom:1px solid #d0d7de;padding:8px 24px;
 z-index:2} nav a{margin-right:16px;color:#0969da;text-decoration:none}
main{padding:8px 24px 40px;max-width:1300px}
section{background:#fff;border:1px solid #d0d7de;border-radius:6px;margin:16px 0;padding:12px 18px}
h2{font-size:17px;margin:4px 0 10px} h3{font-size:15px;margin:14px 0 6px}
table{border-collapse:collapse;font-size:13px;margin:6px 0}
th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:right}
th{background:#f6f8fa} td:first-child,th:first-child{text-align:left}
tr.overall td{font-weight:600;background:#f6f8fa}
.pos{color:#1a7f37;font-weight:600} .neg{color:#cf222e;font-weight:600}
small.pos,small.neg{font-weight:400;margin-left:4px}
img.curve{max-width:100%;border:1px solid #eaeef2;margin:6px 0}
pre{white-space:pre-wrap;word-break:break-word;background:#f6f8fa;padding:8px;border-radius:4px;
 margin:4px 0;font-size:12.5px}
.group{border:1px solid #d0d7de;border-radius:6px;margin:8px 0}
.group>summary{cursor:pointer;padding:6px 10px;background:#f6f8fa}
.group .body{padding:6px 12px}
.cols{display:grid;grid-template-columns:minmax(0,3fr) minmax(0,2fr);gap:12px}
.comp{border-top:1px solid #eaeef2;padding:6px 0}
.gold{position:sticky;top:44px;align-self:start}
.badge{display:inline-block;border-radius:10px;padding:0 8px;margin-right:6px;font-size:12px;
 background:#eaeef2} .badge.good{background:#dafbe1;color:#116329}
.badge.bad{background:#ffebe9;color:#a40e26}
.steps span{display:inline-block;margin:2px;padding:1px 6px;border-radius:4px;font-size:12px}
.ok{background:#dafbe1} .wrong{background:#ffebe9} .unk{background:#eaeef2}
.extra{background:#fff8c5} .missing{background:#fff;border:1px dashed #cf222e}
pre mark{border-radius:3px;padding:0 1px;color:inherit}
.controls{margin:6px 0 10px} .controls *{margin-right:10px}
.muted{color:#57606a;font-size:12px} .note{color:#57606a;font-size:12.5px;margin:4px 0}
"""

FILTER_JS = """
function applyFilters(){
  const step=document.getElementById('f-step').value, rew=document.getElementById('f-reward').value;
  const q=document.getElementById('f-text').value.toLowerCase(); let shown=0;
  for(const c of document.querySelectorAll('details.group')){
    const r=parseFloat(c.dataset.reward);
    let ok=(step==='all'||c.dataset.step===step);
    if(rew==='pos') ok=ok&&r>0; if(rew==='zero') ok=ok&&!(r>0);
    if(q) ok=ok&&c.textContent.toLowerCase().includes(q);
    c.style.display=ok?'':'none'; if(ok) shown++;
  }
  document.getElementById('f-count').textContent=shown+' prompts shown';
}
"""

# What the evaluation's metrics mean, printed under the table.
EVAL_LEGEND = (
    "pass@1: share of samples whose final answer is right; pass@k: chance that at least one of "
    "k samples is right (unbiased estimator); maj@k: the majority answer of k samples is right; "
    "strict_pass@k: as pass@k, counting a sample only when its answer is right and every step "
    "of its trace is verified (synthetic task)."
)
CHANGE_NOTE = " Small numbers after a value: the change since the first evaluation."


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def fmt(value: Any) -> str:
    """Numbers to 4 significant digits, None to an em dash, everything else as text."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return esc(value)


def page(title: str, subtitle: str, sections: Sequence[tuple[str, str, str]]) -> str:
    """The whole document; sections are (anchor id, heading, inner html)."""
    nav = "".join(f'<a href="#{sid}">{esc(head)}</a>' for sid, head, _ in sections)
    body = "".join(
        f'<section id="{sid}"><h2>{esc(head)}</h2>{inner}</section>'
        for sid, head, inner in sections
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        f'<header><h1>{esc(title)}</h1><div class="sub">{esc(subtitle)}</div></header>'
        f"<nav>{nav}</nav><main>{body}</main><script>{FILTER_JS}</script></body></html>\n"
    )


def summary_table(pairs: Sequence[tuple[str, Any]]) -> str:
    rows = "".join(f"<tr><td>{esc(k)}</td><td>{fmt(v)}</td></tr>" for k, v in pairs)
    return f"<table>{rows}</table>"


def delta(a: Any, b: Any, *, colour: bool = True) -> str:
    """A table cell with b - a, green when it rose and red when it fell (if `colour`)."""
    if not (isinstance(a, int | float) and isinstance(b, int | float)):
        return "<td>—</td>"
    d = b - a
    cls = ("pos" if d > 0 else "neg" if d < 0 else "") if colour else ""
    return f'<td class="{cls}">{d:+.4g}</td>'


def window_table(
    keys: Sequence[str],
    first_steps: tuple[int, int],
    last_steps: tuple[int, int],
    first: Mapping[str, float],
    last: Mapping[str, float],
) -> str:
    """Metric | mean over the first window | over the last window | change."""

    def span(lo: int, hi: int) -> str:
        return f"step {lo}" if lo == hi else f"steps {lo}–{hi}"

    out = [
        '<p class="note">Mean over the first and the last 10% of the training steps '
        "(at least one step each): one step alone is mostly sampling noise.</p><table><tr>"
        f"<th>metric</th><th>first 10% ({span(*first_steps)})</th>"
        f"<th>last 10% ({span(*last_steps)})</th><th>change</th></tr>"
    ]
    for key in keys:
        a, b = first.get(key), last.get(key)
        colour = key.startswith("reward/")  # the one group with a "higher is better" direction
        cells = f"<td>{fmt(a)}</td><td>{fmt(b)}</td>{delta(a, b, colour=colour)}"
        out.append(f"<tr><td>{esc(key)}</td>{cells}</tr>")
    return "".join(out) + "</table>"


def constant_line(constant: Mapping[str, float]) -> str:
    """One line naming the series that never changed, with their value."""
    if not constant:
        return ""
    items = ", ".join(f"{esc(k)}={fmt(v)}" for k, v in sorted(constant.items()))
    return f'<p class="note"><b>constant</b> (not drawn): {items}</p>'


def curves(
    images: Sequence[tuple[str, str]], constant: Mapping[str, float], *, logged: bool
) -> str:
    """The training curves: a heading and a figure per metric group, then the constant line."""
    if not logged:
        return '<p class="muted">No metrics.jsonl rows yet.</p>'
    figures = "".join(
        f"<h3>{esc(prefix)}/</h3>"
        f'<img class="curve" src="img/{esc(name)}" alt="{esc(prefix)} curves">'
        for prefix, name in images
    )
    return (figures or '<p class="muted">No series that changes.</p>') + constant_line(constant)


def settings_line(meta: Mapping[str, Any]) -> str:
    """An eval's settings as `key=value` pairs on one muted line (nested values as JSON)."""
    items = []
    for key, value in meta.items():
        if isinstance(value, Mapping):
            items += [f"{k}={v}" for k, v in value.items() if not isinstance(v, Mapping | list)]
        elif not isinstance(value, list) or len(value) <= 12:
            text = json.dumps(value) if isinstance(value, list) else value
            items.append(f"{key}={text}")
    return f'<p class="muted">{esc(" · ".join(str(i) for i in items))}</p>'


def eval_section(
    image: str | None,
    points: Sequence[tuple[int, Mapping[str, Any]]],
    meta: Mapping[str, Any],
    *,
    from_files: bool,
) -> str:
    """The heading, settings and curve figure of a run's evaluations over steps."""
    steps = [s for s, _ in points]
    where = "eval_step*.json" if from_files else "the eval/ keys of metrics.jsonl"
    out = [
        f"<h3>over training ({len(steps)} evaluations, steps {', '.join(map(str, steps))})</h3>",
        f'<p class="note">Held-out problems, scored at each evaluation step (from {esc(where)}).'
        "</p>",
    ]
    if meta:
        out.append(settings_line({k: v for k, v in meta.items() if k != "step"}))
    if image:
        out.append(f'<img class="curve" src="img/{esc(image)}" alt="eval curves">')
    return "".join(out)


def eval_table(
    first: Mapping[str, Mapping[str, float]],
    latest: Mapping[str, Mapping[str, float]],
    first_label: str,
    latest_label: str,
) -> str:
    """One op x metric table: the latest value of each (group, metric), with the change since
    the first evaluation beside it when there are two."""
    from reasonrl.report.plots import AT_K, eval_metric_order, group_sort_key

    groups = sorted(latest, key=group_sort_key)
    metrics = eval_metric_order(sorted({m for g in latest.values() for m in g}))
    compare = first_label != latest_label
    caption = f"at {latest_label}" + (f" (change since {first_label})" if compare else "")
    head = "".join(f"<th>{esc(m)}</th>" for m in metrics)
    rows = []
    for group in groups:
        cells = []
        for metric in metrics:
            value = latest[group].get(metric)
            before = first.get(group, {}).get(metric)
            cell = fmt(value)
            if compare and metric != "problems" and value is not None and before is not None:
                d = value - before
                # green/red only where higher is better (pass@k, maj@k), not for lengths
                better = AT_K.match(metric) or "pass" in metric
                cls = ("pos" if d > 0 else "neg" if d < 0 else "muted") if better else "muted"
                cell += f' <small class="{cls}">{d:+.3g}</small>'
            cells.append(f"<td>{cell}</td>")
        label = "overall" if group == "overall" else f"op {group}" if group.isdigit() else group
        cls = ' class="overall"' if group == "overall" else ""
        rows.append(f"<tr{cls}><td>{esc(label)}</td>{''.join(cells)}</tr>")
    return (
        f'<p class="note">{esc(caption)}</p>'
        f"<table><tr><th>group</th>{head}</tr>{''.join(rows)}</table>"
        f'<p class="muted">{esc(EVAL_LEGEND + (CHANGE_NOTE if compare else ""))}</p>'
    )


def op_reward(image: str | None, by_op: Mapping[str, Mapping[int, Sequence[float]]]) -> str:
    """Per-op training reward of the logged rollouts: a figure and a table (first vs last
    logged step of each op)."""
    from reasonrl.report.plots import group_sort_key

    rows = []
    for op in sorted(by_op, key=group_sort_key):
        steps = sorted(by_op[op])
        n = sum(len(v) for v in by_op[op].values())
        mean = sum(sum(v) for v in by_op[op].values()) / max(n, 1)
        a, b = (sum(by_op[op][s]) / len(by_op[op][s]) for s in (steps[0], steps[-1]))
        rows.append(
            f"<tr><td>op {esc(op)}</td><td>{n}</td><td>{fmt(mean)}</td>"
            f"<td>{fmt(a)} (step {steps[0]})</td><td>{fmt(b)} (step {steps[-1]})</td></tr>"
        )
    img = f'<img class="curve" src="img/{esc(image)}" alt="reward by op">' if image else ""
    return (
        "<h3>training reward by op</h3>"
        '<p class="note">Mean reward of the logged rollouts (samples.jsonl) of each op.</p>'
        f"{img}<table><tr><th>op</th><th>rollouts</th><th>mean reward</th>"
        f"<th>first logged step</th><th>last logged step</th></tr>{''.join(rows)}</table>"
    )


def prompt_stats(data: Mapping[str, Any]) -> str:
    """The sampler's per-prompt statistics (prompt_stats.json of the latest checkpoint): one
    row per difficulty bucket and the count of tracked prompts by success band."""
    from reasonrl.report.plots import group_sort_key

    buckets = data.get("buckets") or {}
    rows = "".join(
        f"<tr><td>{esc(name)}</td><td>{esc(b.get('attempts'))}</td><td>{fmt(b.get('success'))}"
        f"</td><td>{fmt(b.get('var'))}</td><td>{esc(b.get('last'))}</td></tr>"
        for name, b in sorted(buckets.items(), key=lambda kv: group_sort_key(kv[0]))
    )
    bands = data.get("bands") or {}
    line = ", ".join(f"{esc(k)} {esc(v)}" for k, v in bands.items())
    return (
        f"<h3>prompt statistics (sampler {esc(data.get('sampler'))}, step {esc(data.get('step'))})"
        f'</h3><p class="note">Running raw-reward success per difficulty bucket; '
        f"{esc(data.get('prompts'))} prompts tracked: {line}.</p>"
        "<table><tr><th>bucket</th><th>attempts</th><th>success</th><th>variance</th>"
        f"<th>last step</th></tr>{rows}</table>"
    )


STEP_STATUS_CLASS = {"ok": "ok", "extra": "extra", "missing": "missing"}


def _step_items(steps: Any) -> list[tuple[str, str, str]]:
    """(label, css class, tooltip) of each step: a list of {var|text|name, status|correct}
    dicts, or a {label: status} mapping; status "ok"/True/1 is right."""
    items = steps.items() if isinstance(steps, Mapping) else enumerate(steps)
    out = []
    for key, item in items:
        if isinstance(item, Mapping):
            label = item.get("var", item.get("text", item.get("name", key)))
            status = item.get("status", item.get("correct"))
            name = item.get("name")
        else:
            label, status, name = key, item, None
        if status is True or status == 1 or status == "ok":
            cls = "ok"
        elif isinstance(status, str):
            cls = STEP_STATUS_CLASS.get(status, "wrong")
        else:
            cls = "wrong" if status is False or status == 0 else "unk"
        tip = f"{name}: {status}" if name else str(status)
        shown = f"{label}" if cls == "ok" else f"{label} {status}"
        out.append((shown, cls, tip))
    return out


def _steps_html(steps: Any) -> str:
    spans = "".join(
        f'<span class="{cls}" title="{esc(tip)}">{esc(label)}</span>'
        for label, cls, tip in _step_items(steps)
    )
    return f'<div class="steps">{spans}</div>'


_MARK = {"ok": "#dafbe1", "wrong": "#ffebe9", "extra": "#fff8c5"}


def highlight_trace(text: str, steps: Any) -> str:
    """The completion, escaped, with the sentence of each defined quantity ("Define <name> as
    ...") marked green (right), red (wrong value or parents) or yellow (not in the gold graph)."""
    if not isinstance(steps, list):
        return esc(text)
    marks: list[tuple[int, str]] = []
    for item in steps:
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            continue
        status = item.get("status")
        if status == "missing":
            continue
        pos = text.find(f"Define {item['name']} as")
        if pos >= 0:
            cls = "ok" if status == "ok" else "extra" if status == "extra" else "wrong"
            marks.append((pos, cls))
    if not marks:
        return esc(text)
    marks.sort()
    ends = []
    for start, _ in marks:
        # a step's sentence ends where the next definition, the Answer: line or the solution ends
        stops = (text.find(word, start + 1) for word in ("Define ", "Answer:", "</solution>"))
        ends.append(min((i for i in stops if i >= 0), default=len(text)))
    out, pos = [], 0
    for (start, cls), end in zip(marks, ends, strict=True):
        if start < pos:
            continue  # a name found twice: keep the first sentence
        out.append(esc(text[pos:start]))
        out.append(f'<mark style="background:{_MARK[cls]}">{esc(text[start:end])}</mark>')
        pos = end
    out.append(esc(text[pos:]))
    return "".join(out)


def _is_num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def completion_html(row: Mapping[str, Any]) -> str:
    """One completion of a prompt: reward, advantage (if logged), finish reason, tokens, typed
    reward fields, per-step correctness and the text with its steps highlighted."""
    reward = row.get("reward")
    info = row.get("info") if isinstance(row.get("info"), Mapping) else {}
    good = _is_num(reward) and reward > 0
    badges = [f'<span class="badge {"good" if good else "bad"}">reward {fmt(reward)}</span>']
    if _is_num(row.get("advantage")):
        badges.append(f'<span class="badge">advantage {row["advantage"]:+.3g}</span>')
    finish = row.get("finish_reason")
    if finish is not None:
        cls = " bad" if finish == "length" else ""
        badges.append(f'<span class="badge{cls}">finish {esc(finish)}</span>')
    for key in HEADLINE_FIELDS:
        if row.get(key) is not None:
            badges.append(f'<span class="badge">{esc(key)} {fmt(row[key])}</span>')
    for key in HEADLINE_INFO:
        if key in info and not isinstance(info[key], list | Mapping):
            badges.append(f'<span class="badge">{esc(key)} {fmt(info[key])}</span>')
    badges.append(f'<span class="muted">{esc(row.get("tokens", "?"))} tokens</span>')
    others = [
        (k, v)
        for k, v in info.items()
        if k not in HEADLINE_INFO and not isinstance(v, list | Mapping) and v not in (0, None)
    ]
    steps = info.get("steps", info.get("nodes"))
    body = [f"<div>{''.join(badges)}</div>"]
    if others:
        text = " · ".join(f"{k}={fmt(v)}" for k, v in sorted(others))
        body.append(f'<div class="muted">{text}</div>')
    if isinstance(steps, list | Mapping) and steps:
        body.append(_steps_html(steps))
    body.append(f"<pre>{highlight_trace(str(row.get('completion', '')), steps)}</pre>")
    return f'<div class="comp">{"".join(body)}</div>'


def _gold_of(row: Mapping[str, Any]) -> tuple[Any, Any]:
    meta = row.get("meta") if isinstance(row.get("meta"), Mapping) else {}
    trace = row.get("gold_trace", meta.get("trace"))
    return row.get("answer"), trace


def group_card(step: Any, rows: Sequence[Mapping[str, Any]], *, open_: bool = False) -> str:
    """A collapsible card per prompt: the prompt once, its completions, the gold beside them."""
    first = rows[0]
    rewards = [r.get("reward") for r in rows if _is_num(r.get("reward"))]
    right = sum(1 for r in rows if r.get("outcome") is True)
    best = max(rewards, default=0.0)
    meta = first.get("meta") if isinstance(first.get("meta"), Mapping) else {}
    op = first.get("op", meta.get("op"))
    badges = [f'<span class="badge">step {esc(step)}</span>']
    if op is not None:
        badges.append(f'<span class="badge">op {esc(op)}</span>')
    if rewards:
        mean = sum(rewards) / len(rewards)
        cls = "good" if best > 0 else "bad"
        badges.append(f'<span class="badge {cls}">mean reward {mean:.3g}</span>')
        if len(set(rewards)) == 1:
            badges.append('<span class="badge">no spread</span>')
    if any(r.get("outcome") is not None for r in rows):
        badges.append(f'<span class="badge">{right}/{len(rows)} answers right</span>')
    head = f"prompt {first.get('group', '—')} · {first.get('id', '')} · {len(rows)} completions"
    gold_answer, gold_trace = _gold_of(first)
    gold = [f'<div class="muted">gold answer</div><pre>{esc(gold_answer)}</pre>']
    if isinstance(gold_trace, str) and gold_trace:
        gold.append(f'<div class="muted">gold trace</div><pre>{esc(gold_trace)}</pre>')
    else:
        gold.append('<p class="muted">No gold trace in samples.jsonl.</p>')
    prompt = f'<div class="muted">prompt</div><pre>{esc(first.get("prompt", ""))}</pre>'
    comps = "".join(completion_html(r) for r in rows)
    return (
        f'<details class="group"{" open" if open_ else ""} data-step="{esc(step)}"'
        f' data-reward="{best}"><summary>{"".join(badges)}<span class=muted>{esc(head)}</span>'
        f'</summary><div class="body">{prompt}<div class="cols"><div>{comps}</div>'
        f'<div class="gold">{"".join(gold)}</div></div></div></details>'
    )


def rollout_browser(
    groups: Sequence[tuple[Any, Sequence[Mapping[str, Any]]]], shown: int, total: int
) -> str:
    """The rollouts grouped by prompt, newest step first, with filters; one prompt starts open
    (see below)."""
    if not groups:
        return '<p class="muted">No samples.jsonl rows yet.</p>'
    rows = [r for _, members in groups for r in members]
    steps = sorted({s for s, _ in groups if isinstance(s, int)}, reverse=True)
    options = '<option value="all">all steps</option>' + "".join(
        f'<option value="{s}">step {s}</option>' for s in steps
    )
    notes = [f"{shown} of {total} logged rollouts, {len(groups)} prompts, newest step first."]
    if not any(_is_num(r.get("advantage")) for r in rows):
        notes.append("Advantages are not logged in samples.jsonl, so none is shown.")
    if any(isinstance(r.get("info"), Mapping) and r["info"].get("steps") for r in rows):
        notes.append(
            "Steps of a trace: green = right value and parents, red = wrong value or parents, "
            "yellow = a quantity the gold trace does not define, dashed = a gold step left out."
        )
    controls = (
        '<div class="controls">'
        f'<select id="f-step" onchange="applyFilters()">{options}</select>'
        '<select id="f-reward" onchange="applyFilters()"><option value="all">any reward</option>'
        '<option value="pos">some reward &gt; 0</option><option value="zero">all rewards 0'
        '</option></select><input id="f-text" placeholder="search text" '
        f'oninput="applyFilters()"><span id="f-count" class="muted">{len(groups)} prompts shown'
        f'</span></div><p class="note">{esc(" ".join(notes))}</p>'
    )
    order = sorted(
        range(len(groups)),
        key=lambda i: (-(groups[i][0] if isinstance(groups[i][0], int) else -1), i),
    )
    # Open the newest prompt whose completions differ in reward (the ones the update learns
    # from), else the newest prompt.
    spread = [i for i in order if len({_reward_of(r) for r in groups[i][1]}) > 1]
    opened = spread[0] if spread else order[0]
    return controls + "".join(group_card(*groups[i], open_=i == opened) for i in order)


def _reward_of(row: Mapping[str, Any]) -> float | None:
    reward = row.get("reward")
    return float(reward) if _is_num(reward) else None
