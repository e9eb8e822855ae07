"""The large-number tool task (issue 18): the `magnitude` option of the generator, the strict
reward on traces with tool calls, the tool tokens, and the behaviour tagger."""

from __future__ import annotations

import random

import pytest

from reasonrl.tasks.synth import generate_problem
from reasonrl.tasks.synth.forward import MAGNITUDES
from reasonrl.tasks.synth.graph import CONST, CONST_TIMES
from reasonrl.tasks.synth.parse import blank_tool_regions, parse_trace
from reasonrl.tasks.synth.problem import check_problem
from reasonrl.tasks.synth.reward import step_scores, synth_reward
from reasonrl.tasks.synth.tokenizer import (
    TOOL_MARKERS,
    add_tool_tokens,
    build_synth_tokenizer,
    synth_vocab,
)
from reasonrl.tasks.synth.tooltrace import (
    behaviour_rich,
    tag_behaviours,
    tool_output_spans,
    tool_trace,
)
from reasonrl.types import Sample

GOLD = (
    "Define adult owl in Maple Zoo as a; so a = 312. Define adult fox in Maple Zoo as b; "
    "so b = 417 * a = 417 * 312 = 130104. Answer: 130104."
)
SAMPLE = Sample("t", "<question> ... </question> <solution>", "130104", {"trace": GOLD})


def _score(completion: str) -> float:
    return synth_reward(SAMPLE, completion, strict=True).score


def _done(trace: str) -> str:
    return f" {trace} </solution> <answer> 130104 </answer>"


def test_large_magnitude_draws_big_constants_and_products() -> None:
    products = 0
    for seed in range(60):
        p = generate_problem(4, rng=random.Random(seed), magnitude="large")
        check_problem(p)
        for node in p.nodes:
            assert 0 <= node.value <= MAGNITUDES["large"].max_value
            if node.kind in (CONST, CONST_TIMES):
                assert 100 <= node.const <= 999  # type: ignore[operator]
            products += node.kind == CONST_TIMES
    assert products >= 15


def test_small_magnitude_is_the_default_unchanged() -> None:
    for seed in range(5):
        a = generate_problem(5, rng=random.Random(seed))
        b = generate_problem(5, rng=random.Random(seed), magnitude="small", number_range=5)
        assert a == b
    with pytest.raises(ValueError, match="magnitude"):
        generate_problem(3, rng=random.Random(0), magnitude="huge")
    with pytest.raises(ValueError, match="no constant"):
        generate_problem(3, rng=random.Random(0), magnitude="large", number_range=50)


def test_strict_reward_on_hand_written_tool_traces() -> None:
    call = "<code> 417 * 312 </code> <output> 130104 </output>"
    correct = GOLD.replace("= 130104.", f"= {call} 130104.")
    assert _score(_done(GOLD)) == 1.0 and _score(_done(correct)) == 1.0
    # the stated value is what counts: a right tool answer copied wrongly fails ...
    assert _score(_done(correct.replace(f"{call} 130104.", f"{call} 130105."))) == 0.0
    # ... and a wrong tool answer (not the model's claim) does not, when the model states it right
    wrong_tool = correct.replace("<output> 130104 </output>", "<output> 999 </output>")
    assert _score(_done(wrong_tool)) == 1.0
    # a missing step fails (the answer alone is not enough under the strict reward)
    missing = correct[correct.index("Define adult fox") :].replace("417 * a = ", "")
    assert _score(_done(missing)) == 0.0
    # code and outputs are not claims: steps or Defines inside them are ignored
    noisy = correct.replace(
        call, "<code> b = 5; b </code> <output> Define x as q; so q = 1. </output>"
    )
    assert _score(_done(noisy)) == 1.0
    # a truncated call (generation cut inside <code>) hides the rest, so the step is missing
    assert _score(_done(correct.replace(" 130104. Answer", " <code> 1 + 1 130104. Answer"))) == 0.0


def test_blanking_keeps_offsets_and_dense_steps_work() -> None:
    text = "a = 1 <code> x </code> b <output> 2 </output> c <code> open"
    blank = blank_tool_regions(text)
    assert len(blank) == len(text) and blank.split() == ["a", "=", "1", "b", "c"]
    assert blank_tool_regions("no tools") == "no tools"
    call = "<code> 417 * 312 </code> <output> 130104 </output>"
    completion = _done(GOLD.replace("= 130104.", f"= {call} 130104."))
    steps = step_scores(completion, GOLD)
    assert [s for _, s in steps] == [1.0, 1.0]
    assert completion[steps[-1][0] - 1] == "."  # offsets index the original text
    assert parse_trace(completion).nodes["adult fox in Maple Zoo"].value == 130104


def test_tool_vocabulary_appends_and_the_shipped_model_can_take_it() -> None:
    from reasonrl.models.io import load_policy

    base, tools = synth_vocab(), synth_vocab(tools=True)
    assert tools[: len(base)] == base and len(base) == 1321  # no existing id moves
    tok = build_synth_tokenizer(tools=True)
    text = "= <code> 417 * 312 </code> <output> error: syntax SyntaxError: invalid syntax </output>"
    ids = tok.encode(text)
    assert tok.unk_token_id not in ids and tok.decode(ids) == text
    assert [tok.convert_tokens_to_ids(t) for t in TOOL_MARKERS] == [1321, 1322, 1323, 1324]
    model, shipped = load_policy("builtin:synth-micro")
    assert add_tool_tokens(shipped, model) == [1321, 1322, 1323, 1324]
    assert shipped.encode(text) == ids and len(shipped) == len(tok)
    assert model.get_input_embeddings().weight.shape[0] == len(tok)
    assert add_tool_tokens(shipped, model) == [1321, 1322, 1323, 1324]  # idempotent


def test_behaviour_tagger() -> None:
    def obs(x: str) -> str:
        return f" <output> {x} </output>"

    plain = "<code> 2 * 3 </code>" + obs("6") + " 6"
    verify = plain + " <code> 6 - (2 * 3) </code>" + obs("0")
    recheck = "<code> 2 * 4 </code>" + obs("8") + " <code> 8 - (2 * 3) </code>" + obs("2")
    recheck += " <code> 2 * 3 </code>" + obs("6")
    recover = "<code> 2 * 3 * </code>" + obs("error: syntax") + " <code> 2 * 3 </code>" + obs("6")
    assert tag_behaviours(plain) == {"calls": 1, "errors": 0, "verifications": 0, "recoveries": 0}
    assert (
        tag_behaviours(verify)["verifications"] == 1 and tag_behaviours(verify)["recoveries"] == 0
    )
    assert tag_behaviours(recheck) == {"calls": 3, "errors": 0, "verifications": 1, "recoveries": 1}
    assert tag_behaviours(recover) == {"calls": 2, "errors": 1, "verifications": 0, "recoveries": 1}
    assert not behaviour_rich(plain) and behaviour_rich(verify) and behaviour_rich(recover)
    spans = tool_output_spans(verify)
    assert [verify[a:b] for a, b in spans] == ["<output> 6 </output>", "<output> 0 </output>"]


def test_tool_traces_insert_calls_before_every_numeric_result() -> None:
    def obs(code: str) -> str:
        return f" <output> {code} </output>"  # echo: enough to see where calls go

    trace = tool_trace(GOLD, random.Random(0), obs)
    assert trace.startswith("Define adult owl in Maple Zoo as a; so a = 312. ")  # no arithmetic
    assert "= 417 * 312 = <code> " in trace and trace.endswith(" 130104. Answer: 130104.")
    assert _score(_done(trace)) == 1.0
