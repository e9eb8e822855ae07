"""Child process that runs math-verify for `MathGrader` (stdlib + math_verify only).

`grader.py` runs it by path (`python -u .../math/worker.py`), not with `-m`: it imports nothing
from reasonrl, so any interpreter with math-verify installed can serve as the worker.

Protocol: the parent writes one JSON object per line {"gold": str, "pred": str, "soft_s": int};
the worker answers one line {"equal": bool} or {"error": str}. It prints {"ready": true} once
math_verify is imported. math-verify's own signal timeouts (which work here: this is the main
thread) are the soft limit; the parent kills this process at its hard limit, which also stops
hangs inside C code (e.g. sympy/gmpy big-integer arithmetic) that no signal can interrupt.
"""

import json
import os
import sys


def _wrap(text: str) -> str:
    # math-verify only extracts LaTeX between math delimiters (or from \boxed{}); an escaped
    # dollar sign (\$5) is currency, not a delimiter, so only bare outer $ are stripped.
    text = text.strip()
    if text.startswith("$") and text.endswith("$") and not text.endswith("\\$"):
        text = text.strip("$")
    return text if "\\boxed" in text else f"${text}$"


def main() -> None:
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout = sys.stderr  # stray prints from libraries must not corrupt the protocol
    import logging

    logging.disable(logging.CRITICAL)
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    configs = [LatexExtractionConfig(), ExprExtractionConfig()]
    channel.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        try:
            req = json.loads(line)
            soft = int(req.get("soft_s", 3))
            gold = parse(_wrap(req["gold"]), extraction_config=configs, parsing_timeout=soft)
            pred = parse(_wrap(req["pred"]), extraction_config=configs, parsing_timeout=soft)
            if not gold:
                reply = {"error": "gold answer did not parse"}
            elif not pred:
                reply = {"equal": False, "note": "prediction did not parse"}
            else:
                reply = {"equal": bool(verify(gold, pred, timeout_seconds=soft))}
        except Exception as exc:  # report, keep serving
            reply = {"error": f"{type(exc).__name__}: {exc}"[:300]}
        channel.write(json.dumps(reply) + "\n")


if __name__ == "__main__":
    main()
