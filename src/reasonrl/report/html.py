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
.pos{color:#1a7f37;font-weight:600} .neg{color:#cf222e;font-weight:600}
img.curve{max-width:100%;border:1px solid #eaeef2;margin:6px 0}
pre{white-space:pre-wrap;word-break:break-word;background:#f6f8fa;padding:8px;border-radius:4px;
 margin:4px 0;font-size:12.5px}
.card{border:1px solid #d0d7de;border-radius:6px;margin:8px 0}
.card summary{cursor:pointer;padding:6px 10px;background:#f6f8fa;list-style:none}
.card .body{padding:6px 12px}
.badge{display:inline-block;border-radius:10px;padding:0 8px;margin-right:6px;font-size:12px;
 background:#eaeef2} .badge.good{background:#dafbe1;color:#116329}
.badge.bad{background:#ffebe9;color:#a40e26}
.steps span{display:inline-block;margin:2px;padding:1px 6px;border-radius:4px;font-size:12px}
.ok{background:#dafbe1} .wrong{background:#ffebe9} .unk{background:#eaeef2}
.controls{margin:6px 0 10px} .controls *{margin-right:10px}
.muted{color:#57606a;font-size:12px}
"""

FILTER_JS = """
function applyFilters(){
  const step=document.getElementById('f-step').value, rew=document.getElementById('f-reward').value;
  const q=document.getElementById('f-text').value.toLowerCase(); let shown=0;
  for(const c of document.querySelectorAll('.card')){
    const r=parseFloat(c.dataset.reward);
    let ok=(step==='all'||c.dataset.step===step);
    if(rew==='pos') ok=ok&&r>0; if(rew==='zero') ok=ok&&!(r>0);
    if(q) ok=ok&&c.textContent.toLowerCase().includes(q);
    c.style.display=ok?'':'none'; if(ok) shown++;
  }
  document.getElementById('f-count').textContent=shown+' shown';
}
"""


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


def first_last_table(first: Mapping[str, Any], last: Mapping[str, Any], keys: Sequence[str]) -> str:
    """Metric | first step | last step | change."""
    out = ["<table><tr><th>metric</th><th>first</th><th>last</th><th>change</th></tr>"]
    for key in keys:
        a, b = first.get(key), last.get(key)
        # Only reward/eval have a "higher is better" direction worth colouring.
        colour = key.startswith(("reward/", "eval/"))
        cells = f"<td>{fmt(a)}</td><td>{fmt(b)}</td>{delta(a, b, colour=colour)}"
        out.append(f"<tr><td>{esc(key)}</td>{cells}</tr>")
    return "".join(out) + "</table>"


def delta(a: Any, b: Any, *, colour: bool = True) -> str:
    """A table cell with b - a, green when it rose and red when it fell (if `colour`)."""
    if not (isinstance(a, int | float) and isinstance(b, int | float)):
        return "<td>—</td>"
    d = b - a
    cls = ("pos" if d > 0 else "neg" if d < 0 else "") if colour else ""
    return f'<td class="{cls}">{d:+.4g}</td>'


def curves(images: Sequence[tuple[str, str]]) -> str:
    if not images:
        return '<p class="muted">No metrics.jsonl rows yet.</p>'
    return "".join(
        f"<h3>{esc(prefix)}/</h3>"
        f'<img class="curve" src="img/{esc(name)}" alt="{esc(prefix)} curves">'
        for prefix, name in images
    )


def eval_tables(name: str, data: Mapping[str, Any]) -> str:
    """Tables of one eval file {stage: {group: {metric: value}}}: a table per metric."""
    stages = [
        s
        for s in data
        if s != "meta"
        and isinstance(data[s], Mapping)
        and any(isinstance(v, Mapping) for v in data[s].values())
    ]
    groups: list[str] = []
    metrics: list[str] = []
    for stage in stages:
        for group, values in data[stage].items():
            if not isinstance(values, Mapping):
                continue  # not a {metric: value} group (e.g. a settings entry)
            if group not in groups:
                groups.append(group)
            metrics += [m for m in values if m not in metrics]
    out = [f"<h3>{esc(name)}</h3>"]
    if isinstance(data.get("meta"), Mapping):
        out.append(f'<p class="muted">{esc(json.dumps(data["meta"], sort_keys=True))}</p>')
    for metric in metrics:
        head = "".join(f"<th>{esc(s)}</th>" for s in stages)
        head += f"<th>{esc(stages[-1])} − {esc(stages[0])}</th>" if len(stages) > 1 else ""
        rows = []
        for group in groups:
            vals = [_get(data[s].get(group), metric) for s in stages]
            cells = "".join(f"<td>{fmt(v)}</td>" for v in vals)
            cells += delta(vals[0], vals[-1]) if len(stages) > 1 else ""
            rows.append(f"<tr><td>{esc(group)}</td>{cells}</tr>")
        out.append(f"<table><tr><th>{esc(metric)}</th>{head}</tr>{''.join(rows)}</table>")
    return "".join(out)


def _get(values: Any, metric: str) -> Any:
    return values.get(metric) if isinstance(values, Mapping) else None


def _steps_html(steps: Any) -> str:
    """Per-step correctness: a list of {var|text, status|correct} dicts, or {var: status}."""
    items = steps.items() if isinstance(steps, Mapping) else enumerate(steps)
    spans = []
    for key, item in items:
        if isinstance(item, Mapping):
            label = item.get("var", item.get("text", key))
            status = item.get("status", item.get("correct"))
        else:
            label, status = key, item
        good = status is True or status == 1 or status == "ok"
        bad = status is False or status == 0 or (isinstance(status, str) and status != "ok")
        cls = "ok" if good else "wrong" if bad else "unk"
        tip = "" if isinstance(status, bool | int) else f' title="{esc(status)}"'
        spans.append(f'<span class="{cls}"{tip}>{esc(label)}</span>')
    return f'<div class="steps">{"".join(spans)}</div>'


def rollout_card(row: Mapping[str, Any], *, open_: bool = False) -> str:
    """A collapsible card: badges, prompt, completion, reward breakdown, per-step correctness."""
    reward = row.get("reward")
    info = row.get("info") if isinstance(row.get("info"), Mapping) else {}
    good = isinstance(reward, int | float) and reward > 0
    badges = [f'<span class="badge {"good" if good else "bad"}">reward {fmt(reward)}</span>']
    for key in HEADLINE_FIELDS:
        if row.get(key) is not None:
            badges.append(f'<span class="badge">{esc(key)} {fmt(row[key])}</span>')
    for key in HEADLINE_INFO[:2]:
        if key in info:
            badges.append(f'<span class="badge">{esc(key)} {fmt(info[key])}</span>')
    meta = f"step {row.get('step')} · group {row.get('group', '—')} · {row.get('id', '')}"
    meta += f" · {row.get('finish_reason', '')} · {row.get('tokens', '?')} tokens"
    scalars = [(k, v) for k, v in info.items() if not isinstance(v, list | Mapping)]
    scalars.sort(key=lambda kv: (kv[0] not in HEADLINE_INFO, kv[0]))
    body = [
        f"<div class=muted>prompt</div><pre>{esc(row.get('prompt', ''))}</pre>",
        f"<div class=muted>completion</div><pre>{esc(row.get('completion', ''))}</pre>",
        f"<div class=muted>gold answer: {esc(row.get('answer'))}</div>",
    ]
    if scalars:
        body.append("<div class=muted>reward breakdown</div>" + summary_table(scalars))
    for key in ("steps", "nodes"):
        if isinstance(info.get(key), list | Mapping) and info[key]:
            body.append(f"<div class=muted>per-step correctness</div>{_steps_html(info[key])}")
    data_reward = reward if isinstance(reward, int | float) else 0
    return (
        f'<details class="card"{" open" if open_ else ""} data-step="{esc(row.get("step"))}"'
        f' data-reward="{data_reward}">'
        f"<summary>{''.join(badges)}<span class=muted>{esc(meta)}</span></summary>"
        f'<div class="body">{"".join(body)}</div></details>'
    )


def rollout_browser(rows: Sequence[Mapping[str, Any]], total: int) -> str:
    if not rows:
        return '<p class="muted">No samples.jsonl rows yet.</p>'
    steps = sorted({r.get("step") for r in rows if isinstance(r.get("step"), int)})
    options = '<option value="all">all steps</option>' + "".join(
        f'<option value="{s}">step {s}</option>' for s in steps
    )
    controls = (
        '<div class="controls">'
        f'<select id="f-step" onchange="applyFilters()">{options}</select>'
        '<select id="f-reward" onchange="applyFilters()"><option value="all">any reward</option>'
        '<option value="pos">reward &gt; 0</option><option value="zero">reward = 0</option>'
        '</select><input id="f-text" placeholder="search text" oninput="applyFilters()">'
        f'<span id="f-count" class="muted">{len(rows)} shown</span></div>'
        f'<p class="muted">{len(rows)} of {total} logged rollouts, grouped by step.</p>'
    )
    # The first card of the last logged step starts open: what the policy does now.
    last = max(steps) if steps else None
    first_last = next((i for i, r in enumerate(rows) if r.get("step") == last), 0)
    return controls + "".join(rollout_card(r, open_=i == first_last) for i, r in enumerate(rows))
