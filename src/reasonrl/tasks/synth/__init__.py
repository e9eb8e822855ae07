"""Synthetic verifiable reasoning task (arXiv 2512.07783 / GSM-Infinite DAG problems).

Light: importing this package pulls in no torch/transformers; the tokenizer imports them lazily.
"""

from reasonrl.tasks.synth.dataset import make_dataset, row_to_sample
from reasonrl.tasks.synth.generator import generate_problem
from reasonrl.tasks.synth.parse import ParsedNode, ParsedTrace, parse_trace
from reasonrl.tasks.synth.problem import SynthProblem
from reasonrl.tasks.synth.render import completion_text, prompt_text, training_text
from reasonrl.tasks.synth.reward import SYNTH_REWARDS, synth_reward
from reasonrl.tasks.synth.tokenizer import (
    build_synth_tokenizer,
    load_synth_tokenizer,
    save_synth_tokenizer,
)

__all__ = [
    "SYNTH_REWARDS",
    "ParsedNode",
    "ParsedTrace",
    "SynthProblem",
    "build_synth_tokenizer",
    "completion_text",
    "generate_problem",
    "load_synth_tokenizer",
    "make_dataset",
    "parse_trace",
    "prompt_text",
    "row_to_sample",
    "save_synth_tokenizer",
    "synth_reward",
    "training_text",
]
