"""Random-init models of several architectures and a GSM8K byte-level BPE tokenizer, no downloads.

Shared by benchmarks/architectures.py (tiny CPU models, one per architecture) and
benchmarks/gpu/smoke.py (the real shapes of Qwen2.5-0.5B and Llama-3.2-1B, random weights).

The tokenizer is a byte-level BPE (GPT-2's scheme: every byte is a symbol, so any text encodes)
trained with the `tokenizers` library on GSM8K train questions + answers; ids 0, 1 are
`<|pad|>` and `<|endoftext|>` (BOS and EOS, as GPT-2 and Qwen use one token for both).

`model_config(arch, vocab_size=..., **shape)` gives the transformers config of one architecture
(ARCHS) with tiny defaults (hidden 64, 2 layers, 4 heads / 2 kv heads where the architecture has
GQA, max_position_embeddings 1024); `shape` overrides any config field by its transformers name.
`llama3` is Llama with the Llama 3.1 RoPE scaling (factor 8, low/high freq factor 1/4) and
original_max_position_embeddings=256, so the scaling changes the frequencies of positions the
benchmark reaches (it is a no-op when the original context exceeds every position used).

Run: python benchmarks/arch_models.py --out /tmp/arch_models [--arch qwen2 --arch gpt2]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

PAD_TOKEN, EOS_TOKEN = "<|pad|>", "<|endoftext|>"
DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
GSM8K_TRAIN = "gsm8k/train.jsonl"  # reasonrl.data.benchmarks.BENCHMARKS["gsm8k_train"]

# The tiny shape every architecture gets unless overridden (head_dim = 64 / 4 = 16).
TINY = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 128,
    "max_position_embeddings": 1024,
}


def gsm8k_texts(data_dir: str | Path) -> Iterator[str]:
    """Questions and worked answers of GSM8K train, in file order."""
    with open(Path(data_dir) / GSM8K_TRAIN, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            yield row["question"]
            yield row["answer"]


def train_tokenizer(texts: Iterable[str], vocab_size: int = 2000) -> Any:
    """A byte-level BPE `PreTrainedTokenizerFast` trained on `texts` (e.g. `gsm8k_texts`); ids 0/1
    are pad and eos (= bos); at most `vocab_size` tokens (fewer when the merges run out)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD_TOKEN, EOS_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte: no unknown text
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=EOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        model_max_length=1024,
    )


def _ids(tokenizer: Any) -> dict[str, int]:
    return {
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }


def _llama_family(cls_name: str, **fixed: Any) -> Callable[[dict[str, Any]], Any]:
    def make(fields: dict[str, Any]) -> Any:
        import transformers

        return getattr(transformers, cls_name)(**{**fixed, **fields})

    return make


def _gpt2(fields: dict[str, Any]) -> Any:
    from transformers import GPT2Config

    # GPT-2 names its fields differently and has no GQA (n_head query = key/value heads).
    names = {
        "hidden_size": "n_embd",
        "num_hidden_layers": "n_layer",
        "num_attention_heads": "n_head",
        "intermediate_size": "n_inner",
        "max_position_embeddings": "n_positions",
    }
    fields = {names.get(k, k): v for k, v in fields.items() if k != "num_key_value_heads"}
    return GPT2Config(**fields)


LLAMA3_ROPE = {
    "rope_type": "llama3",
    "rope_theta": 500000.0,
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 256,
}

# architecture -> fields dict -> transformers config; AutoModelForCausalLM.from_config builds it.
ARCHS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "qwen2": _llama_family("Qwen2Config", tie_word_embeddings=True),
    "qwen3": _llama_family("Qwen3Config", tie_word_embeddings=True, head_dim=16),
    "llama": _llama_family("LlamaConfig"),
    "llama3": _llama_family("LlamaConfig", rope_parameters=LLAMA3_ROPE),
    "mistral": _llama_family("MistralConfig", sliding_window=None),
    "gemma": _llama_family("GemmaConfig", head_dim=16),
    "gpt2": _gpt2,
    "phi3": _llama_family("Phi3Config", sliding_window=None),
    "olmo2": _llama_family("Olmo2Config"),
}


def model_config(arch: str, tokenizer: Any, **shape: Any) -> Any:
    """The transformers config of `arch` (ARCHS): TINY overridden by `shape`, the tokenizer's
    special ids, and `vocab_size` = len(tokenizer) unless `shape` sets it (a larger vocab, as the
    GPU smoke check's real shapes, is fine as long as only ids < len(tokenizer) are fed)."""
    if arch not in ARCHS:
        raise KeyError(f"unknown architecture {arch!r}; known: {sorted(ARCHS)}")
    fields = {**TINY, "vocab_size": len(tokenizer), **_ids(tokenizer), **shape}
    return ARCHS[arch](fields)


def build_model(
    arch: str,
    tokenizer: Any,
    *,
    seed: int = 0,
    device: str = "cpu",
    dtype: str = "fp32",
    **shape: Any,
) -> Any:
    """A random-init causal LM of `arch` (see `model_config`), built directly on `device` in
    `dtype` (no CPU copy of a large model first)."""
    import torch
    from transformers import AutoModelForCausalLM

    from reasonrl.models.io import torch_dtype

    config = model_config(arch, tokenizer, **shape)
    torch.manual_seed(seed)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch_dtype(dtype))
    return model.eval()


def num_parameters(model: Any) -> int:
    """Distinct parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in model.parameters())


def save_models(
    out: str | Path,
    archs: Sequence[str] = tuple(ARCHS),
    *,
    data_dir: str | Path = DEFAULT_DATA_DIR,
    vocab_size: int = 2000,
    seed: int = 0,
) -> dict[str, Path]:
    """Train the tokenizer once and save one random-init model per architecture as `out/<arch>`
    (`reasonrl.models.io.save_policy`: config.json, model.safetensors, tokenizer files)."""
    from reasonrl.models.io import save_policy

    tokenizer = train_tokenizer(gsm8k_texts(data_dir), vocab_size)
    paths = {}
    for arch in archs:
        model = build_model(arch, tokenizer, seed=seed)
        paths[arch] = save_policy(model, tokenizer, Path(out) / arch)
    return paths


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="folder for one model directory per arch")
    ap.add_argument("--arch", action="append", choices=sorted(ARCHS), help="default: all")
    ap.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    ap.add_argument("--vocab-size", type=int, default=2000)
    args = ap.parse_args(argv)
    paths = save_models(
        args.out, args.arch or tuple(ARCHS), data_dir=args.data_dir, vocab_size=args.vocab_size
    )
    for arch, path in paths.items():
        print(f"{arch}: {path}")


if __name__ == "__main__":
    main()
