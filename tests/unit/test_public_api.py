"""The public API ``import act_lens as al``: every name resolves, lazily and to the right object."""

import json
import subprocess
import sys

import act_lens as al

_SCRIPT = """
import json, sys
import act_lens, act_lens.cli, act_lens.evaluation.tasks, act_lens.hooks.headset
import act_lens.app.cli, act_lens.app.config, act_lens.app.preflight
import act_lens.analysis.metrics, act_lens.core.settings, act_lens.models.registry
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "transformer_lens"))))
"""


def test_import_and_the_cli_checks_do_not_import_torch():
    # Why: the CLI refuses bad input before anything slow; importing torch alone takes seconds.
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT], capture_output=True, text=True, timeout=120, check=True
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_every_public_name_resolves_and_dir_lists_it():
    assert al.__all__[0] == "__version__" and len(set(al.__all__)) == len(al.__all__)
    assert set(al.__all__) - {"__version__"} == set(al._EXPORTS)
    for name in al.__all__:
        assert getattr(al, name) is not None
    assert set(al.__all__) <= set(dir(al))


def test_functions_named_like_their_modules_stay_functions():
    import act_lens.evaluation.evaluate  # noqa: F401 - binds the submodule name on the package
    import act_lens.evaluation.generate  # noqa: F401

    assert callable(al.evaluate) and al.evaluate.__name__ == "evaluate"
    assert callable(al.generate) and al.generate.__name__ == "generate"
    try:
        al.no_such_name  # noqa: B018
    except AttributeError as err:
        assert "no_such_name" in str(err)
    else:
        raise AssertionError("unknown names must raise AttributeError")


def test_no_submodule_is_named_like_a_public_name():
    # Why: ``import act_lens.x`` binds ``x`` on the package; a public ``x`` would be shadowed.
    import pkgutil

    assert not {m.name for m in pkgutil.iter_modules(al.__path__)} & set(al.__all__)
