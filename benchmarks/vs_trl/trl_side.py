"""TRL side of the comparison (run by run.py inside benchmarks/vs_trl/.venv-trl, TRL 1.16).

    PYTHONPATH=src .venv-trl/bin/python benchmarks/vs_trl/trl_side.py JOB.json

`GRPOTrainer` with its own defaults except what the matched work fixes (settings.json) and what
CPU training needs: no gradient checkpointing, no vLLM, bf16 autocast, `use_cpu`. The reward is
reasonrl's `synth_reward` (imported from the checkout's src/ on PYTHONPATH), called on the
completion decoded WITH special tokens, as reasonrl's engine decodes it: TRL's own `completions`
argument is decoded with `skip_special_tokens=True`, which deletes the `</solution> <answer>`
markers the parser needs. Phase timers wrap TRL's methods (generate, rewards, rollout, loss,
backward, optimizer step) for the profile.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Marks, StepLog, load_settings, read_jsonl

PHASES: dict[str, float] = defaultdict(float)
COUNTS: dict[str, int] = defaultdict(int)


def timed(name: str, fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            PHASES[name] += time.perf_counter() - t0

    return wrapper


def make_reward(tokenizer, strict: bool, alpha: float = 0.2):
    from reasonrl.tasks.synth.dataset import row_to_sample
    from reasonrl.tasks.synth.reward import synth_reward

    def synth_strict(prompts, completions, completion_ids, row_json, **_: Any) -> list[float]:
        scores = []
        for ids, row in zip(completion_ids, row_json, strict=True):
            text = tokenizer.decode(ids, skip_special_tokens=False)
            sample = row_to_sample(json.loads(row))
            scores.append(float(synth_reward(sample, text, alpha=alpha, strict=strict).score))
        return scores

    return synth_strict


def count_generated(output, prompt_len: int, eos_ids: set[int]) -> int:
    """Completion tokens up to and including the first EOS (what TRL keeps), summed over rows."""
    total = 0
    for row in output[:, prompt_len:].tolist():
        n = len(row)
        for i, tok in enumerate(row):
            if tok in eos_ids:
                n = i + 1
                break
        total += n
    return total


def grpo_config(settings: dict[str, Any], job: dict[str, Any]):
    import torch
    from trl import GRPOConfig

    from reasonrl.runtime.precision import resolve_dtype

    loss, mbs = job["loss"], settings["micro_batch_size"]
    # bf16 autocast only where the CPU has native bf16 (reasonrl's `auto`): emulated bf16 on an
    # AVX2-only CPU is several times slower than fp32, for TRL as for reasonrl.
    bf16 = resolve_dtype(settings["dtype"]) == torch.bfloat16
    per_step = settings["prompts_per_step"] * settings["group_size"]
    return GRPOConfig(
        output_dir=str(Path(job["out_dir"]) / "trl_out"),
        use_cpu=True,
        bf16=bf16,
        gradient_checkpointing=False,
        use_vllm=False,
        per_device_train_batch_size=mbs,
        gradient_accumulation_steps=per_step // mbs,  # one generation of 16x8 per optimizer step
        num_generations=settings["group_size"],
        max_completion_length=settings["max_new_tokens"],
        temperature=settings["temperature"],
        top_p=1.0,
        top_k=0,
        learning_rate=settings["lr"],
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=0.0,
        max_grad_norm=settings["grad_clip"],
        loss_type=loss,
        beta=0.0,
        epsilon=settings["clip_low"],
        epsilon_high=settings["clip_high"][loss],
        scale_rewards="group",
        num_iterations=1,
        shuffle_dataset=False,  # prompts in file order, as reasonrl reads them
        max_steps=job["max_steps"],
        seed=job["seed"],
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        remove_unused_columns=False,
    )


def main(job_path: str) -> int:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOTrainer

    from reasonrl.models.io import resolve_policy_path, save_policy

    job = json.loads(Path(job_path).read_text())
    settings = load_settings(smoke=job.get("smoke", False))
    torch.set_num_threads(settings["threads"])
    out = Path(job["out_dir"])
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    model_dir = str(resolve_policy_path(job["model"]))
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    rows = list(read_jsonl(job["prompts"]))
    # reasonrl prompts are BOS + text; TRL tokenizes the prompt string, so the BOS goes in the text.
    bos = tokenizer.bos_token or ""
    dataset = Dataset.from_dict({
        "prompt": [f"{bos} {r['prompt']}" if bos else r["prompt"] for r in rows],
        "row_json": [json.dumps(r) for r in rows],
    })  # fmt: skip
    want = [tokenizer.bos_token_id] + tokenizer(rows[0]["prompt"], add_special_tokens=False)[
        "input_ids"
    ]
    got = tokenizer(dataset[0]["prompt"])["input_ids"]
    if bos and got != want:
        raise SystemExit(f"prompt ids differ from reasonrl's encoding: {got[:8]} vs {want[:8]}")
    reward = make_reward(tokenizer, strict=settings["reward"] == "synth_strict")
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[reward],
        args=grpo_config(settings, job),
        train_dataset=dataset,
        processing_class=tokenizer,
    )
    eos_ids = set(trainer.eos_token_ids)
    gen_tokens = [0]
    raw_generate = trainer.model.generate

    def generate(*args, **kwargs):
        t = time.perf_counter()
        output = raw_generate(*args, **kwargs)
        PHASES["generate"] += time.perf_counter() - t
        gen_tokens[0] += count_generated(output, kwargs["input_ids"].shape[1], eos_ids)
        return output

    trainer.model.generate = generate
    wrapped = {"rollout": "_generate_and_score_completions", "reward": "_calculate_rewards",
               "loss_forward": "compute_loss"}  # fmt: skip
    for name, attr in wrapped.items():
        setattr(trainer, attr, timed(name, getattr(trainer, attr)))
    trainer.accelerator.backward = timed("backward", trainer.accelerator.backward)
    setup_s = time.perf_counter() - t0
    log = StepLog(out, Marks(job.get("step_every"), job.get("time_marks", [])), job.get("budget_s"))
    trl_logs: list[dict[str, Any]] = []
    threads_seen: list[int] = []

    class Bench(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            optimizer = kwargs.get("optimizer")
            if optimizer is not None:
                optimizer.step = timed("optim", optimizer.step)
            log.restart_clock()
            threads_seen.append(torch.get_num_threads())

        def on_step_end(self, args, state, control, **kwargs):
            record = {f"perf/time_{k}": v for k, v in PHASES.items()}
            record["gen_tokens"] = gen_tokens[0]
            PHASES.clear()
            gen_tokens[0] = 0

            def save(path: Path) -> None:
                save_policy(trainer.model, tokenizer, path)

            if log.end_step(state.global_step, record, save):
                control.should_training_stop = True

        def on_log(self, args, state, control, logs=None, **kwargs):
            trl_logs.append({"step": state.global_step, **(logs or {})})

    trainer.add_callback(Bench())
    trainer.train()
    with open(out / "trl_logs.jsonl", "w") as fh:
        for row in trl_logs:
            fh.write(json.dumps(row) + "\n")
    log.close({"framework": "trl", "setup_s": setup_s, "steps": trainer.state.global_step,
               "bf16": trainer.args.bf16, "threads": threads_seen, "job": job})  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
