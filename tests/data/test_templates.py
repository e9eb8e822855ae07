"""Prompt templates: plain format strings and the tokenizer's chat template."""

from __future__ import annotations

import pytest

from reasonrl.data.templates import TEMPLATES, format_template, render_prompt
from reasonrl.types import Sample

S = Sample(id="1", prompt="What is 2+2?", answer="4", meta={"level": 3})


def test_plain_and_named_templates():
    assert render_prompt(S) == "What is 2+2?"
    assert render_prompt(S, "qa") == "Question: What is 2+2?\nAnswer:"
    assert render_prompt(S, "boxed").endswith("within \\boxed{}.")
    assert render_prompt(S, "Level {level}: {prompt}") == "Level 3: What is 2+2?"
    assert set(TEMPLATES) >= {"plain", "boxed", "qa", "r1", "code_completion"}


def test_unknown_field_names_the_field():
    with pytest.raises(ValueError, match=r"template field \{subject\}.*meta has \['level'\]"):
        format_template("{subject}: {prompt}", S)


def test_system_needs_chat():
    with pytest.raises(ValueError, match="system= needs chat=True"):
        render_prompt(S, system="be brief")
    with pytest.raises(ValueError, match="needs a tokenizer"):
        render_prompt(S, chat=True)


def _tokenizer(template: str | None):
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel({"[UNK]": 0}, "[UNK]"))
    )
    tok.chat_template = template
    return tok


def test_chat_template_via_real_tokenizer():
    template = (
        "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}"
    )
    out = render_prompt(S, "qa", chat=True, tokenizer=_tokenizer(template), system="be brief")
    assert out == "<|system|>be brief\n<|user|>Question: What is 2+2?\nAnswer:\n<|assistant|>"


def test_tokenizer_without_chat_template_is_a_clear_error():
    with pytest.raises(ValueError, match="has no chat_template"):
        render_prompt(S, chat=True, tokenizer=_tokenizer(None))
