"""`PromptFormat` and `prompt_token_ids`: rendering, exactly one BOS, the config keys
(data.template / system_prompt / instruction) and the same prompt ids in RL, SFT and eval."""

from __future__ import annotations

from functools import cache

import pytest

from reasonrl.config import RLConfig, SFTConfig
from reasonrl.config.prompt import TEMPLATE_NAMES as CONFIG_TEMPLATE_NAMES
from reasonrl.config.prompt import check_prompt_keys
from reasonrl.data.templates import (
    INSTRUCTIONS,
    TEMPLATE_NAMES,
    TEMPLATES,
    PromptFormat,
    encode_prompt,
    prompt_token_ids,
)
from reasonrl.types import Completion, RewardResult, Sample

S = Sample(id="1", prompt="What is 2 + 2 ?", answer="4", meta={"level": 3})
BOXED = INSTRUCTIONS["boxed"]
# A chat template that writes the BOS text itself, as Llama 3's does ({{ bos_token }}).
CHAT = (
    "{{ bos_token }}{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }} </{{ m['role'] }}>"
    "{% endfor %}{% if add_generation_prompt %} <solution>{% endif %}"
)


@cache
def synth_tokenizer():
    """The shipped synthetic tokenizer (BOS `<bos>` = 1) with CHAT set: a local file, no
    download. Cached: tests only read it."""
    from reasonrl.models.io import load_tokenizer, resolve_policy_path

    tok = load_tokenizer(resolve_policy_path("builtin:synth-micro"))
    tok.chat_template = CHAT
    return tok


def test_none_is_the_prompt_as_is():
    assert PromptFormat().render(S) == S.prompt
    assert PromptFormat("none", instruction="Be brief.").render(S) == S.prompt + "\nBe brief."
    tok = synth_tokenizer()
    assert prompt_token_ids(tok, S) == encode_prompt(tok, S.prompt)
    assert prompt_token_ids(tok, S, PromptFormat()) == encode_prompt(tok, S.prompt)


def test_names_format_strings_and_instruction():
    assert PromptFormat("qa").render(S) == "Question: What is 2 + 2 ?\nAnswer:"
    assert PromptFormat("boxed").render(S) == S.prompt + "\n" + BOXED
    assert PromptFormat("none", instruction="boxed").render(S) == S.prompt + "\n" + BOXED
    assert PromptFormat("Level {level}: {question}").render(S) == "Level 3: " + S.prompt
    assert PromptFormat("Q: {prompt}").render(S) == "Q: " + S.prompt  # alias
    # the instruction is part of the question, inside the template
    assert PromptFormat("qa", instruction="Think.").render(S) == (
        f"Question: {S.prompt}\nThink.\nAnswer:"
    )
    # braces in the question are text, not format fields
    odd = Sample(id="2", prompt="Is {x} a set?")
    assert PromptFormat("qa").render(odd) == "Question: Is {x} a set?\nAnswer:"
    with pytest.raises(ValueError, match=r"template field \{subject\}.*meta has \['level'\]"):
        PromptFormat("{subject}: {question}").render(S)


def test_chat_template_with_system_and_exactly_one_bos():
    tok = synth_tokenizer()
    fmt = PromptFormat("chat", system="Be brief.", instruction="Think.")
    text = fmt.render(S, tok)
    assert text == (
        f"<bos><system> Be brief. </system><user> {S.prompt}\nThink. </user> <solution>"
    )
    ids = prompt_token_ids(tok, S, fmt)
    assert ids == encode_prompt(tok, text)
    assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1
    # without BOS in the chat template, encode_prompt adds the one BOS
    plain = PromptFormat("chat")
    tok2 = load_copy_with_template(CHAT.removeprefix("{{ bos_token }}"))
    ids2 = prompt_token_ids(tok2, S, plain)
    assert ids2[0] == tok2.bos_token_id and ids2.count(tok2.bos_token_id) == 1


def load_copy_with_template(template: str):
    from reasonrl.models.io import load_tokenizer, resolve_policy_path

    tok = load_tokenizer(resolve_policy_path("builtin:synth-micro"))
    tok.chat_template = template
    return tok


def test_chat_needs_a_tokenizer_with_a_chat_template():
    with pytest.raises(ValueError, match="needs a tokenizer"):
        PromptFormat("chat").render(S)
    with pytest.raises(ValueError, match="has no chat_template"):
        PromptFormat("chat").render(S, load_copy_with_template(None))


BAD = {
    "bogus": "unknown template",
    "chta": "did you mean 'chat'",
    "Answer: {answer}": r"no \{question\}",
    "Question: {question": "not a valid format string",
}


@pytest.mark.parametrize("value", [*TEMPLATE_NAMES, "Q: {question}", "{prompt} ({level})"])
def test_config_and_format_accept_the_same_templates(value):
    PromptFormat(value)
    check_prompt_keys("data", value, None)
    assert RLConfig.model_validate({"data": {"template": value}}).data.template == value
    sft = {"data": {"synth_ops": [2], "template": value}}
    assert SFTConfig.model_validate(sft).data.template == value


@pytest.mark.parametrize("value", list(BAD))
def test_config_and_format_refuse_the_same_templates(value):
    with pytest.raises(ValueError, match=BAD[value]):
        PromptFormat(value)
    with pytest.raises(ValueError, match=r"data\.template=.*" + BAD[value]):
        RLConfig.model_validate({"data": {"template": value}})
    with pytest.raises(ValueError, match=r"data\.template=.*" + BAD[value]):
        SFTConfig.model_validate({"data": {"synth_ops": [2], "template": value}})


def test_template_names_agree():
    assert CONFIG_TEMPLATE_NAMES == TEMPLATE_NAMES == ("none", "chat", *TEMPLATES)


def test_system_prompt_needs_chat():
    with pytest.raises(ValueError, match="needs template=chat"):
        PromptFormat("qa", system="Be brief.")
    for root, data in ((RLConfig, {}), (SFTConfig, {"synth_ops": [2]})):
        with pytest.raises(ValueError, match=r"data\.system_prompt is set.*data\.template=chat"):
            root.model_validate({"data": {**data, "system_prompt": "Be brief."}})
        cfg = root.model_validate(
            {"data": {**data, "template": "chat", "system_prompt": "Hi.", "instruction": "boxed"}}
        )
        assert PromptFormat.from_config(cfg) == PromptFormat("chat", "Hi.", "boxed")
    assert PromptFormat.from_config(RLConfig()) == PromptFormat()  # the default: as is


class RecordingEngine:
    """Returns one fixed completion per requested sample and records the prompt ids."""

    def __init__(self) -> None:
        self.prompts: list[list[int]] = []

    def generate(self, prompt_ids, params):
        self.prompts += [list(p) for p in prompt_ids]
        return [[Completion("4", (5,), (-1.0,), "stop")] * params.n for _ in prompt_ids]


def _reward(sample: Sample, completion: Completion) -> RewardResult:
    return RewardResult(score=1.0, outcome=True)


@pytest.mark.parametrize(
    "data",
    [
        {"template": "chat", "system_prompt": "Be brief.", "instruction": "boxed"},
        {"template": "Level {level}: {question}", "instruction": "Think."},
    ],
    ids=["chat", "format"],
)
def test_rl_sft_and_eval_encode_the_same_prompt_ids(data):
    from tests.rl.stubs import stub_config, stub_state

    from reasonrl.eval.evaluate import evaluate
    from reasonrl.rl.evaluation import run_eval
    from reasonrl.rl.rollouts import sample_groups
    from reasonrl.rl.state import sampling_params
    from reasonrl.runtime.timing import Timer
    from reasonrl.sft.data import encode_row

    tok = synth_tokenizer()
    cfg = stub_config(data=data, rollout={"prompts_per_step": 1})
    fmt = PromptFormat.from_config(cfg)
    want = encode_prompt(tok, fmt.render(S, tok))
    assert want != encode_prompt(tok, S.prompt)  # the format changes the prompt

    rl_engine = RecordingEngine()
    state = stub_state(cfg, _reward, engine=rl_engine, samples=[S])
    state.tokenizer = tok
    groups = sample_groups(state, sampling_params(cfg, 0), Timer())
    assert groups.prompt_ids == [want] and rl_engine.prompts == [want]

    held_out = RecordingEngine()
    run_eval(None, tok, [S], cfg, engine=held_out, reward_fn=_reward)
    assert held_out.prompts == [want]

    ev = RecordingEngine()
    result = evaluate(None, tok, [S], engine=ev, reward_fn=_reward, prompt_format=fmt, greedy=True)
    assert ev.prompts == [want] and result.settings["template"] == fmt.template

    row = {"prompt": S.prompt, "completion": "4", "level": 3}
    assert list(encode_row(tok, row, prompt_format=fmt).prompt_ids) == want


def test_sft_row_missing_a_template_field_names_the_row():
    from reasonrl.sft.data import encode_rows

    rows = [{"prompt": "1 + 1", "completion": "2"}]
    with pytest.raises(ValueError, match=r"train row 0: template field \{level\}"):
        encode_rows(
            synth_tokenizer(),
            rows,
            source="train",
            prompt_format=PromptFormat("{level} {question}"),
        )
