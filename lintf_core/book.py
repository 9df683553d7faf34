"""Build the book: jupytext -> papermill (profile, parameters) -> executed notebooks -> jupyter-book build -W.

Everything is staged under _build/src (the committed notebooks/*.ipynb, which are nbval's reference outputs, are
never touched); the site lands in _build/html. Pages that are generated from code: book/settings.md (Tables 1-2
from the settings registry) and book/scorecard.md (the rows every executed notebook displayed).
"""

import os
import re
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import yaml

from .errors import CacheWriteError, ParameterError, check_choice, check_positive
from . import cache, cluster, premise
from .execution import KERNEL, _timings, label_injected_parameters, run_notebooks
from .profiles import PROFILES
from .scorecard import COLUMNS, MIME, ROBUST_SYMBOLS, SYMBOLS, at_a_glance, markdown_table, rows_of_notebook
from .settings import SETTINGS

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "_build"
STAGE = BUILD / "src"
SETTINGS_MARKER = "<!-- lintf:settings-tables -->"
SCORECARD_MARKER = "<!-- lintf:scorecard-table -->"
GLANCE_MARKER = "<!-- lintf:at-a-glance -->"
PREMISE_MARKER = "<!-- lintf:premise-table -->"


def notebook_sources():
    return sorted((ROOT / "notebooks").glob("*.py"))


def select(only):
    """The notebook sources whose name starts with one of `only` (all when empty)."""
    sources = notebook_sources()
    if not only:
        return sources
    for prefix in only:
        if not any(s.stem.startswith(prefix) for s in sources):
            raise ParameterError("only", prefix, ", ".join(s.stem for s in sources))
    return [s for s in sources if any(s.stem.startswith(prefix) for prefix in only)]


def check_kernel():
    from jupyter_client.kernelspec import find_kernel_specs

    if KERNEL not in find_kernel_specs():
        raise SystemExit(f"kernel: the Jupyter kernel {KERNEL!r} is not registered; run 'make setup' "
                         "(it creates .venv and registers the kernel)")


def settings_tables():
    """Tables 1 and 2 of the paper, generated from lintf_core.settings (the registry every notebook uses)."""
    table1 = ["| name | what | L | d | N | covariates | batch | init std | clip (code / paper) | parametrization |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    table2 = ["| name | SGDM (paper) | Adam (paper) | SGDM (code) | Adam (code) | note |", "|---|---|---|---|---|---|"]
    for s in SETTINGS.values():
        cov = s.covariates if s.covariates != "gamma" else f"gamma (k={s.gamma_shape:g}, θ={s.gamma_scale:g})"
        table1.append(f"| `{s.name}` | {s.title} | {s.n_layers} | {s.d} | {s.n_context} | {cov} | {s.batch_size} "
                      f"| {s.init_std:g} | {s.clip_code:g} / {s.clip_paper:g} | {s.parametrization} |")
        paper = s.lr_paper or ("—", "—")
        code = s.lr_code or ("—", "—")
        table2.append(f"| `{s.name}` | {paper[0]} | {paper[1]} | {code[0]} | {code[1]} | {s.lr_note} |")
    return ("**Settings** (Table 1 and the ablations)\n\n" + "\n".join(table1)
            + "\n\n**Learning rates** (Table 2 against the authors' code; the book's default is the code)\n\n"
            + "\n".join(table2) + "\n")


def scorecard_rows(executed):
    """The scorecard rows of every executed notebook, each with 'page' (its page, relative to book/). The rows'
    JSON is then removed from the staged copies: the pages show the same rows as tables, and Sphinx knows no
    renderer for the JSON."""
    import nbformat

    rows = []
    for path in executed:
        notebook = nbformat.read(path, as_version=4)
        rows.extend({**row, "page": f"../notebooks/{path.stem}.html", "stem": path.stem}
                    for row in rows_of_notebook(notebook))
        for cell in notebook.cells:
            for output in cell.get("outputs", []):
                output.get("data", {}).pop(MIME, None)
        nbformat.write(notebook, path)
    return rows


def scorecard_table(rows):
    """The scorecard page's table: every row, the verdict first (with its symbol: a wide table scrolls, and the
    verdict must not be the column off screen), its figure linking to the notebook."""
    if not rows:
        return "_No notebook has reported a scorecard row yet._\n"
    columns = ("verdict", "robust", *(c for c in COLUMNS if c not in ("verdict", "robust")))
    return markdown_table([{"diagnosis": "—", **row,
                            "verdict": f"{SYMBOLS[row['verdict']][0]} {row['verdict']}",
                            "robust": f"{ROBUST_SYMBOLS.get(row.get('robust'), ('',))[0]} {row.get('robust', '—')}",
                            "figure": f"[{row['figure']}](../notebooks/{row['stem']}.ipynb)"} for row in rows],
                          columns=columns) + "\n"


def edition(profile):
    """The edition a profile builds, in words, for the intro's grid."""
    values = PROFILES[profile]
    return (f"{profile} ({len(values['seeds'])} seeds x {values['n_iters']:,} iterations"
            f"{', the paper' + chr(39) + 's fidelity' if profile == 'paper' else ', a preview'})")


LAUNCH_PROVIDERS = ("binderhub_url", "jupyterhub_url", "colab_url", "jupyterlite_url", "thebe")


def staged_config(config):
    """_config.yml as the build uses it: without a repository URL, no launch button (they need one to point at)."""
    config = dict(config)
    if not (config.get("repository") or {}).get("url"):
        config["launch_buttons"] = {k: v for k, v in (config.get("launch_buttons") or {}).items()
                                    if k not in LAUNCH_PROVIDERS}
    return config


def fill(path, marker, text):
    page = path.read_text()
    if marker not in page:
        raise SystemExit(f"{path}: marker {marker} is missing")
    path.write_text(page.replace(marker, text))


@contextmanager
def build_lock():
    """One build of a checkout at a time: a second `make book` (or make references) waits for the first, with one
    line saying so, then reuses the notebooks it executed (their fingerprints match) and builds the same site."""
    from filelock import FileLock, Timeout

    lock = FileLock(BUILD / "build.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        print(f"book: another build of this checkout is running (it holds {lock.lock_file}); this one waits for it "
              "to finish", flush=True)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def check_folders():
    """The folders a build writes, checked before it starts anything: one line naming a folder that cannot be
    written (read-only, a full disk), not a traceback from inside a notebook."""
    try:
        cache.check_writable(BUILD, "build", None)
        cache.check_writable(cache.cache_dir())
        if os.environ.get("NUMBA_CACHE_DIR"):
            cache.check_writable(os.environ["NUMBA_CACHE_DIR"], "numba's cache", "NUMBA_CACHE_DIR")
    except CacheWriteError as error:
        raise SystemExit(str(error)) from None


def make_references(jobs=None, scheduler=None):
    """Re-execute every notebook in place as nbval's reference (notebooks/*.ipynb): its parameters cell as written
    (the quick profile), nothing injected, `jobs` side by side on one thread each, as make test's nbval runs them."""
    sources = notebook_sources()
    check_kernel()
    check_folders()
    with build_lock():
        timings_path = BUILD / "timings-references.json"
        run_notebooks(sources, ROOT / "notebooks", {}, _timings(timings_path), timings_path, jobs, scheduler)


def reference_profile(path):
    """The profile an executed notebook ran with: papermill's recorded parameter, else its parameters cell's."""
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    recorded = notebook.metadata.get("papermill", {}).get("parameters", {})
    if "profile" in recorded:
        return recorded["profile"]
    for cell in notebook.cells:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            found = re.search(r"^profile\s*=\s*[\"']([^\"']+)[\"']", cell.source, re.MULTILINE)
            if found:
                return found.group(1)
    return None


def stage_references(sources, executed_dir):
    """Stage the committed notebooks/*.ipynb (nbval's references: the quick edition, executed by `make references`)
    as the executed notebooks, after checking that each ran with the quick profile."""
    executed_dir.mkdir(parents=True, exist_ok=True)
    for source in sources:
        reference = source.with_suffix(".ipynb")
        if not reference.exists() or reference_profile(reference) != "quick":
            raise SystemExit(f"{reference.name}: not a quick-profile reference notebook; run 'make references'")
        shutil.copy2(reference, executed_dir / reference.name)
        label_injected_parameters(executed_dir / reference.name)


def build(profile="paper", only=(), parameters=None, from_references=False, jobs=None, scheduler=None):
    """Execute the selected notebooks with `profile` (and extra papermill parameters), then build the site.
    from_references: execute nothing, build the quick edition from the committed reference notebooks. `make test`
    does this right after nbval has re-executed every notebook and found its checked outputs unchanged (executing
    them a second time for the site cost ~1.5 min of CI). jobs: the local Dask cluster's workers, each running one
    notebook on one thread (default: one per core); scheduler: a running Dask scheduler's address instead
    (cluster.scheduler_address). Executed notebooks are kept in _build/executed/<profile>, each with its fingerprint:
    a build reuses those whose sources, parameters and code have not changed."""
    check_choice("profile", profile, tuple(PROFILES))
    chosen = select(only)
    cluster.scheduler_address(scheduler)
    if jobs is not None:
        check_positive("jobs", jobs, integer=True)
    if from_references and (profile != "quick" or only or parameters):
        raise ParameterError("from_references", from_references,
                             "only with --profile quick, no --only and no parameters (the references are the "
                             "quick edition of every notebook)")
    check_kernel()
    check_folders()
    with build_lock():
        _build(profile, chosen, parameters, from_references, jobs, scheduler)


def _build(profile, chosen, parameters, from_references, jobs, scheduler):
    executed_dir = BUILD / "executed" / profile
    staged_dir = STAGE / "notebooks"
    STAGE.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(STAGE / "book", ignore_errors=True)
    shutil.copytree(ROOT / "book", STAGE / "book")
    shutil.copytree(ROOT / "_static", STAGE / "_static", dirs_exist_ok=True)  # the site's own CSS
    shutil.copy2(ROOT / "_toc.yml", STAGE / "_toc.yml")
    (STAGE / "_config.yml").write_text(yaml.safe_dump(staged_config(yaml.safe_load((ROOT / "_config.yml").read_text())),
                                                      allow_unicode=True, sort_keys=False))
    # Each notebook's time of the last build of this profile: the estimate of what is left (else MEASURED_SECONDS).
    timings_path = BUILD / f"timings-{profile}.json"
    timings = _timings(timings_path)
    shutil.rmtree(staged_dir, ignore_errors=True)
    if from_references:
        stage_references(chosen, staged_dir)
    else:
        run_notebooks(chosen, executed_dir, {"profile": profile, **(parameters or {})}, timings, timings_path, jobs,
                      scheduler, reuse=True)
        missing = [s.stem for s in notebook_sources() if not (executed_dir / f"{s.stem}.ipynb").exists()]
        if missing:
            raise SystemExit(f"only: {', '.join(missing)} not executed yet; build once without --only")
        staged_dir.mkdir(parents=True)
        for source in notebook_sources():  # the site's copies: scorecard_rows strips its JSON from them
            shutil.copy2(executed_dir / f"{source.stem}.ipynb", staged_dir / f"{source.stem}.ipynb")
    executed = [staged_dir / f"{s.stem}.ipynb" for s in notebook_sources()]
    fill(STAGE / "book" / "settings.md", SETTINGS_MARKER, settings_tables())
    rows = scorecard_rows(executed)
    fill(STAGE / "book" / "scorecard.md", SCORECARD_MARKER, scorecard_table(rows))
    fill(STAGE / "book" / "intro.md", GLANCE_MARKER, at_a_glance(rows, edition(profile)))
    premise_table = premise.table(rows)
    fill(STAGE / "book" / "premise.md", PREMISE_MARKER, premise_table)
    fill(STAGE / "book" / "intro.md", PREMISE_MARKER, premise_table)
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    command = [str(jupyter_book), "build", str(STAGE), "--path-output", str(ROOT), "-W", "--keep-going", "-q"]
    print("building the site:", " ".join(command), flush=True)
    if subprocess.run(command).returncode != 0:
        raise SystemExit("jupyter-book build failed (warnings count as errors); see the messages above")
    add_favicon(BUILD / "html" / "index.html")
    print(f"site: {BUILD / 'html' / 'index.html'}")


def add_favicon(redirect_page):
    """jupyter-book's root index.html is a bare redirect with no icon link, so a browser asks the server for
    /favicon.ico, which is not there: a 404 in the console (seen in headless Chromium, depending on timing)."""
    page = redirect_page.read_text()
    if 'rel="icon"' not in page:
        redirect_page.write_text('<link rel="icon" href="_static/favicon.svg" />\n' + page)
