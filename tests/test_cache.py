"""The result cache: round trip, damaged entries detected and recomputed, atomic writes."""

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

    try:
        cache.cached({"x": 1}, boom)
    except RuntimeError:
        pass
    assert not private_cache.exists() or not any(private_cache.iterdir())
