"""A content-addressed result store: key = hash(full config + lintf_core code version), atomic writes.

The cache is an optimisation, never a source of truth: an entry that is truncated, corrupted or written by other
code fails its checksum or its key check, is deleted, and the result is recomputed.

File layout: MAGIC, then one line with the sha256 of the payload, then the payload (torch.save of a dict of
tensors, numbers, strings and lists, read back with weights_only=True).
"""

import hashlib
import io
import json
import os
import tempfile
import warnings
from pathlib import Path

from filelock import FileLock

from . import __version__
from .errors import CacheWriteError

# torch (~1.3 s to import) is imported inside the functions that use it: a process that only writes files, such as
# each notebook's papermill process (execution.py), does not pay for it.

MAGIC = b"LINTF-CACHE-1\n"
ROOT = Path(__file__).resolve().parent.parent
# The code that changes the numbers, files and whole folders of lintf_core: editing any of it invalidates every entry.
NUMERIC_CODE = ("settings.py", "data.py", "sampler.py", "model.py", "engine", "optim.py", "train.py", "diagnostics.py")
# The code path each library computes with (the Makefile fixes them on x86-64; README, "When CI's nbval fails"):
# they move last bits, so a result computed under other values is another result and must not be served.
CODE_PATH_VARIABLES = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_CBWR", "NPY_DISABLE_CPU_FEATURES",
                       "OPENBLAS_CORETYPE", "NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES")


def cache_dir():
    return Path(os.environ.get("LINTF_CACHE_DIR", ROOT / ".cache" / "results"))


def numeric_files(package=None):
    """Every file of NUMERIC_CODE under `package` (default: lintf_core), folders expanded to their .py files, in a
    fixed order. A missing path is an error: a renamed module must not silently drop out of the key."""
    package = Path(package or Path(__file__).parent)
    files = []
    for name in NUMERIC_CODE:
        path = package / name
        if path.is_dir():
            files += sorted(path.rglob("*.py"))
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"cache.NUMERIC_CODE names {name}, which is not in {package}")
    return files


def code_version(package=None):
    """The lintf_core version and a hash of the numeric code (path and content of every file)."""
    package = Path(package or Path(__file__).parent)
    digest = hashlib.sha256(__version__.encode())
    for path in numeric_files(package):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    return f"{__version__}+{digest.hexdigest()[:12]}"


def thread_counts():
    """The threads torch and numba compute with: a reduction split over threads sums in another order, so the last
    bits (and the chaotic runs grown from them) depend on the count: a result cached at one count must not be served
    at another."""

    import numba
    import torch

    return {"torch": torch.get_num_threads(), "numba": numba.config.NUMBA_NUM_THREADS}


def computing_environment():
    """What a result depends on besides its config: the numeric code, the CPU code path and the thread counts."""
    code_path = {name: os.environ.get(name) for name in CODE_PATH_VARIABLES} | {"threads": thread_counts()}
    return {"code": code_version(), "code_path": code_path}


def key_of(config):
    text = json.dumps({"config": config, **computing_environment()}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def path_of(key):
    return cache_dir() / f"{key}.pt"


def unwritable(folder, error, what="cache", variable="LINTF_CACHE_DIR"):
    reason = getattr(error, "strerror", None) or error
    return CacheWriteError(f"{what}: cannot write to {folder} ({reason}); make it writable or free space"
                           + (f", or set {variable} to another folder" if variable else ""))


def check_writable(folder, what="cache", variable="LINTF_CACHE_DIR"):
    """Raise CacheWriteError (one line naming the folder) unless a file can be created in `folder` (made if
    missing): a build checks its folders before it starts anything, rather than failing inside a notebook."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check."):
            pass
    except OSError as error:
        raise unwritable(folder, error, what, variable) from None


def write_atomically(path, data):
    """Write `data` (bytes) to `path` as a temporary file beside it, fsync, then a rename over it: a reader, or a
    process killed half-way, sees the old file or the new one, never half of one, and a failed write leaves no
    temporary file. Errors (OSError for a read-only folder or a full disk) propagate."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:12]}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save(key, payload):
    """Write atomically (write_atomically), with the magic line and a checksum of the body. A folder that cannot be
    written (read-only, a full disk) raises CacheWriteError and leaves no file behind."""
    import torch

    buffer = io.BytesIO()
    torch.save({"key": key, "payload": payload}, buffer)
    body = buffer.getvalue()
    final = path_of(key)
    try:
        write_atomically(final, MAGIC + hashlib.sha256(body).hexdigest().encode() + b"\n" + body)
    except OSError as error:
        raise unwritable(final.parent, error) from None


def load(key):
    """The payload stored under `key`, or None if there is none or it is damaged (a damaged file is deleted)."""
    import torch

    path = path_of(key)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    header_end = raw.find(b"\n", len(MAGIC))
    try:
        if not raw.startswith(MAGIC) or header_end < 0:
            raise ValueError("bad header")
        digest, body = raw[len(MAGIC):header_end].decode(), raw[header_end + 1:]
        if hashlib.sha256(body).hexdigest() != digest:
            raise ValueError("checksum mismatch")
        entry = torch.load(io.BytesIO(body), weights_only=True)
        if entry.get("key") != key:
            raise ValueError("entry belongs to another key")
        return entry["payload"]
    except Exception as error:  # any damage means: recompute
        warnings.warn(f"cache: discarding damaged entry {path.name} ({error}); recomputing", stacklevel=2)
        path.unlink(missing_ok=True)
        return None


def cached(config, compute, use_cache=True):
    """compute() once per config: the stored payload if a valid one exists, else compute, store and return it."""
    if not use_cache:
        return compute()
    key = key_of(config)
    payload = load(key)
    if payload is None:
        # Notebooks executed side by side (make book) can need the same result (Figs. 4 and 5 reuse Fig. 2's runs,
        # Table 2 the depth grids of Figs. 12-14): one computes it, the other waits on the lock and then reads it.
        # (The lock files stay, in their own folder: removing one while another process waits on it is a race.)
        locks = cache_dir() / "locks"
        try:
            locks.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise unwritable(locks, error) from None
        lock = FileLock(locks / f"{key}.lock")
        try:
            lock.acquire()
        except OSError as error:
            raise unwritable(locks, error) from None
        try:
            payload = load(key)
            if payload is None:
                payload = compute()
                save(key, payload)
        finally:
            lock.release()
    return payload
