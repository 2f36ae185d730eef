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
        pytest.skip(f"benchmark data directory {path} not found; pass --data-dir=PATH to run data tests")
    return path
