"""The EFT engine (rollout/eft.py): beta=0 / identical small models reduce to the large base, a
hand-made bigram toy decodes as computed by hand, and KV-cache stepping equals a recompute."""

from __future__ import annotations

import math

import pytest
import torch

from reasonrl.algos.eft import eft_logprobs
from reasonrl.rollout.base import RolloutEngine, SamplingParams
from reasonrl.rollout.eft import EFTEngine, EFTModel
from reasonrl.rollout.transformers_engine import TransformersEngine

from .conftest import EOS, WordTokenizer, tiny_model

PROMPTS = [[5, 7, 9], [3], [11, 4, 6, 8, 12]]


def _greedy(engine, prompts=PROMPTS, max_new=12):
    params = SamplingParams(n=1, max_new_tokens=max_new, greedy=True)
    return [g[0] for g in engine.generate(prompts, params)]


def test_is_an_engine_and_beta_zero_is_the_large_base():
    large, ft, base = tiny_model(0), tiny_model(1), tiny_model(2)
    tok = WordTokenizer()
    eft = EFTEngine(large, ft, base, tok, beta=0.0, dtype="fp32")
    assert isinstance(eft, RolloutEngine)
    own = _greedy(TransformersEngine(large, tok, dtype="fp32"))
    got = _greedy(eft)
    assert [c.token_ids for c in got] == [c.token_ids for c in own]
    for a, b in zip(got, own):
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-5)
    # the delta does change something at beta = 1 (else the test above proves nothing)
    assert [c.token_ids for c in _greedy(EFTEngine(large, ft, base, tok, dtype="fp32"))] != [
        c.token_ids for c in own
    ]


def test_identical_small_models_are_the_large_base():
    large, small = tiny_model(0), tiny_model(1)
    copy = tiny_model(1)  # a separate, identical model
    tok = WordTokenizer()
    own = _greedy(TransformersEngine(large, tok, dtype="fp32"))
    got = _greedy(EFTEngine(large, small, copy, tok, beta=1.0, dtype="fp32"))
    assert [c.token_ids for c in got] == [c.token_ids for c in own]


def test_cached_stepping_equals_full_recompute():
    large, ft, base = tiny_model(3), tiny_model(4), tiny_model(5)
    tok, beta, max_new = WordTokenizer(), 1.5, 10
    got = _greedy(EFTEngine(large, ft, base, tok, beta=beta, dtype="fp32"), max_new=max_new)
    for prompt, comp in zip(PROMPTS, got):
        seq, tokens, lps = list(prompt), [], []
        with torch.no_grad():
            for _ in range(max_new):  # no cache: the whole sequence through all three, each step
                ids = torch.tensor([seq])
                z = [m(input_ids=ids, use_cache=False).logits[0, -1] for m in (large, ft, base)]
                lp = eft_logprobs(*z, beta=beta)
                t = int(lp.argmax())
                tokens.append(t)
                lps.append(float(lp[t]))
                seq.append(t)
                if t == EOS:
                    break
        assert list(comp.token_ids) == tokens
        assert comp.logprobs == pytest.approx(lps, abs=1e-4)


def test_sampling_with_groups_and_seed_is_reproducible():
    large, ft, base = tiny_model(0), tiny_model(1), tiny_model(2)
    eng = EFTEngine(large, ft, base, WordTokenizer(), dtype="fp32", max_batch_size=4)
    params = SamplingParams(n=3, max_new_tokens=8, temperature=0.8, top_p=0.9, seed=7)
    a = eng.generate(PROMPTS, params)
    b = eng.generate(PROMPTS[1:2], params)  # alone: same tokens (per-sequence keys)
    assert [len(g) for g in a] == [3, 3, 3]
    assert [c.token_ids for c in a[1]] == [c.token_ids for c in b[0]]


class _NoCache:
    """A cache for a model that needs none (bigram): only the batch edits the engine calls."""

    def batch_repeat_interleave(self, repeats: int) -> None:
        pass

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        pass


class _Bigram(torch.nn.Module):
    """Logits depend on the last token only: logits[t] = table[t] (hand-computable)."""

    def __init__(self, table: list[list[float]]) -> None:
        super().__init__()
        self.table = torch.tensor(table).log()
        self.emb = torch.nn.Embedding(len(table), 1)

    def get_input_embeddings(self):
        return self.emb

    def get_output_embeddings(self):
        return None

    def forward(self, input_ids, attention_mask=None, position_ids=None, use_cache=False,
                cache=None):  # fmt: skip
        class Out:
            pass

        out = Out()
        out.logits = self.table[input_ids]
        out.cache = _NoCache() if use_cache else None
        return out


def test_hand_made_three_model_toy():
    # vocab {0: pad, 1: a, 2: eos, 3: b}; from any token:
    # large base p = (0, .5, .1, .4); small ft p = (0, .1, .3, .6); small base p = (0, .4, .3, .3)
    # EFT numerator .5*.1/.4 = .125, .1*1 = .1, .4*2 = .8 -> argmax b (3), p_b = .8 / 1.025
    large = _Bigram([[1e-9, 0.5, 0.1, 0.4]] * 4)
    ft = _Bigram([[1e-9, 0.1, 0.3, 0.6]] * 4)
    base = _Bigram([[1e-9, 0.4, 0.3, 0.3]] * 4)
    eng = EFTEngine(large, ft, base, WordTokenizer(), dtype="fp32", eos_token_id=2)
    (comp,) = _greedy(eng, prompts=[[1]], max_new=3)
    assert comp.token_ids == (3, 3, 3) and comp.finish_reason == "length"
    assert comp.logprobs == pytest.approx([math.log(0.8 / 1.025)] * 3, abs=1e-5)
    # the large base alone would say "a": the delta flipped the choice
    (alone,) = _greedy(EFTEngine(large, ft, base, WordTokenizer(), beta=0.0, dtype="fp32",
                                 eos_token_id=2), prompts=[[1]], max_new=1)  # fmt: skip
    assert alone.token_ids == (1,)


def test_vocabularies_must_match_and_weights_go_to_the_fine_tuned_model():
    a = _Bigram([[0.5, 0.5]] * 2)
    b = _Bigram([[0.3, 0.3, 0.4]] * 3)
    with pytest.raises(ValueError, match="shared vocabulary"):
        EFTModel(a, a, b)
    with pytest.raises(ValueError, match="beta"):
        EFTModel(a, a, a, beta=-1.0)
    large, ft, base = tiny_model(0), tiny_model(1), tiny_model(2)
    eng = EFTEngine(large, ft, base, WordTokenizer(), dtype="fp32", share_weights=True)
    new = {n: torch.zeros_like(p) for n, p in tiny_model(1).named_parameters()}
    eng.load_weights(new.items())
    assert all(float(p.detach().abs().sum()) == 0 for p in ft.parameters())
    assert any(float(p.detach().abs().sum()) > 0 for p in large.parameters())
