"""Word-level tokenizer for the synthetic task, saved as a `transformers` tokenizer directory.

Design: a WordPiece model whose vocabulary is every word the generator can emit (all contexts,
statement/question/trace grammar), punctuation as separate tokens, the 52 variable letters, the
numbers 0..999 as single tokens and continuation digits "##0".."##9", so any longer number is
"123" + "##4" and nothing the generator emits becomes <unk>. The pre-tokenizer splits on
whitespace and isolates . , ; : ? ( ); the decoder puts one space between tokens, glues "##"
pieces, drops the space before . , ; : ? ) and after (, so decode(encode(text)) == text for
canonical text (single spaces, no space before punctuation), e.g. "v; so v = 3 + 4 = 7. Answer: 7."
or "2 * (x + 3)". Token ids are append-only (vocab.APPENDED_WORDS) so saved checkpoints stay valid.

No special token is added automatically: callers append `eos_token_id` to completions.

Tool calls (issue 18): `build_synth_tokenizer(tools=True)` appends TOOL_MARKERS (`<code>`,
`</code>`, `<output>`, `</output>`, special tokens) and TOOL_WORDS (the words of tool errors)
after the 1321 base tokens, so every existing id stays where it is. The default stays the base
vocabulary, because the shipped `builtin:synth-micro` has exactly 1321 embedding rows: to use it
on the tool task, `add_tool_tokens(tokenizer, model)` appends the same tokens to its tokenizer
(the same ids as `tools=True`, tested) and grows the model's embeddings to match.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from reasonrl.tasks.synth.vocab import (
    APPENDED_WORDS,
    GRAMMAR_WORDS,
    PUNCTUATION,
    VARIABLE_NAMES,
    context_words,
)

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

MARKERS = ("<question>", "</question>", "<solution>", "</solution>", "<answer>", "</answer>")
TOOL_MARKERS = ("<code>", "</code>", "<output>", "</output>")
# Words of the tool's error answers ("error: syntax SyntaxError: invalid syntax", ...), so they
# are not <unk>; appended after the markers, order frozen like APPENDED_WORDS.
TOOL_WORDS = (
    "error", "syntax", "exception", "timeout", "memory", "output_limit", "unavailable",
    "bad_call", "SyntaxError", "invalid", "ZeroDivisionError", "NameError", "division", "by",
    "zero", "print", "True", "False", "None",
)  # fmt: skip
SPECIALS = {"pad_token": "<pad>", "bos_token": "<bos>", "eos_token": "<eos>", "unk_token": "<unk>"}
_ATTACH_LEFT = (".", ",", ";", ":", "?", ")")
MAX_NUMBER_TOKEN = 999
_MODULE = "tokenization_reasonrl_synth"
_MODULE_SOURCE = '''"""reasonrl synth tokenizer: plain fast tokenizer, tokenizer.json as is."""

from transformers import PreTrainedTokenizerFast


class SynthTokenizer(PreTrainedTokenizerFast):
    pass
'''


def synth_vocab(*, tools: bool = False) -> list[str]:
    """Ordered vocabulary: specials, markers, punctuation, letters, numbers, digit pieces, words;
    with tools=True then TOOL_MARKERS and the TOOL_WORDS not already in it."""
    ordered = [SPECIALS[k] for k in ("pad_token", "bos_token", "eos_token", "unk_token")]
    ordered += list(MARKERS) + list(PUNCTUATION) + list(VARIABLE_NAMES)
    ordered += [str(i) for i in range(MAX_NUMBER_TOKEN + 1)] + [f"##{d}" for d in range(10)]
    seen = set(ordered)
    for word in [*sorted({*GRAMMAR_WORDS, *context_words()}), *APPENDED_WORDS]:
        if word not in seen:
            ordered.append(word)
            seen.add(word)
    if tools:
        ordered += [t for t in (*TOOL_MARKERS, *TOOL_WORDS) if t not in seen]
    return ordered


def build_synth_tokenizer(*, tools: bool = False) -> PreTrainedTokenizerFast:
    """The task tokenizer as a transformers fast tokenizer (clean_up_tokenization_spaces=False).

    tools: also the tool-call tags and tool-error words (module docstring).
    Returns: PreTrainedTokenizerFast with pad/bos/eos/unk and the six question/solution/answer
        markers (and with tools the four tool tags) as special tokens; vocab size
        len(synth_vocab(tools=tools)).
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(synth_vocab(tools=tools))}
    tok = Tokenizer(
        models.WordPiece(vocab, unk_token=SPECIALS["unk_token"], max_input_chars_per_word=64)
    )
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.WhitespaceSplit(),
            pre_tokenizers.Split(Regex(r"[.,;:?()]"), behavior="isolated"),
        ]
    )
    # WordPiece joins tokens with spaces and glues "##" pieces; after Fuse the Replace steps see
    # the whole string, so they can drop the space on either side of a punctuation mark.
    tok.decoder = decoders.Sequence(
        [decoders.WordPiece(prefix="##", cleanup=False), decoders.Fuse()]
        + [decoders.Replace(f" {p}", p) for p in _ATTACH_LEFT]
        + [decoders.Replace("( ", "(")]
    )
    markers = [*MARKERS, *(TOOL_MARKERS if tools else ())]
    tok.add_special_tokens([*SPECIALS.values(), *markers])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        clean_up_tokenization_spaces=False,
        additional_special_tokens=markers,
        model_max_length=4096,
        **SPECIALS,
    )
    return fast


def save_synth_tokenizer(out_dir: str | Path) -> Path:
    """Build and save the tokenizer to `out_dir` (reloadable with AutoTokenizer.from_pretrained).

    transformers 5 replaces the saved class of some model types (Qwen2 among them, see
    MODELS_WITH_INCORRECT_HUB_TOKENIZER_CLASS) by the model type's own tokenizer, which for Qwen2
    rebuilds a byte-level BPE from our vocabulary and gives different ids. An `auto_map` entry in
    tokenizer_config.json takes AutoTokenizer off that path, and with no remote code allowed it
    falls back to `tokenizer_class` = PreTrainedTokenizerFast, which loads tokenizer.json as is;
    with trust_remote_code=True it loads the two-line subclass written beside it (same behaviour).
    tests/tasks/synth/test_tokenizer.py checks this with a Qwen2 config.json beside the files.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    build_synth_tokenizer().save_pretrained(str(out))
    config_path = out / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config["auto_map"] = {"AutoTokenizer": [None, f"{_MODULE}.SynthTokenizer"]}
    config["clean_up_tokenization_spaces"] = False
    config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    # Target of auto_map when a caller passes trust_remote_code=True: the plain fast tokenizer.
    (out / f"{_MODULE}.py").write_text(_MODULE_SOURCE, encoding="utf-8")
    return out


def load_synth_tokenizer(path: str | Path) -> PreTrainedTokenizerFast:
    """Reload a saved tokenizer directory with plain AutoTokenizer (what users and tools do)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path))


def add_tool_tokens(tokenizer, model=None) -> list[int]:  # type: ignore[no-untyped-def]
    """Append the tool tags and words to a loaded synth tokenizer (e.g. `builtin:synth-micro`'s)
    and, given a model, grow its (tied) embeddings to the new vocabulary size.

    The tokens go after the last existing id in `synth_vocab(tools=True)` order, so a tokenizer
    with the 1321 base tokens gets exactly the ids of `build_synth_tokenizer(tools=True)`; new
    embedding rows are initialised by transformers' `resize_token_embeddings` (mean of the old
    rows). Already present tokens are left alone (idempotent). Returns the ids of TOOL_MARKERS.
    """
    from tokenizers import AddedToken

    have = set(tokenizer.get_vocab())
    extra = [t for t in synth_vocab(tools=True) if t not in have]
    # One by one, in order, so each gets the next id (the tokens' order decides the ids).
    for token in extra:
        if token in TOOL_MARKERS:
            tokenizer.add_special_tokens(
                {"additional_special_tokens": [AddedToken(token, special=True)]},
                replace_extra_special_tokens=False,
            )
        else:
            tokenizer.add_tokens([token])
    if model is not None and model.get_input_embeddings().weight.shape[0] < len(tokenizer):
        model.resize_token_embeddings(len(tokenizer))
    return [tokenizer.convert_tokens_to_ids(t) for t in TOOL_MARKERS]
