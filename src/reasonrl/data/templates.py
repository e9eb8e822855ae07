"""Prompt templates: a plain format string, optionally wrapped in the model's chat template.

A template is a `str.format` string over `{prompt}` and any key of `Sample.meta`
(e.g. `{entry_point}` for HumanEval). `TEMPLATES` holds the common ones by name. With
`chat=True` the rendered text becomes the user turn (after an optional system turn) and the
tokenizer's own chat template (`tokenizer.apply_chat_template`, transformers) produces the final
string with the generation prompt appended, so instruction-tuned models see their own format.

`encode_prompt` turns the final prompt text into token ids, the same way for SFT, RL and eval.
"""

from __future__ import annotations

from typing import Any, Protocol

from reasonrl.types import Sample


class ChatTokenizer(Protocol):
    """The part of a Hugging Face tokenizer used here."""

    def apply_chat_template(self, conversation: list[dict[str, str]], **kwargs: Any) -> Any: ...


TEMPLATES: dict[str, str] = {
    "plain": "{prompt}",
    # Qwen2.5-Math evaluation instruction (its README): step-by-step reasoning, boxed answer.
    "boxed": "{prompt}\nPlease reason step by step, and put your final answer within \\boxed{{}}.",
    # The GSM8K few-shot convention: "Question: ... Answer:" (Cobbe et al., arXiv 2110.14168).
    "qa": "Question: {prompt}\nAnswer:",
    # DeepSeek-R1-Zero style (arXiv 2501.12948, Table 1), reasoning and answer in tags.
    "r1": (
        "A conversation between User and Assistant. The user asks a question, and the Assistant "
        "solves it. The assistant first thinks about the reasoning process in the mind and then "
        "provides the user with the answer. The reasoning process and answer are enclosed within "
        "<think> </think> and <answer> </answer> tags, respectively.\nUser: {prompt}\nAssistant:"
    ),
    # HumanEval: the stub itself is the prompt; the model continues the function body.
    "code_completion": "{prompt}",
}


class _Fields(dict):
    def __missing__(self, key: str) -> str:
        raise KeyError(
            f"template field {{{key}}} is neither 'prompt' nor a key of sample.meta "
            f"(meta has {sorted(k for k in self if k != 'prompt')})"
        )


def format_template(template: str, sample: Sample) -> str:
    """`template` (a name in TEMPLATES or a format string) filled from the sample."""
    text = TEMPLATES.get(template, template)
    return text.format_map(_Fields({**sample.meta, "prompt": sample.prompt}))


def render_prompt(
    sample: Sample,
    template: str = "plain",
    *,
    chat: bool = False,
    tokenizer: ChatTokenizer | None = None,
    system: str | None = None,
) -> str:
    """The text given to the model for `sample`.

    Args:
        template: a name in `TEMPLATES` or a format string over {prompt} and meta keys.
        chat: wrap in the tokenizer's chat template (needs `tokenizer`), generation prompt added.
        tokenizer: a Hugging Face tokenizer with a chat template.
        system: optional system message (chat only).
    Returns:
        the prompt string (not tokenised).
    """
    text = format_template(template, sample)
    if not chat:
        if system is not None:
            raise ValueError("system= needs chat=True (plain prompts have no system turn)")
        return text
    if tokenizer is None:
        raise ValueError("chat=True needs a tokenizer with a chat template")
    if getattr(tokenizer, "chat_template", "set") is None:
        raise ValueError(
            f"tokenizer {type(tokenizer).__name__} has no chat_template; use chat=False or set one"
        )
    messages = [{"role": "system", "content": system}] if system is not None else []
    messages.append({"role": "user", "content": text})
    out = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if not isinstance(out, str):
        raise TypeError(f"apply_chat_template returned {type(out).__name__}, expected str")
    return out


def encode_prompt(tokenizer: Any, prompt: str) -> list[int]:
    """Prompt ids exactly as SFT sees them: BOS (if the tokenizer has one) then the text's ids.

    BOS is added here, not by the tokenizer's post-processor, so tokenizers that add it themselves
    (Llama) and those that do not (the synth tokenizer) give the same layout: exactly one BOS.
    RL and evaluation must encode prompts with this function so the model sees the same prefix.
    """
    ids = list(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    bos = tokenizer.bos_token_id
    if bos is not None and (not ids or ids[0] != bos):
        ids.insert(0, bos)
    return ids
