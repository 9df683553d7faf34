"""Executing notebooks: one in its own process with papermill (execute; python -m lintf_core.execution SOURCE OUTPUT
PARAMETERS), and a build's notebooks as Dask tasks with progress lines (run_notebooks), each executed notebook written
whole with its fingerprint so that a later build can reuse it. book.py assembles the site from what this executes."""

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from . import cache, cluster
from .errors import check_positive

ROOT = Path(__file__).resolve().parent.parent
KERNEL = "lintf"


def execute(source, output, parameters):
    """Execute one Jupytext source with papermill into `output` (written only if every cell succeeds)."""
    import jupytext
    import papermill
    from papermill.exceptions import PapermillExecutionError
    from traitlets.config import Config

    notebook = jupytext.read(source)
    notebook.metadata["kernelspec"] = {"name": KERNEL, "display_name": "lintf", "language": "python"}
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=output.parent) as tmp, \
            tempfile.TemporaryDirectory(prefix="lintf-kernel-") as sockets:
        raw, executed = Path(tmp) / f"{source.stem}.ipynb", Path(tmp) / f"{source.stem}.out.ipynb"
        jupytext.write(notebook, raw)
        # The kernel talks over Unix sockets in a folder of its own, not TCP ports, which two notebooks starting at
        # once on one machine could both draw ("Address already in use"). A socket's path must stay short (108 bytes
        # on Linux): a fresh folder in the temporary one, not beside the output.
        sockets_config = Config({"KernelManager": {"transport": "ipc", "ip": f"{sockets}/kernel"}})
        try:
            # the kernel is killed once the last cell is done ("immediate"), not asked to exit (~1-2 s a notebook
            # for torch's teardown): every result is in the notebook and the cache by then
            papermill.execute_notebook(str(raw), str(executed), parameters=parameters, kernel_name=KERNEL,
                                       cwd=str(ROOT / "notebooks"), progress_bar=False, shutdown_kernel="immediate",
                                       config=sockets_config)
        except PapermillExecutionError as error:
            failed = papermill_failed_cell(executed, error.exec_count)
            print(f"\n{source.name}: cell [{error.exec_count}] failed: {error.ename}: {error.evalue}\n"
                  f"--- cell source ---\n{failed}\n-------------------", file=sys.stderr)
            raise SystemExit(1)
        label_injected_parameters(executed)
        executed.replace(output)


INJECTED_HEADING = "# The parameters this page was executed with (papermill's -p; they override the cell above)"


def label_injected_parameters(path):
    """Keep papermill's injected "# Parameters" cell on the page, under a heading that says what it is: a reader of
    the paper edition sees `profile = "paper"` right below the parameters cell's defaults (`profile = "quick"`),
    not the defaults alone; every figure caption also states the effective fidelity."""
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags:
            lines = [line for line in cell.source.splitlines() if line.strip() and line.strip() != "# Parameters"
                     and line != INJECTED_HEADING]
            cell.source = "\n".join([INJECTED_HEADING, *lines])
    nbformat.write(notebook, path)


def papermill_failed_cell(path, exec_count):
    import nbformat

    try:
        nb = nbformat.read(path, as_version=4)
    except Exception:
        return "(unavailable)"
    for cell in nb.cells:
        if cell.get("execution_count") == exec_count and cell.cell_type == "code":
            return cell.source
    return "(unavailable)"


def _clock(seconds):
    return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"


# Each notebook's time from an empty result cache, two notebooks side by side on one thread each as make book runs
# them, from the last fresh-clone builds on this project's machines (kept as data beside this module; PERFORMANCE.md
# says which build). Until this machine has built a profile once (_build/timings-*.json), what is left is forecast
# from these, scaled by how fast this build has gone so far; they also set the order (longest first).
MEASURED_SECONDS = json.loads((Path(__file__).with_name("notebook_seconds.json")).read_text())


def _left(remaining, timings, done, measured=None, jobs=1, running=None):
    """', about N left' for the notebooks not yet finished, `jobs` at a time: each one's time in the last build of
    this profile (`timings`), else its `measured` time scaled by this build's pace so far (the seconds the notebooks
    `done` took here, {stem: seconds}, against their measured times), else the mean so far; a notebook `running`
    ({stem: seconds so far}) counts with what it has still to go."""
    running = running or {}
    if not remaining and not running:
        return ""
    measured = measured or {}
    measured_done = sum(measured[d] for d in done) if all(d in measured for d in done) else 0
    pace = sum(done.values()) / measured_done if measured_done > 0 else 1.0
    mean = sum(done.values()) / len(done) if done else None

    def expected(stem):
        return timings.get(stem, measured[stem] * pace if stem in measured else mean)

    known = [expected(s.stem) for s in remaining] + [expected(stem) for stem in running]
    if any(t is None for t in known):
        return ""
    to_go = known[:len(remaining)] + [max(0.0, expected(stem) - so_far) for stem, so_far in running.items()]
    # jobs side by side: at best the work shared evenly, never sooner than the longest single notebook
    return f", about {_clock(max(sum(to_go) / jobs, max(to_go)))} left"


# Notebooks that train what others read: Fig. 2 trains the verdict seeds' runs of Settings 1-3 that Figs. 4, 5 and
# 9-11 reuse, so it starts first and none of them waits on its cache lock while a core idles.
PROVIDERS_FIRST = ("fig02_adam_vs_sgd",)


def longest_first(sources, timings, measured):
    """The notebooks in the order a build starts them: PROVIDERS_FIRST, then the longest first (by the last build's
    times, else the measured ones), so that with several running side by side no long one is left to run alone at
    the end."""
    def seconds(source):
        return timings.get(source.stem, measured.get(source.stem, 0))
    return sorted(sources, key=lambda s: (s.stem not in PROVIDERS_FIRST, -seconds(s)))


# Every notebook's kernel computes on one thread, and a build runs one notebook per core side by side. On these 2-core
# machines that beat one notebook at a time on 2 threads (PERFORMANCE.md): a kernel's
# start, imports, plotting and per-iteration Python use one core however many threads there are, and the compiled
# kernels split 6-12 runs unevenly over 2 threads. One thread also gives every machine the same numbers whatever its
# core count (the Makefile sets the same for nbval, the unit tests and make references).
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}


def _jobs(jobs, n_notebooks):
    """The notebooks to run side by side: `jobs` if given (a positive integer), else one per core."""
    if jobs is not None:
        return check_positive("jobs", jobs, integer=True)
    return max(1, min(n_notebooks, os.cpu_count() or 1))


def _timings(path):
    """Each notebook's seconds in the last build recorded at `path` ({} before the first)."""
    return json.loads(path.read_text()) if path.exists() else {}


def _write_json(path, value):
    """Atomically: a reader (or a build stopped half-way) never sees half a file."""
    cache.write_atomically(path, json.dumps(value, indent=1).encode())


def _die_with_parent():
    """In the notebook's process, before it runs: SIGKILL it when its worker dies (Linux's PR_SET_PDEATHSIG), so that
    a worker or a build killed with kill -9 leaves no notebook computing on (its kernel follows: ipykernel exits
    when its parent goes)."""
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
    except (AttributeError, OSError):  # not Linux: the worker's own cleanup only
        pass


class NotebookFailed(RuntimeError):
    """A notebook's cell failed: the message is its report (the cell, the error), printed by the build."""


EVENTS = "lintf-notebooks"  # the Dask topic a notebook's task reports its start on


def notebook_task(build_id, stem, text, parameters, share_slots):
    """One notebook, as a Dask task on a worker: written to a temporary folder, executed in its own process on one
    thread (python -m lintf_core.execution), and returned as (seconds, the executed notebook's text); nothing is written
    where the build keeps its notebooks (the client writes them). Stopped when the build's stop Event is set.
    share_slots (a scheduler was given, and the notebook's sweeps may run as tasks on it): the task leaves its worker
    slot to them while it waits, and a Semaphore keeps the notebooks running at once to the cluster's threads."""
    from contextlib import nullcontext

    from distributed import Event, Semaphore, get_worker, secede

    stop = Event(f"lintf-stop-{build_id}")
    if stop.is_set():  # the build is stopping: a notebook not started yet stays so
        return None
    slots = nullcontext()
    if share_slots:
        secede()
        slots = Semaphore(max_leases=share_slots, name=f"lintf-notebooks-{build_id}")
    with slots, tempfile.TemporaryDirectory(prefix=f"lintf-{stem}-") as tmp:
        source, output = Path(tmp) / f"{stem}.py", Path(tmp) / "executed" / f"{stem}.ipynb"
        source.write_text(text)
        environment = {**os.environ, **ONE_THREAD}
        environment.pop(cluster.MALLOC_VARIABLE, None)  # a worker started by another nanny may carry it
        if share_slots:
            environment[cluster.SCHEDULER_VARIABLE] = get_worker().scheduler.address
        with open(Path(tmp) / "stderr", "w+") as stderr:
            child = subprocess.Popen([sys.executable, "-m", "lintf_core.execution", str(source), str(output),
                                      json.dumps(parameters)], env=environment, stderr=stderr,
                                     preexec_fn=_die_with_parent)
            begin = time.perf_counter()
            get_worker().log_event(EVENTS, {"build": build_id, "stem": stem})
            while child.poll() is None:
                try:
                    child.wait(timeout=1.0)
                except subprocess.TimeoutExpired:
                    if stop.is_set():  # another notebook failed: stop this one (it unwinds on SIGTERM)
                        child.terminate()
                        child.wait()
            seconds = time.perf_counter() - begin
            if child.returncode != 0:
                stderr.seek(0)
                report = stderr.read()
                cell = report.find(f"{stem}.py: cell")  # execute()'s report of the failed cell, else the tail
                raise NotebookFailed(report[cell:].strip() if cell >= 0 else
                                     f"{stem}.py: exit status {child.returncode}\n{report[-4000:]}")
        return seconds, output.read_text()


def fingerprint(source, parameters):
    """What an executed notebook depends on: its source, its parameters, lintf_core (every .py and .json file),
    requirements.txt and the CPU code path. A build reuses an executed notebook whose fingerprint matches (a build
    killed half-way, or run again): the same inputs give the same outputs (make test's nbval holds them to that)."""
    import hashlib

    from .cache import CODE_PATH_VARIABLES

    digest = hashlib.sha256(Path(source).read_bytes())
    digest.update(json.dumps(parameters, sort_keys=True).encode())
    package = Path(__file__).parent
    for path in sorted(p for p in package.rglob("*") if p.suffix in (".py", ".json") and p.is_file()):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    digest.update((ROOT / "requirements.txt").read_bytes())
    digest.update(json.dumps({name: os.environ.get(name) for name in CODE_PATH_VARIABLES}, sort_keys=True).encode())
    return digest.hexdigest()


def executed_fingerprint(path):
    import nbformat

    try:
        return nbformat.read(path, as_version=4).metadata.get("lintf", {}).get("fingerprint")
    except FileNotFoundError:
        return None


def _write_notebook(path, text, stamp=None):
    """Atomically (cache.write_atomically): a build killed while writing leaves the old notebook or the new one, never
    half of one. stamp: the fingerprint to record (None for nbval's references)."""
    import nbformat

    notebook = nbformat.reads(text, as_version=4)
    if stamp is not None:
        notebook.metadata["lintf"] = {"fingerprint": stamp}
    text = nbformat.writes(notebook)
    cache.write_atomically(path, (text if text.endswith("\n") else text + "\n").encode())  # as nbformat.write


def run_notebooks(chosen, executed_dir, parameters, timings, timings_path, jobs=None, scheduler=None, reuse=False):
    """Execute the notebooks as Dask tasks (longest first), each in its own process on one thread: on a LocalCluster
    of `jobs` workers (default: one per core), or on the cluster of `scheduler` (cluster.scheduler_address). Prints
    each start and end with the elapsed time and what is left. reuse: keep an executed notebook whose fingerprint
    matches (a build killed half-way goes on where it stopped). A failure stops the others and the build."""
    import uuid

    from distributed import Event

    profile = parameters.get("profile", "quick")  # no parameters: each notebook's own default, the quick profile
    measured = MEASURED_SECONDS.get(profile, {})
    order = longest_first(chosen, timings, measured)
    stamps = {source.stem: fingerprint(source, parameters) for source in order} if reuse else {}
    reused = [s for s in order if reuse and executed_fingerprint(executed_dir / f"{s.stem}.ipynb") == stamps[s.stem]]
    counters = {source.stem: f"[{i + 1}/{len(order)}] {source.name}" for i, source in enumerate(order)}
    for source in reused:
        print(f"{counters[source.stem]} reused: executed by an earlier build from the same sources and parameters",
              flush=True)
    order = [s for s in order if s not in reused]
    if not order:
        return
    lock = threading.Lock()
    done, started = {}, {}
    address = cluster.scheduler_address(scheduler)
    begin = time.perf_counter()
    with cluster.client_of(address, _jobs(jobs, len(order)) if address is None else None) as client:
        slots = cluster.total_threads(client)
        where = (f"the cluster at {address}" if address else
                 f"a local Dask cluster ({time.perf_counter() - begin:.1f} s to start)")
        board = cluster.dashboard(client)
        print(f"executing {len(order)} notebooks on {where}, {slots} at a time, one thread each"
              + (f"; dashboard {board}" if board else ""), flush=True)
        build_id = uuid.uuid4().hex[:12]
        stop = Event(f"lintf-stop-{build_id}", client=client)

        def progress():  # under the lock
            now = time.perf_counter()
            remaining = [s for s in order if s.stem not in done and s.stem not in started]
            return _left(remaining, timings, done, measured, slots, {k: now - t for k, t in started.items()})

        def on_start(event):  # Dask calls it (its own thread) when a notebook's task has started its process
            _, message = event
            if message.get("build") != build_id:
                return
            with lock:
                again = " again (its worker was lost)" if message["stem"] in started else ""
                started[message["stem"]] = time.perf_counter()
                print(f"{counters[message['stem']]} (profile {profile}) starts{again} at "
                      f"{_clock(started[message['stem']] - begin)}{progress()}", flush=True)

        client.subscribe_topic(EVENTS, on_start)
        futures = {client.submit(notebook_task, build_id, source.stem, source.read_text(), parameters,
                                 slots if address else 0, key=f"notebook-{source.stem}-{build_id}",
                                 priority=len(order) - i, pure=False): source for i, source in enumerate(order)}
        pending, failed = set(futures), None
        while pending and failed is None:
            time.sleep(0.2)
            for future in [f for f in pending if f.done()]:
                pending.discard(future)
                source = futures[future]
                if future.status != "finished":
                    failed = source
                    error = future.exception()
                    print(f"\n{error}" if isinstance(error, NotebookFailed) else
                          f"\n{source.name}: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
                    break
                seconds, text = future.result()
                _write_notebook(executed_dir / f"{source.stem}.ipynb", text, stamps.get(source.stem))
                with lock:
                    started.pop(source.stem, None)
                    done[source.stem] = timings[source.stem] = seconds
                    _write_json(timings_path, timings)
                    print(f"{counters[source.stem]} done in {_clock(seconds)}; elapsed "
                          f"{_clock(time.perf_counter() - begin)}{progress()}", flush=True)
        client.unsubscribe_topic(EVENTS)
        if failed is not None:  # the notebooks still running stop (theirs are not failures), then the build
            stop.set()
            _wait_stopped(pending)
            raise SystemExit(f"{failed.name} failed (its cell is shown above); the build stopped")


def _wait_stopped(futures, seconds=30.0):
    """Until the stopped notebooks' tasks have ended (their processes and temporary folders gone), at most `seconds`."""
    deadline = time.perf_counter() + seconds
    while any(not f.done() for f in futures) and time.perf_counter() < deadline:
        time.sleep(0.2)


if __name__ == "__main__":  # one notebook, in its own process: python -m lintf_core.execution SOURCE OUTPUT PARAMETERS
    import signal

    # stopped by the build (another notebook failed): unwind, so that the kernel is shut down and the temporary
    # folder beside the output removed (a stray notebook in _build/src would fail the site's build)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    execute(Path(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3]))
