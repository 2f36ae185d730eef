"""``act-lens models`` and ``act-lens tasks``: what act_lens knows, what is installed, and where
a task's data must be. Reads the registries and the file system only: no torch, no model."""

from act_lens.errors import ActLensError
from act_lens.evaluation.tasks import get_task, task_names
from act_lens.evaluation.tasks.builtin import BuiltinTask
from act_lens.models.registry import KNOWN_MODELS, TINY, TINY_SHAPE, KnownModel


def _table(head: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [head, *rows]
    ]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def _installed(model: KnownModel) -> bool:
    try:
        model.part_paths()
    except ActLensError:
        return False
    return True


def models_text() -> str:
    """The known models: name, model, shape, whether installed (and the command when not).

    Example:
        >>> print(models_text())  # doctest: +SKIP
    """
    rows, missing = [], []
    for m in KNOWN_MODELS.values():
        ok = _installed(m)
        rows.append([m.name, m.hf_name, f"{m.n_layers} x {m.n_heads}", "yes" if ok else "no"])
        if not ok:
            missing.append(f"{m.name}:\n    {m.install_command}")
    rows.append(
        [TINY, "random 3-layer Llama (tests)", f"{TINY_SHAPE[0]} x {TINY_SHAPE[1]}", "built in"]
    )
    text = _table(["name", "model", "layers x heads", "installed"], rows)
    if missing:
        text += "\n\nTo install:\n" + "\n".join(missing)
    return text + "\n\nAlso: a .gguf file, a checkpoint folder or a Hugging Face name (--model)."


def _where(name: str, data_dir: str | None) -> str:
    task = get_task(name)
    if isinstance(task, BuiltinTask):
        return "built in"
    folder = f"{data_dir or '<--data-dir>'}/{task.folder}/"
    if data_dir is None:
        return folder
    try:
        files = task.data_files(data_dir, task.eval_split)
    except ActLensError:
        return f"{folder} missing"
    return f"{folder} found ({len(files)} eval file{'s' if len(files) != 1 else ''})"


def tasks_text(data_dir: str | None = None) -> str:
    """The tasks: kind, splits, and where the data must be (found or missing in ``data_dir``).

    Example:
        >>> print(tasks_text("../shared/data"))  # doctest: +SKIP
    """
    rows = []
    for name in task_names():
        task = get_task(name)
        splits = f"{task.train_split or '-'} / {task.eval_split}"
        rows.append([name, task.kind, splits, _where(name, data_dir)])
    note = (
        "Data: --data-dir DIR (laid out like shared/data), --data-file FILE (one file of the "
        "task's raw format) or hf:<dataset>."
    )
    return _table(["task", "kind", "train / eval", "data"], rows) + "\n\n" + note
