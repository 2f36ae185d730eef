"""Make ``lm_eval --model act_lens`` work once act_lens is installed.

lm-eval 0.4.13 resolves ``--model NAME`` against its model registry before any user code runs,
and it has no plugin entry point for models. So act_lens installs ``act_lens_lm_eval.pth``,
whose one line imports this module at interpreter start. It imports nothing else and only
adds an import hook: when (and only when) a process imports ``lm_eval.api.registry``, the name
``act_lens`` is registered there as a lazy entry (a ``"module:Class"`` string, lm-eval's own
lazy-registration form), after lm-eval's built-in names. act_lens itself, torch and the model
are imported only when lm-eval looks the name up. ``python -S`` skips ``.pth`` files; then
``import act_lens.integrations.lm_eval`` registers the class explicitly.
"""

import importlib.abc
import importlib.machinery
import sys
import warnings

REGISTRY = "lm_eval.api.registry"
NAME = "act_lens"
TARGET = "act_lens.integrations.lm_eval:ActLensLM"


class _RegisterAfterExec(importlib.abc.Loader):
    """Wraps lm-eval's own loader of its registry module; adds the entry once it has run."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.loader, name)  # get_source, get_filename... of the real loader

    def create_module(self, spec):  # type: ignore[no-untyped-def]
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:  # type: ignore[no-untyped-def]
        self.loader.exec_module(module)
        try:
            # lm-eval adds its built-in names to an *empty* registry only: add them first.
            import lm_eval.models  # noqa: F401

            if NAME not in module.model_registry:
                module.model_registry.register(NAME, target=TARGET)
        except Exception as err:  # noqa: BLE001 - never break lm-eval itself
            warnings.warn(
                f"act_lens could not register its lm-eval model {NAME!r} ({err}); "
                "import act_lens.integrations.lm_eval to register it",
                stacklevel=2,
            )


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):  # type: ignore[no-untyped-def]
        if fullname != REGISTRY:
            return None
        sys.meta_path.remove(self)  # one registry per process
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is not None and spec.loader is not None:
            spec.loader = _RegisterAfterExec(spec.loader)
        return spec


def install() -> None:
    """Add the hook (idempotent; does nothing if lm-eval's registry is already imported)."""
    if REGISTRY in sys.modules or any(isinstance(f, _Finder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _Finder())


install()
