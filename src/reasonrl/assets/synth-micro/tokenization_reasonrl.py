"""reasonrl: a plain fast tokenizer, tokenizer.json loaded as is."""

from transformers import PreTrainedTokenizerFast


class ReasonrlTokenizer(PreTrainedTokenizerFast):
    pass
