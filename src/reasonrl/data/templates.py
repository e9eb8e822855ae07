"""Prompt templates and the one prompt encoding of SFT, RL and evaluation.

A prompt format (`PromptFormat`, the `data.template` / `data.system_prompt` /
`data.instruction` keys of the RL and SFT configs, the `--template` / `--system-prompt` /
`--instruction` flags of `reasonrl eval`) turns a `Sample` into the model's input text:

    question    = sample.prompt, then "\\n" + instruction when one is set (INSTRUCTIONS names
                  shortcuts, e.g. `boxed`; any other value is the text itself)
    none        the question as is (the default: base models and the synthetic task)
    chat        the question as the user turn (after an optional system turn) through the
                tokenizer's own chat template (`tokenizer.apply_chat_template`, transformers),
                generation prompt appended, so an Instruct model sees its own format
    NAME        a format string of `TEMPLATES`
    "...{question}..."   a `str.format` string over {question} ({prompt} is an alias) and any
                key of `Sample.meta` (e.g. {entry_point} for HumanEval)

`prompt_token_ids(tokenizer, sample, fmt)` = `encode_prompt(tokenizer, render(...))` is the one
function that turns a sample into prompt ids: RL rollouts, held-out evaluation during training,
`reasonrl eval` and SFT all call it, so a model is trained and judged on the same prefix.

The rule for a valid template lives in `reasonrl.config.prompt` (the config checks it when a
recipe loads, before anything is built); this module applies it to formats built in Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from reasonrl.config.prompt import QUESTION_FIELDS, check_template
from reasonrl.types import Sample


class ChatTokenizer(Protocol):
    """The part of a Hugging Face tokenizer used here."""

    def apply_chat_template(self, conversation: list[dict[str, str]], **kwargs: Any) -> Any: ...


# Instruction shortcuts of `data.instruction`. Qwen2.5-Math's chain-of-thought instruction (its
# README and evaluation code), appended to the question after a newline.
INSTRUCTIONS: dict[str, str] = {
    "boxed": "Please reason step by step, and put your final answer within \\boxed{}.",
}

# Template names that are not format strings.
NONE, CHAT = "none", "chat"

TEMPLATES: dict[str, str] = {
    "plain": "{question}",
    "boxed": "{question}\n" + INSTRUCTIONS["boxed"].replace("{", "{{").replace("}", "}}"),
    # The GSM8K few-shot convention: "Question: ... Answer:" (Cobbe et al., arXiv 2110.14168).
    "qa": "Question: {question}\nAnswer:",
    # DeepSeek-R1-Zero style (arXiv 2501.12948, Table 1), reasoning and answer in tags.
    "r1": (
        "A conversation between User and Assistant. The user asks a question, and the Assistant "
        "solves it. The assistant first thinks about the reasoning process in the mind and then "
        "provides the user with the answer. The reasoning process and answer are enclosed within "
        "<think> </think> and <answer> </answer> tags, respectively.\nUser: {question}\n"
        "Assistant:"
    ),
    # HumanEval: the stub itself is the prompt; the model continues the function body.
    "code_completion": "{question}",
}
# Every value `template` may name (anything else must be a format string).
TEMPLATE_NAMES: tuple[str, ...] = (NONE, CHAT, *TEMPLATES)


def template_text(template: str, key: str = "template") -> str:
    """The format string of `template` (a name of `TEMPLATES`, or a format string holding
    {question} or {prompt}); ValueError naming `key` otherwise (`config.prompt.check_template`,
    the one rule, also applied when a recipe loads). `none`/`chat` -> "{question}"."""
    if template in (NONE, CHAT):
        return "{question}"
    if template in TEMPLATES:
        return TEMPLATES[template]
    return check_template(template, key)


class _Fields(dict):
    def __missing__(self, key: str) -> str:
        raise ValueError(
            f"template field {{{key}}} is neither 'question'/'prompt' nor a key of sample.meta "
            f"(meta has {sorted(k for k in self if k not in QUESTION_FIELDS)})"
        )


def format_template(template: str, sample: Sample, instruction: str | None = None) -> str:
    """`template` (a name in TEMPLATES or a format string) filled from the sample; the
    question is `sample.prompt` with `instruction` (a shortcut of INSTRUCTIONS or text)
    appended after a newline."""
    question = sample.prompt
    if instruction:
        question += "\n" + INSTRUCTIONS.get(instruction, instruction)
    fields = _Fields({**sample.meta, "question": question, "prompt": question})
    return template_text(template).format_map(fields)


def render_prompt(
    sample: Sample,
    template: str = "plain",
    *,
    chat: bool = False,
    tokenizer: ChatTokenizer | None = None,
    system: str | None = None,
    instruction: str | None = None,
) -> str:
    """The text given to the model for `sample`.

    Args:
        template: a name in `TEMPLATES` or a format string over {question}/{prompt} and meta keys.
        chat: wrap in the tokenizer's chat template (needs `tokenizer`), generation prompt added.
        tokenizer: a Hugging Face tokenizer with a chat template.
        system: optional system message (chat only).
        instruction: appended to the question (a name of `INSTRUCTIONS` or the text).
    Returns:
        the prompt string (not tokenised).
    """
    text = format_template(template, sample, instruction)
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
    (Llama) and those that do not (the synth tokenizer) give the same layout: exactly one BOS. A
    chat template that writes the BOS text itself (Llama 3's `{{ bos_token }}`) is tokenised to
    the BOS id, which is then not added again.
    """
    ids = list(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    bos = tokenizer.bos_token_id
    if bos is not None and (not ids or ids[0] != bos):
        ids.insert(0, bos)
    return ids


@dataclass(frozen=True, slots=True)
class PromptFormat:
    """How a sample becomes prompt text (module docstring); checked on construction.

    template: `none` (default: the prompt as is), `chat`, a name of TEMPLATES or a format string
    over {question}/{prompt} and meta keys. system: the system turn (chat only). instruction:
    appended to the question (a name of INSTRUCTIONS or the text).
    """

    template: str = NONE
    system: str | None = None
    instruction: str | None = None

    def __post_init__(self) -> None:
        template_text(self.template)
        if self.system is not None and self.template != CHAT:
            raise ValueError(
                f"a system prompt needs template=chat (template={self.template!r} has no system "
                "turn)"
            )

    @classmethod
    def from_config(cls, cfg: Any) -> PromptFormat:
        """The format of a run config's `data` section (RLConfig or SFTConfig: both have
        data.template, data.system_prompt and data.instruction)."""
        return cls(cfg.data.template, cfg.data.system_prompt, cfg.data.instruction)

    def render(self, sample: Sample, tokenizer: Any = None) -> str:
        """The prompt text of `sample` (`tokenizer` is needed for template=chat only)."""
        return render_prompt(
            sample,
            self.template,
            chat=self.template == CHAT,
            tokenizer=tokenizer,
            system=self.system,
            instruction=self.instruction,
        )


def prompt_token_ids(tokenizer: Any, sample: Sample, fmt: PromptFormat | None = None) -> list[int]:
    """The prompt ids of `sample` under `fmt` (None = PromptFormat(): the prompt as is): the one
    function SFT, RL rollouts, the RL prompt-length filter and evaluation encode prompts with."""
    return encode_prompt(tokenizer, (fmt or PromptFormat()).render(sample, tokenizer))
