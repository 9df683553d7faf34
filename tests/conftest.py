import pytest


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Every test gets its own empty result cache."""
    monkeypatch.setenv("LINTF_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"
