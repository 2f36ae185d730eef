"""config.json files of earlier releases hold a field RunConfig no longer has (``extra``, always
empty): they still replay with ``--config`` and still resume in their folder."""

import json
from dataclasses import asdict, replace

from act_lens.app.config import RETIRED_FIELDS, RunConfig
from act_lens.app.config_file import read_config_file
from act_lens.app.outdir import check_out


def _old_config(cfg: RunConfig) -> dict:
    return {**asdict(cfg), "extra": {}}


def test_an_old_config_json_replays_and_resumes(tmp_path):
    assert "extra" in RETIRED_FIELDS and not hasattr(RunConfig(command="eval"), "extra")
    cfg = RunConfig(command="eval", out=str(tmp_path / "run"), limit=4)
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(_old_config(cfg)))
    (folder / "results.json").write_text("{}")
    values, ignored = read_config_file(str(folder / "config.json"), RunConfig)
    assert "extra" not in values and ignored == {"command": "eval", "out": str(folder)}
    assert values["limit"] == 4
    assert check_out(cfg) == "resume"  # the retired key is no difference
    assert check_out(replace(cfg, limit=5), overwrite=True) == "overwrite"
