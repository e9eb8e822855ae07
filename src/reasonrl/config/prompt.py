"""The prompt-format keys of the RL and SFT `data` sections, checked when a recipe loads.

`data.template`, `data.system_prompt` and `data.instruction` become a
`reasonrl.data.templates.PromptFormat`, which applies them; the one rule for a valid template is
here (data may import config, not the other way round), and `tests/data/test_prompt_format.py`
checks that TEMPLATE_NAMES lists `data.templates`' names.
"""

from __future__ import annotations

import difflib
import string

# `none`, `chat` and the names of reasonrl.data.templates.TEMPLATES (a test keeps them equal).
TEMPLATE_NAMES = ("none", "chat", "plain", "boxed", "qa", "r1", "code_completion")
QUESTION_FIELDS = ("question", "prompt")


def check_template(value: str, key: str) -> str:
    """`value` if it is a template name or a format string with a {question}/{prompt} field;
    ValueError naming `key` otherwise."""
    if value in TEMPLATE_NAMES:
        return value
    if "{" not in value:
        guess = difflib.get_close_matches(value, TEMPLATE_NAMES, n=1, cutoff=0.5)
        hint = f"did you mean '{guess[0]}'? " if guess else ""
        raise ValueError(
            f"{key}={value!r}: unknown template; {hint}use one of {', '.join(TEMPLATE_NAMES)} "
            "or a format string containing {question}"
        )
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
    except ValueError as exc:
        raise ValueError(f"{key}={value!r} is not a valid format string ({exc})") from None
    if not fields & set(QUESTION_FIELDS):
        raise ValueError(
            f"{key}={value!r} has no {{question}} (or {{prompt}}) field, so the question would be "
            "dropped; write e.g. 'Question: {question}\\nAnswer:'"
        )
    return value


def check_prompt_keys(prefix: str, template: str, system_prompt: str | None) -> None:
    """The template is valid and a system prompt comes only with template=chat."""
    check_template(template, f"{prefix}.template")
    if system_prompt is not None and template != "chat":
        raise ValueError(
            f"{prefix}.system_prompt is set but {prefix}.template={template} has no system turn; "
            f"set {prefix}.template=chat (the tokenizer's chat template) or remove it"
        )
