"""Stop-string detection on decoded text, looking only at the tail of each response."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class StopChecker:
    """Tells whether a response's text has just come to contain one of the stop strings.

    Called after every new token, so an occurrence is always found at the token that completes
    it; that lets us decode only the last few tokens instead of the whole response. The window
    allows 4 tokens per character of the longest stop string (a byte-level tokenizer may spend up
    to 4 tokens on one UTF-8 character) plus slack for tokens that decode to nothing.
    """

    def __init__(self, tokenizer: Any, stops: Sequence[str]) -> None:
        if tokenizer is None:
            raise ValueError("stop strings need a tokenizer to decode the text")
        self.tokenizer = tokenizer
        self.stops = tuple(stops)
        self.window = 4 * max(len(s) for s in self.stops) + 4

    def hit(self, tokens: Sequence[int]) -> bool:
        """True when the decoded text of `tokens`' tail contains a stop string.

        Args:
            tokens: the response tokens so far (the newest last).
        """
        text = self.tokenizer.decode(list(tokens[-self.window :]), skip_special_tokens=False)
        return any(stop in text for stop in self.stops)
