"""Synthetic-task tokenizer: exact round trip, no <unk>, reload through plain AutoTokenizer."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from reasonrl.tasks.synth.generator import generate_problem
from reasonrl.tasks.synth.render import completion_text, prompt_text, training_text
from reasonrl.tasks.synth.tokenizer import (
    MARKERS,
    build_synth_tokenizer,
    save_synth_tokenizer,
    synth_vocab,
)

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tok():  # type: ignore[no-untyped-def]
    return build_synth_tokenizer()


def _texts(n: int = 150) -> list[str]:
    rng = random.Random(77)
    out = []
    for i in range(n):
        context, mode = ("zoo", "school", "movie")[i % 3], ("forward", "reverse")[i % 2]
        p = generate_problem(2 + i % 19, rng=rng, context=context, mode=mode, depth=2 + i % 5 // 4)
        out.append(training_text(p))
    return out


def test_vocab_ids_are_stable() -> None:
    # Checkpoints depend on these ids: the first 1313 tokens are frozen (sha256 of the list as of
    # the first release); new words may only be appended (vocab.APPENDED_WORDS).
    import hashlib

    vocab = synth_vocab()
    assert hashlib.sha256("\n".join(vocab[:1313]).encode()).hexdigest()[:16] == "a452c9d31b6529f2"
    assert vocab[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"]
    assert len(vocab) == 1321


def test_vocab_is_unique_and_complete(tok) -> None:  # type: ignore[no-untyped-def]
    vocab = synth_vocab()
    assert len(vocab) == len(set(vocab)) == len(tok)
    for marker in MARKERS:
        assert len(tok.encode(marker)) == 1
    assert tok.clean_up_tokenization_spaces is False
    assert {tok.pad_token, tok.bos_token, tok.eos_token, tok.unk_token} == {
        "<pad>", "<bos>", "<eos>", "<unk>"
    }  # fmt: skip


def test_round_trip_generated_text(tok) -> None:  # type: ignore[no-untyped-def]
    for text in _texts():
        ids = tok.encode(text)
        assert tok.unk_token_id not in ids
        assert tok.decode(ids) == text


def test_prompt_and_completion_tokenise_independently(tok) -> None:  # type: ignore[no-untyped-def]
    p = generate_problem(7, rng=random.Random(1))
    whole = tok.encode(training_text(p))
    assert tok.encode(prompt_text(p)) + tok.encode(completion_text(p)) == whole
    assert tok.decode(tok.encode(completion_text(p))) == completion_text(p).lstrip()


def test_numbers_and_punctuation(tok) -> None:  # type: ignore[no-untyped-def]
    # 0..999 are single tokens; larger numbers use "##d" continuation pieces and decode back.
    assert len(tok.encode("7")) == len(tok.encode("999")) == 1
    assert tok.convert_ids_to_tokens(tok.encode("1234")) == ["123", "##4"]
    for text in ["v; so v = a + b = 3 + 4 = 7.", "Answer: 1234.", "x - 1 = 0, so x = 1?",
                 "so b = 2 * o = 2 * (2 - x) = 4 - 2 * x."]:  # fmt: skip
        assert tok.decode(tok.encode(text)) == text
    assert tok.convert_ids_to_tokens(tok.encode("v; so")) == ["v", ";", "so"]


def test_reload_with_auto_tokenizer_next_to_qwen2_config(tmp_path: Path, tok) -> None:  # type: ignore[no-untyped-def]
    # transformers 5 swaps in Qwen2's byte-level tokenizer for a qwen2 config.json unless the
    # saved files prevent it; check ids and decode after reloading exactly as users do.
    save_synth_tokenizer(tmp_path)
    qwen2 = {"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"], "vocab_size": len(tok),
             "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1,
             "num_attention_heads": 2, "num_key_value_heads": 1}  # fmt: skip
    texts = _texts(20)
    for config in (None, qwen2):
        if config is not None:
            (tmp_path / "config.json").write_text(json.dumps(config))
        for kwargs in ({}, {"trust_remote_code": True}):
            loaded = transformers.AutoTokenizer.from_pretrained(str(tmp_path), **kwargs)
            assert "Qwen2" not in type(loaded).__name__
            assert (
                loaded.eos_token_id == tok.eos_token_id and loaded.pad_token_id == tok.pad_token_id
            )
            for text in texts:
                ids = tok.encode(text)
                assert loaded.encode(text) == ids
                assert loaded.decode(ids) == text
