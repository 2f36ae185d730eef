"""Work units on Ray actors: each actor loads the model itself and runs one act_lens function.

A job is a list of units, each the keyword arguments of one call ``fn(model, **unit)``. Units
run in-process (``pool=None``) or on a ``WorkerPool``; either way the results come back in the
units' order, so the caller's merge, and therefore its result, does not depend on how many
workers there were or which finished first. An actor that dies has its unit re-run on a fresh
actor; a finished unit is handed to ``on_result`` at once (checkpointing), so an interrupted job
loses only the units in flight.

Ray is optional (``pip install act-lens[ray]``); nothing here imports it before a pool starts.
"""

import contextlib
import hashlib
import importlib
import logging
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from act_lens.errors import ConfigError
from act_lens.runtime.precision import check_precision, kernels, precision_context

log = logging.getLogger(__name__)

__all__ = [
    "WorkerPool",
    "auto_workers",
    "map_units",
    "open_pool",
    "pool_scope",
    "ray_available",
    "use_pool",
    "weights_digest",
]

# Actors replaced after dying, per pool, before the job is given up.
MAX_REPLACEMENTS = 4

# Open ``pool_scope`` blocks, innermost last: (id of the model, the pools kept open for it).
_SCOPES: "list[tuple[int, list[WorkerPool]]]" = []


def ray_available() -> bool:
    """Whether Ray can be imported (the ``act-lens[ray]`` extra)."""
    try:
        importlib.import_module("ray")
    except ImportError:
        return False
    return True


def auto_workers() -> int:
    """One worker per core where Ray is installed, else 1 (in-process)."""
    return max(1, os.cpu_count() or 1) if ray_available() else 1


def weights_digest(model: Any) -> str:
    """A cheap fingerprint of a model's weights (a slice of every parameter): a worker checks
    that the copy it loaded is the driver's model."""
    digest = hashlib.sha256()
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            digest.update(name.encode())
            digest.update(p.detach().flatten()[:256].float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def _resolve(fn: str) -> Callable[..., Any]:
    module, _, name = fn.partition(":")
    if not module.startswith("act_lens.") or not name:
        raise ConfigError(f"a work unit runs an act_lens function 'module:name', got {fn!r}")
    return getattr(importlib.import_module(module), name)


def _run(model: Any, fn: str, unit: dict[str, Any], precision: str) -> Any:
    with precision_context(precision, model):
        return _resolve(fn)(model, **unit)


class _Worker:
    """The body of one Ray actor: its own model copy, one torch thread on CPU."""

    def __init__(self, load: dict[str, Any], digest: str) -> None:
        from act_lens.models.loading import load_model

        if str(load["device"]).startswith("cpu"):
            torch.set_num_threads(1)
        self.model = load_model(
            load["spec"],
            device=load["device"],
            dtype=getattr(torch, load["dtype"]),
            cache_dir=load["cache_dir"],
            hf_name=load["hf_name"],
            prepend_bos=load["prepend_bos"],
        )
        got = weights_digest(self.model)
        if got != digest:
            raise ConfigError(
                f"a worker loaded {load['spec']!r} with other weights than the driver's model "
                f"({got} vs {digest}); run with workers=1"
            )

    def run(self, fn: str, unit: dict[str, Any], precision: str) -> Any:
        return _run(self.model, fn, unit, precision)

    def ready(self) -> bool:
        return True

    def kernels(self) -> str:
        return kernels(self.model.cfg.device or "cpu")

    def pid(self) -> int:
        return os.getpid()


class WorkerPool:
    """``n`` Ray actors, each with its own copy of ``model`` loaded from the same spec.

    Args:
        model: a model from :func:`act_lens.load_model` (it records how it was loaded); a model
            built in memory has no spec and cannot be copied: use ``workers=1``.
        n: number of actors (one core each on CPU; one GPU each where CUDA is used).
        ray_address: ``None`` starts a local Ray instance (stopped on ``close``); ``"auto"``
            or ``"ray://host:10001"`` joins a running cluster (``ray start --head``).

    Raises:
        ConfigError: Ray is not installed, ``n < 2``, or the model has no load spec.

    Example:
        >>> with WorkerPool(model, 2) as pool:                                   # doctest: +SKIP
        ...     effects = head_effects(model, prompts, workers=pool)
    """

    def __init__(self, model: Any, n: int, *, ray_address: str | None = None) -> None:
        if n < 2:
            raise ConfigError(f"a WorkerPool needs at least 2 workers, got {n}; use workers=1")
        if not ray_available():
            raise ConfigError(
                f"workers={n} needs Ray: pip install 'act-lens[ray]' (or run with workers=1)"
            )
        load = getattr(model, "act_lens_load", None)
        if load is None:
            raise ConfigError(
                "this model was built in memory, so workers cannot load their own copy; load it "
                "with act_lens.load_model(...) or run with workers=1"
            )
        import ray

        self._ray = ray
        self.n = n
        self.load = dict(load)
        self.digest = weights_digest(model)
        self._started = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": False,
                "configure_logging": False,
            }
            if ray_address is None:
                kwargs["num_cpus"] = max(n, os.cpu_count() or 1)
                # Ray starts its workers at nice 15 by default: on a shared machine any other
                # process then starves the search, which is the job the user is waiting for.
                os.environ.setdefault("RAY_worker_niceness", "0")
            ray.init(address=ray_address, **kwargs)
            self._started = True
        gpu = str(self.load["device"]).startswith("cuda")
        self._actor_cls = ray.remote(num_cpus=0 if gpu else 1, num_gpus=1 if gpu else 0)(_Worker)
        if gpu:  # each actor sees one GPU as cuda:0
            self.load["device"] = "cuda"
        self.actors = [self._new_actor() for _ in range(n)]
        self.replaced = 0
        self._kernels: str | None = None

    def _new_actor(self) -> Any:
        return self._actor_cls.remote(self.load, self.digest)

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait_ready(self) -> None:
        """Block until every actor has loaded its model (a search times this apart from its
        first step). An actor that died while loading is left to :meth:`map`, which replaces it.
        """
        for actor in self.actors:
            try:
                self._ray.get(actor.ready.remote())
            except self._ray.exceptions.RayActorError:
                pass

    def kernels(self) -> str:
        """The kernels the actors' forwards run (:func:`act_lens.runtime.precision.kernels`,
        asked of each actor: on a cluster they are the workers' machines, not the driver's);
        several differing ones are joined by `` | ``, sorted."""
        if self._kernels is None:
            got = self._ray.get([actor.kernels.remote() for actor in self.actors])
            self._kernels = " | ".join(sorted(set(got)))
        return self._kernels

    def close(self) -> None:
        """Stop the actors (and the local Ray instance this pool started)."""
        for actor in self.actors:
            try:
                self._ray.kill(actor)
            except Exception:  # noqa: BLE001 - already gone
                pass
        self.actors = []
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()
            self._started = False

    def map(
        self,
        fn: str,
        units: Sequence[dict[str, Any]],
        *,
        precision: str = "fp32",
        on_result: Callable[[int, Any], None] | None = None,
        on_dispatch: Callable[[int, Any], None] | None = None,
    ) -> list[Any]:
        """``[fn(model, **unit) for unit in units]`` on the actors, in the units' order.

        A unit whose actor dies is re-run on a fresh actor; an error raised by ``fn`` itself
        is raised here as it is.
        """
        ray = self._ray
        results: list[Any] = [None] * len(units)
        pending = deque(range(len(units)))
        idle = list(self.actors)
        running: dict[Any, tuple[int, Any]] = {}
        while pending or running:
            while pending and idle:
                i, actor = pending.popleft(), idle.pop(0)
                running[actor.run.remote(fn, units[i], precision)] = (i, actor)
                if on_dispatch is not None:
                    on_dispatch(i, actor)
            ready, _ = ray.wait(list(running), num_returns=1)
            i, actor = running.pop(ready[0])
            try:
                results[i] = ray.get(ready[0])
            except ray.exceptions.RayTaskError as err:  # fn raised: the user's error
                raise err.as_instanceof_cause() from None
            except ray.exceptions.OutOfMemoryError:  # a rerun would run out again
                raise ConfigError(
                    f"a worker ran out of memory on unit {i} of {fn} ({self.n} workers): run "
                    "with fewer workers or a smaller batch size; a checkpointed search keeps "
                    "its finished units and resumes"
                ) from None
            except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError):
                if self.replaced >= MAX_REPLACEMENTS:
                    raise
                self.replaced += 1
                log.warning("a worker died; its unit %d runs again on a new worker", i)
                pending.appendleft(i)
                fresh = self._new_actor()
                self._kernels = None  # the new actor may run on another machine
                self.actors = [fresh if a is actor else a for a in self.actors]
                idle.append(fresh)
                continue
            idle.append(actor)
            if on_result is not None:
                on_result(i, results[i])
        return results


def map_units(
    model: Any,
    fn: str,
    units: Sequence[dict[str, Any]],
    *,
    pool: WorkerPool | None = None,
    precision: str = "fp32",
    on_result: Callable[[int, Any], None] | None = None,
) -> list[Any]:
    """Run ``fn(model, **unit)`` for every unit, in-process or on ``pool``; results in order."""
    check_precision(precision)
    if pool is not None:
        return pool.map(fn, units, precision=precision, on_result=on_result)
    out = []
    for i, unit in enumerate(units):
        out.append(_run(model, fn, unit, precision))
        if on_result is not None:
            on_result(i, out[-1])
    return out


def open_pool(model: Any) -> "WorkerPool | None":
    """The pool a :func:`pool_scope` keeps open for ``model`` (the latest), or ``None``."""
    for scope_model, pools in reversed(_SCOPES):
        if scope_model == id(model):
            live = [p for p in pools if p.actors]
            if live:
                return live[-1]
    return None


@contextlib.contextmanager
def use_pool(
    model: Any, workers: "int | WorkerPool | None", *, ray_address: str | None = None
) -> Iterator["WorkerPool | None"]:
    """A pool for ``workers``: the given pool (left open); ``None`` (in-process) for
    ``None``/1; for an int > 1 the pool a :func:`pool_scope` keeps open for this model with
    that many actors, else a new one (kept by the scope, or closed at the end)."""
    if isinstance(workers, WorkerPool):
        yield workers
        return
    if workers is not None and workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    if workers is None or workers == 1:
        yield None
        return
    scope = next((pools for m, pools in reversed(_SCOPES) if m == id(model)), None)
    if scope is not None:
        same = [p for p in scope if p.n == workers and p.actors]
        if not same:
            scope.append(WorkerPool(model, workers, ray_address=ray_address))
        yield (same or scope)[-1]
        return
    pool = WorkerPool(model, workers, ray_address=ray_address)
    try:
        yield pool
    finally:
        pool.close()


@contextlib.contextmanager
def pool_scope(
    model: Any, workers: "int | WorkerPool | None" = None, *, ray_address: str | None = None
) -> Iterator["WorkerPool | None"]:
    """Keep worker pools open for every job on ``model`` inside the block: a search and the
    evaluations after it share one set of actors instead of starting Ray and loading the model
    again (about 10 s each here). Pools the jobs start are closed when the block ends.

    Args:
        model: the model the jobs run (pools are per model).
        workers: start a pool of that many actors now (``None``/1: none until a job asks), or
            share an open ``WorkerPool`` (left open).
        ray_address: as :class:`WorkerPool`.

    Example:
        >>> with pool_scope(model, 2):                                           # doctest: +SKIP
        ...     hs = search_heads(model, calib, config=SearchConfig(workers=2)).head_set
        ...     r = evaluate(model, "sst2", ActConfig(hs), workers="auto")  # the same actors
    """
    pools: list[WorkerPool] = [workers] if isinstance(workers, WorkerPool) else []
    scope = (id(model), pools)
    _SCOPES.append(scope)
    try:
        if isinstance(workers, int) and workers > 1:
            pools.append(WorkerPool(model, workers, ray_address=ray_address))
        yield open_pool(model)
    finally:
        del _SCOPES[next(i for i, s in enumerate(_SCOPES) if s is scope)]
        for pool in reversed(pools):  # the pool that started Ray stops it last
            if pool is not workers:
                pool.close()
