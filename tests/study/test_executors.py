"""The processes executor: points forked from a warm forkserver still run under the driver's
environment of the moment they are submitted, and a worker that dies is reported, not lost."""

from __future__ import annotations

import multiprocessing as mp

import pytest
from test_run import write_tiny  # tests/study is on sys.path (rootdir prepend)

from densescale.study import expand, load_spec
from densescale.study.executors import ProcessExecutor
from densescale.study.runner import make_task


@pytest.mark.skipif("forkserver" not in mp.get_all_start_methods(), reason="no forkserver")
def test_forked_point_sees_the_environment_set_after_the_server_started(env, tmp_path,
                                                                          monkeypatch):
    spec_path = write_tiny(tmp_path, design={"points": [{"rung": "tiny-l1-h32", "d": 10**9}]},
                           heldout=[])
    spec = load_spec(spec_path)
    (point,) = expand(spec)
    task = make_task(spec, point)
    ex = ProcessExecutor(1)
    try:
        assert ex.start_method == "forkserver"
        ex.submit(task)  # the forkserver is running after this point
        _, res = ex.next_result()
        assert not res["ok"] and "D=1000000000" in res["error"]  # ran, and failed as it must
        crash = tmp_path / "crash"
        crash.mkdir()
        armed = crash / f"{task.out.name}.crash"
        armed.touch()
        monkeypatch.setenv("DENSESCALE_STUDY_CRASH_DIR", str(crash))  # after the server started
        ex.submit(task)
        _, res = ex.next_result()
        assert not res["ok"] and not armed.exists()  # the worker read it and died by it
        monkeypatch.delenv("DENSESCALE_STUDY_CRASH_DIR")
        ex.submit(task)  # a dead worker does not stop the executor
        _, res = ex.next_result()
        assert not res["ok"] and "D=1000000000" in res["error"]
    finally:
        ex.close()
