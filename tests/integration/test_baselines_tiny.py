"""content_free_scores on the tiny model: classification and multiple choice."""

from __future__ import annotations

from pathlib import Path

import pytest

from act_lens.errors import ConfigError
from act_lens.evaluation.baselines import content_free_scores, contextual_calibration
from act_lens.evaluation.evaluate import evaluate

pytestmark = pytest.mark.data


def test_multiple_choice_calibration_end_to_end(tiny, data_dir: Path) -> None:
    base = evaluate(tiny, "copa", data=data_dir, limit=6, progress=False)
    cf = content_free_scores(tiny, "copa", data=data_dir)
    cc = contextual_calibration(base, cf)
    # the byte tokenizer gives " A" and " B" the same first token, so the prior is uniform here
    # (a real prior is checked on the bundled model in tests/real/test_baselines_real.py)
    assert cc.predictions == base.predictions
    assert cc.uids == base.uids and len(cc.predictions) == 6
    assert cc.info["contextual_calibration"] == pytest.approx([float(x) for x in cf])


def test_n_options_is_for_multiple_choice(tiny, data_dir: Path) -> None:
    with pytest.raises(ConfigError, match="n_options"):
        content_free_scores(tiny, "sst2", data=data_dir, n_options=2)
