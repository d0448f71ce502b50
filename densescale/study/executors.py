"""Executors: where study points run. The driver submits tasks and collects results; only the
driver writes the results database.

- ``local``: one point after another in this process.
- ``processes``: up to ``num_cpus`` points at a time in worker processes of this machine, one
  point per process, so each starts clean and its memory is returned when it ends. Where the
  platform has it (Linux, macOS), each is forked from a forkserver that has imported torch,
  transformers and densescale once: a spawned process spends ~7 s of a 2-core machine's CPU
  importing them, per point. The point runs under the driver's environment and working
  directory of the moment it was submitted, as a spawned one would; elsewhere, spawned.
- ``ray``: one Ray task per point (``num_gpus=1`` when the cluster has GPUs, else a slice of
  ``num_cpus``), results streamed back with ``ray.wait``. A worker that dies is retried by Ray
  (``max_retries`` on the task); what still fails comes back as a failed result for the driver's
  own retry accounting.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections import deque
from typing import Any, Protocol

from densescale.errors import ConfigError
from densescale.study.runner import Task, run_point, run_point_dict

ENV_PREFIXES = ("DENSESCALE_", "HF_", "TRANSFORMERS_", "OMP_NUM_THREADS")


class Executor(Protocol):
    capacity: int

    def submit(self, task: Task) -> None: ...

    def next_result(self) -> tuple[Task, dict[str, Any]]: ...

    def close(self) -> None: ...


class LocalExecutor:
    """Runs submitted tasks one at a time, in this process, in submission order."""

    capacity = 1

    def __init__(self) -> None:
        self._queue: deque[Task] = deque()

    def submit(self, task: Task) -> None:
        self._queue.append(task)

    def next_result(self) -> tuple[Task, dict[str, Any]]:
        task = self._queue.popleft()
        return task, run_point(task)

    def close(self) -> None:
        pass


# what a point process needs, imported once by the forkserver (its children inherit them)
PRELOAD = ["torch", "transformers.models.bert.modeling_bert", "densescale.train",
           "densescale.evaluate", "densescale.study.runner"]


def _start_method() -> str:
    import multiprocessing as mp

    return "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"


def run_point_in(env: dict[str, str], cwd: str, task: dict[str, Any]) -> dict[str, Any]:
    """:func:`run_point_dict` under the driver's environment and working directory (a forked
    worker inherits the forkserver's, which are those of when it started)."""
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    return run_point_dict(task)


class ProcessExecutor:
    """Runs up to ``workers`` points at a time, each in a fresh process (forked from a
    forkserver with the imports done, else spawned).

    Args:
        workers: points side by side (None: the machine's CPU count).
        start_method: "forkserver" or "spawn"; None = forkserver where available.
    """

    def __init__(self, workers: int | None = None, start_method: str | None = None):
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        self.capacity = max(1, workers or os.cpu_count() or 1)
        self.start_method = start_method or _start_method()
        ctx = mp.get_context(self.start_method)
        if self.start_method == "forkserver":
            ctx.set_forkserver_preload(PRELOAD)  # no effect once this process's server runs
        self._new_pool = lambda: ProcessPoolExecutor(self.capacity, mp_context=ctx,
                                                     max_tasks_per_child=1)
        self._pool = self._new_pool()
        self._pending: dict[Any, Task] = {}

    def submit(self, task: Task) -> None:
        from concurrent.futures.process import BrokenProcessPool

        args = (dict(os.environ), os.getcwd(), task.to_dict())
        try:
            fut = self._pool.submit(run_point_in, *args)
        except BrokenProcessPool:  # a worker died: its point was reported failed; start afresh
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()
            fut = self._pool.submit(run_point_in, *args)
        self._pending[fut] = task

    def next_result(self) -> tuple[Task, dict[str, Any]]:
        from concurrent.futures import FIRST_COMPLETED, wait

        done, _ = wait(list(self._pending), return_when=FIRST_COMPLETED)
        fut = next(iter(done))
        task = self._pending.pop(fut)
        try:
            return task, fut.result()
        except Exception:  # noqa: BLE001 - the worker process died (e.g. killed)
            return task, {"ok": False, "point_key": task.key, "error": traceback.format_exc()}

    def close(self) -> None:
        for fut in self._pending:
            fut.cancel()
        self._pending.clear()
        self._pool.shutdown(wait=True, cancel_futures=True)


class RayExecutor:
    """One Ray task per point.

    Args:
        address: Ray cluster address ("auto", "ray://host:10001", ...); None starts a local
            Ray instance with ``num_cpus`` CPUs.
        num_cpus: CPUs of the local instance (ignored with an address).
        cpus_per_task: CPUs each point reserves when it runs without a GPU.
        gpus_per_task: GPUs each point reserves; None = 1 when the cluster has GPUs, else 0.
        max_retries: Ray retries of a task whose worker process died.
    """

    def __init__(self, address: str | None = None, num_cpus: int | None = None,
                 cpus_per_task: float = 1.0, gpus_per_task: float | None = None,
                 max_retries: int = 2):
        try:
            import ray
        except ImportError:
            raise ConfigError("--executor ray needs Ray: pip install 'densescale[ray]'") from None
        self.ray = ray
        self._started = False
        if not ray.is_initialized():
            env = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIXES)}
            kwargs: dict[str, Any] = {"runtime_env": {"env_vars": env}, "log_to_driver": True}
            if address:
                ray.init(address=address, **kwargs)
            else:
                ray.init(num_cpus=num_cpus, include_dashboard=False, **kwargs)
            self._started = True
        res = ray.cluster_resources()
        gpus = float(res.get("GPU", 0))
        self.num_gpus = (1.0 if gpus >= 1 else 0.0) if gpus_per_task is None else gpus_per_task
        self.num_cpus = cpus_per_task
        if self.num_gpus > 0:
            self.capacity = max(1, int(gpus // self.num_gpus))
        else:
            self.capacity = max(1, int(float(res.get("CPU", 1)) // max(cpus_per_task, 1e-9)))
        self._remote = ray.remote(run_point_dict).options(
            num_cpus=self.num_cpus, num_gpus=self.num_gpus, max_retries=max_retries,
            retry_exceptions=False)
        self._pending: dict[Any, Task] = {}
        print(f"ray: {res.get('CPU', 0):g} CPUs, {gpus:g} GPUs; each point takes "
              f"{self.num_cpus:g} CPU / {self.num_gpus:g} GPU; {self.capacity} at a time",
              file=sys.stderr)

    def submit(self, task: Task) -> None:
        self._pending[self._remote.remote(task.to_dict())] = task

    def next_result(self) -> tuple[Task, dict[str, Any]]:
        ready, _ = self.ray.wait(list(self._pending), num_returns=1)
        ref = ready[0]
        task = self._pending.pop(ref)
        try:
            return task, self.ray.get(ref)
        except Exception:  # noqa: BLE001 - worker died more often than Ray retries it
            return task, {"ok": False, "point_key": task.key,
                          "error": traceback.format_exc()}

    def close(self) -> None:
        for ref in list(self._pending):
            self.ray.cancel(ref, force=True)
        self._pending.clear()
        if self._started:
            self.ray.shutdown()


def make_executor(name: str, address: str | None = None, num_cpus: int | None = None,
                  cpus_per_task: float = 1.0, gpus_per_task: float | None = None,
                  max_retries: int = 2) -> Executor:
    if name == "local":
        if address:
            raise ConfigError("--address only applies to --executor ray")
        return LocalExecutor()
    if name == "processes":
        if address:
            raise ConfigError("--address only applies to --executor ray")
        return ProcessExecutor(num_cpus)
    if name == "ray":
        return RayExecutor(address, num_cpus, cpus_per_task, gpus_per_task, max_retries)
    raise ConfigError(f"--executor: unknown executor {name!r} (use local, processes or ray)")
