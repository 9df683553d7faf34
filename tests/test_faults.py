"""Faults of the build and its caches: a build killed with kill -9, a Dask worker killed during a notebook, two builds
at once, a read-only cache and a full disk. Tiny notebooks stand in for the book's (the same code path: Dask tasks,
papermill kernels, atomic writes, fingerprints, the build lock)."""

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest

from lintf_core import execution

ROOT = Path(__file__).resolve().parents[1]

# A notebook whose number is known (the sum of 1,000 normals of `seed`); it can sleep, beating a heartbeat file, and
# write the pid of its Dask worker (kernel -> its process, python -m lintf_core.execution -> the worker) on its first
# try.
NOTEBOOK = '''# %% tags=["parameters"]
profile = "quick"

# %%
import os, time
from pathlib import Path
import numpy as np


def parent(pid):
    return int(Path(f"/proc/{{pid}}/stat").read_text().rsplit(")", 1)[1].split()[1])


mark = os.environ.get("LINTF_TEST_MARK")  # where set, only the first try sleeps
first = not mark or not Path(mark).exists()
if mark and first:
    Path(mark).write_text(str(parent(os.getppid())))
end = time.time() + float(os.environ.get("LINTF_TEST_SLEEP", "0")) * {sleeps} * first
while time.time() < end:
    Path(os.environ["LINTF_TEST_HEARTBEAT"]).write_text(str(time.time()))
    time.sleep(0.2)

# %%
print(f"{{float(np.random.default_rng({seed}).normal(size=1000).sum()):.12f}}")
'''

# One build of tiny notebooks, as book.build runs its notebooks: under the build lock, reusing fingerprinted ones.
DRIVER = """
import json, sys
from pathlib import Path
from lintf_core import book, execution
sources, out = [Path(p) for p in json.loads(sys.argv[1])], Path(sys.argv[2])
book.BUILD = out.parent
with book.build_lock():
    execution.run_notebooks(sources, out, {"profile": "quick"}, {}, out.parent / "timings.json", jobs=2, reuse=True)
"""


def _notebooks(folder, *specs):
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, seed, sleeps in specs:
        path = folder / f"{name}.py"
        path.write_text(NOTEBOOK.format(seed=seed, sleeps=int(sleeps)))
        paths.append(path)
    return paths


def _expected(seed):
    return f"{float(np.random.default_rng(seed).normal(size=1000).sum()):.12f}"


def _printed(path):
    cells = nbformat.read(path, as_version=4).cells
    return [o.get("text", "").strip() for cell in cells if cell.cell_type == "code" for o in cell.outputs
            if o.get("name") == "stdout"]


def _outputs(path):
    """A notebook's code cells: their sources and outputs (not timings or metadata)."""
    cells = nbformat.read(path, as_version=4).cells
    return [(c.source, [{k: v for k, v in o.items() if k != "metadata"} for o in c.outputs])
            for c in cells if c.cell_type == "code"]


def _driver(sources, out, env, **kwargs):
    return subprocess.Popen([sys.executable, "-c", DRIVER, json.dumps([str(s) for s in sources]), str(out)],
                            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            **kwargs)


def _wait_for(condition, seconds, what):
    deadline = time.time() + seconds
    while not condition():
        if time.time() > deadline:
            raise AssertionError(f"waited {seconds} s for {what}")
        time.sleep(0.2)


def test_a_build_killed_with_kill_9_leaves_no_half_notebook_and_the_next_reuses_what_was_finished(tmp_path):
    sources = _notebooks(tmp_path / "src", ("fig01_fast", 1, 0), ("fig02_slow", 2, 1))
    out, heartbeat = tmp_path / "build" / "executed", tmp_path / "heartbeat"
    env = {**os.environ, "LINTF_TEST_SLEEP": "300", "LINTF_TEST_HEARTBEAT": str(heartbeat)}
    build = _driver(sources, out, env)
    _wait_for(lambda: (out / "fig01_fast.ipynb").exists() and heartbeat.exists(), 120, "the first notebook")
    build.send_signal(signal.SIGKILL)
    build.wait()
    # its workers, their notebook processes and kernels go with it: the slow notebook's heartbeat stops
    time.sleep(3)
    beat = heartbeat.read_text()
    time.sleep(3)
    assert heartbeat.read_text() == beat, "a notebook of the killed build is still running"
    assert sorted(p.name for p in out.iterdir()) == ["fig01_fast.ipynb"], "only the finished notebook, whole"
    finished = (out / "fig01_fast.ipynb").stat().st_mtime_ns

    env["LINTF_TEST_SLEEP"] = "0"
    again = _driver(sources, out, env)
    log = again.communicate(timeout=300)[0]
    assert again.returncode == 0, log
    assert "fig01_fast.py reused" in log and "fig02_slow.py (profile quick) starts" in log
    assert (out / "fig01_fast.ipynb").stat().st_mtime_ns == finished

    whole = tmp_path / "whole" / "executed"  # an uninterrupted build: the same notebooks
    uninterrupted = _driver(sources, whole, env)
    assert uninterrupted.wait(timeout=300) == 0
    for source in sources:
        assert _outputs(out / f"{source.stem}.ipynb") == _outputs(whole / f"{source.stem}.ipynb")
    assert _printed(out / "fig02_slow.ipynb") == [_expected(2)]


def test_a_worker_killed_during_a_notebook_is_replaced_and_the_build_completes_with_the_same_numbers(
        tmp_path, monkeypatch, capsys):
    """On a given scheduler (a 2-worker LocalCluster here): the worker running the notebook is killed with kill -9;
    Dask restarts it and runs the notebook again."""
    from distributed import LocalCluster

    mark = tmp_path / "worker-pid"
    monkeypatch.setenv("LINTF_TEST_MARK", str(mark))
    monkeypatch.setenv("LINTF_TEST_SLEEP", "300")  # the first try sleeps until killed; the second finds the mark
    monkeypatch.setenv("LINTF_TEST_HEARTBEAT", str(tmp_path / "heartbeat"))
    sources = _notebooks(tmp_path / "src", ("fig01_victim", 5, 1))

    def kill_the_worker():
        _wait_for(mark.exists, 120, "the notebook's worker")
        time.sleep(0.5)
        os.kill(int(mark.read_text()), signal.SIGKILL)

    killer = threading.Thread(target=kill_the_worker, daemon=True)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, memory_limit=0, dashboard_address=":0",
                      silence_logs=logging.CRITICAL) as local:
        killer.start()
        execution.run_notebooks(sources, tmp_path / "out", {"profile": "quick"}, {}, tmp_path / "timings.json",
                           scheduler=local.scheduler_address)
    killer.join()
    assert _printed(tmp_path / "out" / "fig01_victim.ipynb") == [_expected(5)]
    assert "fig01_victim.py (profile quick) starts again (its worker was lost)" in capsys.readouterr().out


def test_two_builds_at_once_wait_one_for_the_other_and_agree(tmp_path):
    sources = _notebooks(tmp_path / "src", ("fig01_shared", 3, 1))
    out = tmp_path / "build" / "executed"
    env = {**os.environ, "LINTF_TEST_SLEEP": "4", "LINTF_TEST_HEARTBEAT": str(tmp_path / "heartbeat")}
    first = _driver(sources, out, env)
    _wait_for((tmp_path / "build" / "build.lock").exists, 60, "the first build's lock")
    second = _driver(sources, out, env)
    logs = [first.communicate(timeout=300)[0], second.communicate(timeout=300)[0]]
    assert first.returncode == 0 and second.returncode == 0, logs
    assert "another build of this checkout is running" in logs[1]
    assert len([line for line in logs[1].splitlines() if "another build" in line]) == 1
    assert "fig01_shared.py reused" in logs[1]
    assert sorted(p.name for p in out.iterdir()) == ["fig01_shared.ipynb"]
    assert _printed(out / "fig01_shared.ipynb") == [_expected(3)]


@contextlib.contextmanager
def _filesystem(folder, options):
    """A tmpfs mounted on `folder` with `options` (root where mounting is allowed), else None; unmounted after."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                                           capture_output=True).returncode != 0:
        yield None
        return
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True)


def _one_line_error(result, folder, reason):
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1, result.stderr
    assert f"cannot write to {folder}" in lines[0] and reason in lines[0] and "Traceback" not in result.stderr


def test_a_read_only_cache_stops_the_build_and_train_with_one_line_naming_it(tmp_path):
    cache = tmp_path / "cache"
    with _filesystem(cache, "ro,size=1m") as mounted:
        if mounted is None:
            if os.geteuid() == 0:
                pytest.skip("root without the right to mount: chmod cannot make a folder read-only for root")
            cache.chmod(0o555)
        env = {**os.environ, "LINTF_CACHE_DIR": str(cache)}
        built = subprocess.run([sys.executable, "-m", "lintf_core", "book", "--profile", "quick"], env=env, cwd=ROOT,
                               capture_output=True, text=True, timeout=120)
        _one_line_error(built, cache, "Read-only file system" if mounted else "Permission denied")
        trained = subprocess.run([sys.executable, "-m", "lintf_core", "train", "--setting", "setting1", "--iters",
                                  "5", "--seeds", "0", "--quiet"], env=env, cwd=ROOT, capture_output=True, text=True,
                                 timeout=120)
        _one_line_error(trained, cache, "Read-only file system" if mounted else "Permission denied")
        assert not any(cache.rglob("*")), "nothing written"


def _file_size_limit(limit):
    def limit_files():
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG), not the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return limit_files


def test_a_full_disk_stops_train_with_one_line_and_leaves_no_half_written_entry(tmp_path):
    """A 64 KiB filesystem where one can be mounted, else a 64 KiB limit on the size of any file the process
    writes (RLIMIT_FSIZE); a 6-seed run's entry is larger."""
    cache = tmp_path / "cache"
    with _filesystem(cache, "size=64k") as mounted:
        env = {**os.environ, "LINTF_CACHE_DIR": str(cache)}
        trained = subprocess.run([sys.executable, "-m", "lintf_core", "train", "--setting", "setting1", "--iters",
                                  "300", "--seeds", "0-5", "--quiet"], env=env, cwd=ROOT, capture_output=True,
                                 text=True, timeout=300, preexec_fn=None if mounted else _file_size_limit(64 * 1024))
        _one_line_error(trained, cache, "No space left on device" if mounted else "File too large")
        written = [p for p in cache.rglob("*") if p.is_file()]
        assert all(p.parent.name == "locks" and p.stat().st_size == 0 for p in written), written
