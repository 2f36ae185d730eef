"""Which known models act_lens supports, and how well: writes figures/support_matrix.{md,json}.

For each installed model (smollm2-135m, gemma3-270m, qwen2.5-coder-1.5b): hook_pattern
efficacy (the self-check), the pattern shape under GQA for a 16-token prompt, sliding-window
layers, chat template, greedy generation parity with HF ``generate`` (12 tokens, a fresh HF
model from the weight cache, not the bridge's wrapped one whose attention modules are
replaced), cold and cached load time, and one 64-token forward. Models whose packages are
missing are listed as skipped, with the install command. One model is in memory at a time
(Qwen alone needs ~9 GB).

    python analyses/support_matrix.py [--models NAME ...] [--no-cold] [--out figures]

``--no-cold`` skips the cold load (a fresh temporary cache: assemble + dequantize + store) and
reports only the load from the default cache.
"""

import argparse
import gc
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from act_lens.errors import ModelLoadError
from act_lens.evaluation.generate import generate, prompt_ids
from act_lens.hooks.arch import layer_windows
from act_lens.hooks.check import check_pattern_editable
from act_lens.hooks.names import pattern_hook
from act_lens.models import loading
from act_lens.models.registry import KNOWN_MODELS

PROMPT = "What is the capital of France?"
TEXT = (
    "Attention sinks are tokens that receive a large share of attention regardless of their "
    "meaning. The first token is the best known one, but later tokens such as punctuation and "
    "line breaks can become sinks too, and calibrating them can improve accuracy on tasks."
)


def _timed(fn: Any) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _tokens(model: Any, n: int) -> torch.Tensor:
    ids = model.tokenizer(TEXT * 4, return_tensors="pt").input_ids[:, :n]
    assert ids.shape[1] == n, "TEXT too short for the requested length"
    return ids


def measure(name: str, cold: bool) -> dict[str, Any]:
    known = KNOWN_MODELS[name]
    row: dict[str, Any] = {"model": name, "hf_name": known.hf_name}
    try:
        known.part_paths()
    except ModelLoadError:
        return {**row, "status": "skipped", "reason": f"not installed: {known.install_command}"}
    tmp = Path(tempfile.mkdtemp(prefix="act_lens_cold_")) if cold else None
    try:
        if tmp is not None:
            model, row["cold_load_s"] = _timed(lambda: loading.load_model(name, cache_dir=tmp))
            del model
            gc.collect()
        cache_dir = tmp  # the cached load reuses what the cold load wrote (or the default cache)
        model, row["cached_load_s"] = _timed(lambda: loading.load_model(name, cache_dir=cache_dir))
        cfg = model.cfg
        row.update(
            status="ok",
            n_layers=int(cfg.n_layers),
            n_heads=int(cfg.n_heads),
            n_kv_heads=int(getattr(cfg, "n_key_value_heads", None) or cfg.n_heads),
            d_head=int(cfg.d_head),
        )
        check = check_pattern_editable(model, raise_on_fail=False)
        row["pattern_editable"] = check.ok
        row["min_logit_change"] = min(check.max_logit_change)
        shapes: dict[str, list[int]] = {}

        def keep(pattern: torch.Tensor, hook: Any) -> torch.Tensor:
            shapes[hook.name] = list(pattern.shape)
            return pattern

        with torch.inference_mode():
            model.run_with_hooks(_tokens(model, 16), fwd_hooks=[(pattern_hook(0), keep)])
        row["pattern_shape_16"] = shapes[pattern_hook(0)]
        windows = layer_windows(model)
        row["sliding_layers"] = sorted(windows)
        row["window"] = sorted(set(windows.values()))
        row["chat_template"] = bool(getattr(model.tokenizer, "chat_template", None))
        chat = known.chat_template and row["chat_template"]
        row["generation_chat"] = chat
        toks64 = _tokens(model, 64)
        times = []
        with torch.inference_mode():
            for _ in range(3):  # the first run is a warm-up
                t0 = time.perf_counter()
                model(toks64)
                times.append(time.perf_counter() - t0)
        row["forward_64_s"] = min(times[1:])
        ours = generate(model, PROMPT, chat=chat, max_new_tokens=12, stop_at_eos=False)
        ids = prompt_ids(model, PROMPT, chat=chat)
        pad = model.tokenizer.pad_token_id
        row["generation_text"] = ours.text
        del model
        gc.collect()
        # A fresh HF model from the weight cache: the bridge's wrapped model has its
        # attention modules replaced, so it is not an independent reference.
        gguf = loading._known_gguf_path(known, cache_dir)
        hf, _ = loading._load_gguf(gguf, cache_dir, known.architectures, sha256=known.sha256)
        with torch.inference_mode():
            ref = hf.generate(
                torch.tensor([ids]),
                max_new_tokens=12,
                do_sample=False,
                attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                pad_token_id=pad,
            )
        ref_new = ref[0, len(ids) :].tolist()
        # HF generate stops at an EOS token even with max_new_tokens; ours ran on (stop_at_eos=False).
        row["generation_parity"] = list(ours.new_tokens[: len(ref_new)]) == ref_new
        row["generation_tokens_compared"] = len(ref_new)
        if not row["generation_parity"]:
            row["generation_hf"] = ref_new
        del hf
        gc.collect()
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return row


def _yes(v: Any) -> str:
    return "yes" if v else "no"


def to_markdown(rows: list[dict[str, Any]]) -> str:
    head = (
        "| model | status | layers x heads (KV) | hook_pattern editable | pattern shape, 16 tokens | "
        "sliding-window layers | chat template | generation = HF generate | cold load s | "
        "cached load s | 64-token forward s |\n|" + "---|" * 11 + "\n"
    )
    lines = []
    for r in rows:
        if r["status"] != "ok":
            lines.append(f"| {r['model']} | {r['status']}: {r['reason']} |" + " |" * 9)
            continue
        sliding = (
            f"{len(r['sliding_layers'])}/{r['n_layers']} (window {', '.join(map(str, r['window']))})"
            if r["sliding_layers"]
            else "none"
        )
        cold = f"{r['cold_load_s']:.1f}" if "cold_load_s" in r else "n/m"
        lines.append(
            f"| {r['model']} | ok | {r['n_layers']} x {r['n_heads']} ({r['n_kv_heads']}) | "
            f"{_yes(r['pattern_editable'])} (min change {r['min_logit_change']:.2g}) | "
            f"{r['pattern_shape_16']} | {sliding} | {_yes(r['chat_template'])} | "
            f"{_yes(r['generation_parity'])} ({'chat' if r['generation_chat'] else 'plain'}) | "
            f"{cold} | {r['cached_load_s']:.1f} | {r['forward_64_s']:.2f} |"
        )
    note = (
        "\n\nPattern shape is `[batch, head_index, query_pos, key_pos]` of `blocks.0.attn.hook_pattern`: "
        "one map per query head under GQA. Times are wall-clock seconds on the machine that ran "
        "`analyses/support_matrix.py` (shared CPU; compare ratios, not absolutes). Cold load: a fresh "
        "cache (assemble parts + dequantize GGUF + write the cache); cached load: from the weight cache.\n"
    )
    return head + "\n".join(lines) + note


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="*", default=list(KNOWN_MODELS))
    parser.add_argument("--no-cold", action="store_true", help="skip the cold load")
    parser.add_argument("--out", default="figures")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "support_matrix.json"
    # Rows of models not measured in this run are kept from the previous file.
    old = {r["model"]: r for r in json.loads(path.read_text())} if path.is_file() else {}
    for name in args.models:
        print(f"== {name}", flush=True)
        row = measure(name, cold=not args.no_cold)
        print(json.dumps(row), flush=True)
        old[name] = row
        rows = [old[m] for m in [*KNOWN_MODELS, *old] if m in old]
        rows = list({r["model"]: r for r in rows}.values())
        # Written after each model, so a crash on a later model keeps the earlier rows.
        path.write_text(json.dumps(rows, indent=2))
        (out / "support_matrix.md").write_text(to_markdown(rows))
    print((out / "support_matrix.md").read_text())


if __name__ == "__main__":
    main()
