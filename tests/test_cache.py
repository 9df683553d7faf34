"""The result cache: round trip, damaged entries detected and recomputed, atomic writes, one computation of a
result two processes need at once."""

import os
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import pytest
import torch

from lintf_core import cache


def payload():
    return {"x": torch.arange(1000.0), "name": "run", "runs": [[0, "sgd", 0.02]]}


def test_round_trip(private_cache):
    key = cache.key_of({"a": 1})
    cache.save(key, payload())
    loaded = cache.load(key)
    assert torch.equal(loaded["x"], payload()["x"]) and loaded["runs"] == payload()["runs"]
    assert [p.name for p in private_cache.iterdir()] == [f"{key}.pt"]  # no temporary files left


def test_key_depends_on_config_and_code_version(monkeypatch):
    assert cache.key_of({"a": 1}) != cache.key_of({"a": 2})
    before = cache.key_of({"a": 1})
    monkeypatch.setattr(cache, "code_version", lambda: "another version")
    assert cache.key_of({"a": 1}) != before


def test_editing_any_engine_file_changes_the_code_version(tmp_path):
    """Every file of the engine package counts, a new one too, and a missing module is an error, not a silent skip."""
    import shutil

    package = tmp_path / "lintf_core"
    shutil.copytree(Path(cache.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    before = cache.code_version(package)
    assert before == cache.code_version()  # the copy hashes as the original
    engine_files = sorted((package / "engine").glob("*.py"))
    assert len(engine_files) >= 8
    for path in engine_files:
        text = path.read_text()
        path.write_text(text + "\n# edited\n")
        assert cache.code_version(package) != before, path.name
        path.write_text(text)
    assert cache.code_version(package) == before
    (package / "engine" / "new_room.py").write_text("X = 1\n")
    assert cache.code_version(package) != before
    (package / "engine" / "new_room.py").unlink()
    (package / "sampler.py").unlink()
    with pytest.raises(FileNotFoundError, match="sampler.py"):
        cache.code_version(package)


def test_numbas_cache_folder_follows_every_file_with_kernels(tmp_path):
    """numba checks only a kernel's own file; the folder's key covers the others it calls (engine/products.py)."""
    import shutil

    import lintf_core

    package = tmp_path / "lintf_core"
    shutil.copytree(Path(cache.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    before = lintf_core.compiled_cache_dir(package)
    for name in ("engine/products.py", "engine/sparse.py", "sampler.py"):
        path = package / name
        text = path.read_text()
        path.write_text(text + "\n# edited\n")
        assert lintf_core.compiled_cache_dir(package) != before, name
        path.write_text(text)
    (package / "engine" / "__init__.py").write_text((package / "engine" / "__init__.py").read_text() + "\n# edited\n")
    assert lintf_core.compiled_cache_dir(package) == before  # the dispatcher has no kernel: nothing to recompile


def test_the_key_holds_the_thread_count():
    """A result computed on another number of threads differs in its last bits: it must not be served."""
    before = torch.get_num_threads()
    key = cache.key_of({"a": 1})
    try:
        torch.set_num_threads(before + 1)
        assert cache.key_of({"a": 1}) != key
    finally:
        torch.set_num_threads(before)
    assert cache.key_of({"a": 1}) == key


def test_the_key_holds_the_code_path(monkeypatch):
    """Results computed on another code path (AVX-512 numba, MKL's own choice) differ in their last bits."""
    for name in cache.CODE_PATH_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    native = cache.key_of({"a": 1})
    monkeypatch.setenv("NUMBA_CPU_NAME", "haswell")
    haswell = cache.key_of({"a": 1})
    assert haswell != native
    monkeypatch.setenv("NUMBA_CPU_FEATURES", "")  # the Makefile's empty list is a value of its own
    assert cache.key_of({"a": 1}) not in (native, haswell)
    monkeypatch.delenv("NUMBA_CPU_NAME")
    monkeypatch.delenv("NUMBA_CPU_FEATURES")
    assert cache.key_of({"a": 1}) == native


def damaged_entries_are_recomputed(damage):
    key = cache.key_of({"damaged": damage.__name__})
    cache.save(key, payload())
    path = cache.path_of(key)
    damage(path)
    calls = []

    def compute():
        calls.append(1)
        return payload()

    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = cache.cached({"damaged": damage.__name__}, compute)
    assert calls == [1], "a damaged entry must be recomputed, not trusted"
    assert any("damaged" in str(w.message) for w in caught)
    assert torch.equal(result["x"], payload()["x"])
    assert cache.load(key) is not None  # and rewritten whole


def test_truncated_entry_is_detected():
    def truncate(path):
        path.write_bytes(path.read_bytes()[:-100])

    damaged_entries_are_recomputed(truncate)


def test_flipped_byte_is_detected():
    def flip(path):
        raw = bytearray(path.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        path.write_bytes(bytes(raw))

    damaged_entries_are_recomputed(flip)


def test_foreign_file_is_detected():
    def replace_with_other_entry(path):
        other = cache.key_of({"other": 1})
        cache.save(other, payload())
        path.write_bytes(cache.path_of(other).read_bytes())

    damaged_entries_are_recomputed(replace_with_other_entry)


def test_garbage_is_detected():
    damaged_entries_are_recomputed(lambda path: path.write_bytes(b"not a cache file"))


def test_failed_compute_leaves_nothing(private_cache):
    def boom():
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        cache.cached({"x": 1}, boom)
    assert not private_cache.exists() or [p.name for p in private_cache.iterdir()] == ["locks"]
    assert [p.suffix for p in (private_cache / "locks").iterdir()] == [".lock"]


def _needs_the_shared_result(cache_dir, rendezvous):
    """In a process of its own: wait until the other process is ready too, then ask the cache for one result whose
    computation takes a second and leaves a mark."""
    os.environ["LINTF_CACHE_DIR"] = cache_dir
    from lintf_core import cache as store

    (rendezvous / f"ready-{os.getpid()}").touch()
    while len(list(rendezvous.glob("ready-*"))) < 2:
        time.sleep(0.01)

    def compute():
        (rendezvous / f"computed-{os.getpid()}").touch()
        time.sleep(1.0)
        return {"x": torch.arange(3.0)}

    return store.cached({"shared": 1}, compute)["x"].sum().item()


def test_two_processes_needing_one_result_at_once_compute_it_once(tmp_path):
    """make book runs notebooks side by side, and some need the same result (Figs. 4 and 5 reuse Fig. 2's runs): the
    second waits for the first's and reads it, instead of computing it again."""
    rendezvous = tmp_path / "rendezvous"
    rendezvous.mkdir()
    with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
        results = list(pool.map(_needs_the_shared_result, [str(tmp_path / "cache")] * 2, [rendezvous] * 2))
    assert results == [3.0, 3.0]
    assert len(list(rendezvous.glob("computed-*"))) == 1
    assert sorted(p.suffix or p.name for p in (tmp_path / "cache").iterdir()) == [".pt", "locks"]
