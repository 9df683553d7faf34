"""lintf_core: the engine behind the lintf book (Ahn et al., ICLR 2024, reproduced).

The road is one-way: settings -> data -> sampler -> model -> optim -> engine -> train -> diagnostics -> notebooks ->
book; verdicts imports none of them (README, "A map of the code"; tests/test_house.py).
"""

import hashlib
import os
from pathlib import Path

import numba

__version__ = "0.1.0"


def compiled_cache_dir(package=None):
    """Where numba keeps the compiled kernels: a folder keyed by the source of every compiled file. numba checks only
    a kernel's own file for changes, and the engine's kernels call each other across files (engine/products.py from
    the rest), so an edit of any file with kernels must recompile them all."""
    package = Path(package or Path(__file__).parent)
    files = [f for f in sorted((package / "engine").glob("*.py")) + [package / "sampler.py"]
             if "numba" in f.read_text()]
    digest = hashlib.sha256(b"".join(f.name.encode() + b"\0" + f.read_bytes() for f in files)).hexdigest()[:12]
    base = os.environ.get("NUMBA_CACHE_DIR") or package.parent / ".cache" / "numba"
    return str(Path(base) / f"kernels-{digest}")


numba.config.CACHE_DIR = compiled_cache_dir()  # read when a kernel module is imported, after this line
