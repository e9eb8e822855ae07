"""Per-step correctness of the synthetic task (the dense reward's step scores)."""

from __future__ import annotations

from reasonrl.tasks.synth.parse import step_spans
from reasonrl.tasks.synth.reward import step_scores

GOLD = (
    "Define public highschool in Hawkesbury as r; so r = 3. Define culinarian school in "
    "Hawkesbury as e; so e = r = 3. Define total number of schools in Hawkesbury as O; "
    "so O = e + r = 3 + 3 = 6. Answer: 6."
)
STEP_E = "Define culinarian school in Hawkesbury as e; so e = r = 3. "


def _completion(trace: str) -> str:
    return f" {trace} </solution> <answer> 6 </answer>"


def test_spans_end_at_each_define_sentence() -> None:
    text = _completion(GOLD)
    spans = step_spans(text)
    assert [n for n, _ in spans] == [
        "public highschool in Hawkesbury",
        "culinarian school in Hawkesbury",
        "total number of schools in Hawkesbury",
    ]
    assert [text[e - 6 : e] for _, e in spans] == ["r = 3.", "r = 3.", "+ 3 = 6."[-6:]]
    assert step_spans("no steps here") == []


def test_gold_steps_all_score_one() -> None:
    assert [s for _, s in step_scores(_completion(GOLD), GOLD)] == [1.0, 1.0, 1.0]


def test_a_wrong_value_fails_its_step_and_the_steps_built_on_it() -> None:
    bad = GOLD.replace("so e = r = 3", "so e = r = 4")
    assert [s for _, s in step_scores(_completion(bad), GOLD)] == [1.0, 0.0, 0.0]


def test_a_repeated_correct_step_scores_again_and_a_foreign_one_zero() -> None:
    farmed = GOLD.replace("Define total", STEP_E * 2 + "Define total")
    assert [s for _, s in step_scores(_completion(farmed), GOLD)] == [1.0] * 5
    pizza = "Define pizza in Hawkesbury as z; so z = 2. "
    foreign = GOLD.replace("Define total", pizza + "Define total")
    assert [s for _, s in step_scores(_completion(foreign), GOLD)] == [1.0, 1.0, 0.0, 1.0]
