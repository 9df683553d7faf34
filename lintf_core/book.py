"""Build the book: jupytext -> papermill (profile, parameters) -> executed notebooks -> jupyter-book build -W.

Everything is staged under _build/src (the committed notebooks/*.ipynb, which are nbval's reference outputs, are
never touched); the site lands in _build/html. Pages that are generated from code: book/settings.md (Tables 1-2
from the settings registry) and book/scorecard.md (the rows every executed notebook displayed).
"""

import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from .errors import ParameterError, check_choice
from .profiles import PROFILES
from .scorecard import COLUMNS, MIME, SYMBOLS, at_a_glance, markdown_table, rows_of_notebook
from .settings import SETTINGS

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "_build"
STAGE = BUILD / "src"
KERNEL = "lintf"
SETTINGS_MARKER = "<!-- lintf:settings-tables -->"
SCORECARD_MARKER = "<!-- lintf:scorecard-table -->"
GLANCE_MARKER = "<!-- lintf:at-a-glance -->"


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


def execute(source, output, parameters):
    """Execute one Jupytext source with papermill into `output` (written only if every cell succeeds)."""
    import jupytext
    import papermill
    from papermill.exceptions import PapermillExecutionError

    notebook = jupytext.read(source)
    notebook.metadata["kernelspec"] = {"name": KERNEL, "display_name": "lintf", "language": "python"}
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=output.parent) as tmp:
        raw, executed = Path(tmp) / f"{source.stem}.ipynb", Path(tmp) / f"{source.stem}.out.ipynb"
        jupytext.write(notebook, raw)
        try:
            papermill.execute_notebook(str(raw), str(executed), parameters=parameters, kernel_name=KERNEL,
                                       cwd=str(ROOT / "notebooks"), progress_bar=False)
        except PapermillExecutionError as error:
            failed = papermill_failed_cell(executed, error.exec_count)
            print(f"\n{source.name}: cell [{error.exec_count}] failed: {error.ename}: {error.evalue}\n"
                  f"--- cell source ---\n{failed}\n-------------------", file=sys.stderr)
            raise SystemExit(1)
        hide_injected_parameters(executed)
        executed.replace(output)


def hide_injected_parameters(path):
    """Tag papermill's injected "# Parameters" cell remove-cell: the page shows the notebook, and every figure
    caption states the effective fidelity."""
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]
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
    columns = ("verdict", *(c for c in COLUMNS if c != "verdict"))
    return markdown_table([{**row, "verdict": f"{SYMBOLS[row['verdict']][0]} {row['verdict']}",
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


def _clock(seconds):
    return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"


# Each notebook's measured time from an empty result cache on this project's 2-core machines, numba's kernels compiled
# (2026-12-01; quick: one fresh-clone `make book PROFILE=quick`; paper: the notebooks one at a time, the README's table,
# where Figs. 12-14 ran after Table 2 and found its depth grids cached: in a book build Figs. 12-14 pay for them and
# Table 2 reuses them, the sum is the same). Until this machine has built a profile once (_build/timings-*.json), what
# is left is forecast from these, scaled by how fast this build has gone so far.
MEASURED_SECONDS = {
    "quick": {"fig02_adam_vs_sgd": 53, "fig03_gradient_noise": 20, "fig04_condition_number": 17,
              "fig05_directional_smoothness": 7, "fig07_attention_variants": 37,
              "fig08_parametrization_and_scale": 39, "fig09_11_covariate_tails": 84, "fig12_14_depth": 141,
              "fig15_nonlinear_regression": 63, "fig16_generalized_smoothness": 21,
              "poster_kernels_convergence": 32, "poster_landscape": 11, "table2_learning_rates": 17},
    "paper": {"fig02_adam_vs_sgd": 233, "fig03_gradient_noise": 58, "fig04_condition_number": 95,
              "fig05_directional_smoothness": 10, "fig07_attention_variants": 312,
              "fig08_parametrization_and_scale": 1499, "fig09_11_covariate_tails": 617, "fig12_14_depth": 1217,
              "fig15_nonlinear_regression": 2058, "fig16_generalized_smoothness": 39,
              "poster_kernels_convergence": 166, "poster_landscape": 22, "table2_learning_rates": 408},
}


def _left(remaining, timings, elapsed, done, measured=None):
    """', about N left' for the notebooks still to run: each one's time in the last build of this profile
    (`timings`), else its `measured` time scaled by this build's pace so far (elapsed against the measured times of
    the notebooks `done`), else the mean so far."""
    if not remaining:
        return ""
    measured = measured or {}
    measured_done = sum(measured[d] for d in done) if all(d in measured for d in done) else 0
    pace = elapsed / measured_done if measured_done > 0 else 1.0
    mean = elapsed / len(done) if done else None
    known = [timings.get(s.stem, measured[s.stem] * pace if s.stem in measured else mean) for s in remaining]
    if any(t is None for t in known):
        return ""
    return f", about {_clock(sum(known))} left"


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
        hide_injected_parameters(executed_dir / reference.name)


def build(profile="paper", only=(), parameters=None, from_references=False):
    """Execute the selected notebooks with `profile` (and extra papermill parameters), then build the site.
    from_references: execute nothing, build the quick edition from the committed reference notebooks. `make test`
    does this right after nbval has re-executed every notebook and found its checked outputs unchanged (executing
    them a second time for the site cost ~1.5 min of CI)."""
    check_choice("profile", profile, tuple(PROFILES))
    chosen = select(only)
    if from_references and (profile != "quick" or only or parameters):
        raise ParameterError("from_references", from_references,
                             "only with --profile quick, no --only and no parameters (the references are the "
                             "quick edition of every notebook)")
    check_kernel()
    executed_dir = STAGE / "notebooks"
    STAGE.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(STAGE / "book", ignore_errors=True)
    shutil.copytree(ROOT / "book", STAGE / "book")
    shutil.copytree(ROOT / "_static", STAGE / "_static", dirs_exist_ok=True)  # the site's own CSS
    shutil.copy2(ROOT / "_toc.yml", STAGE / "_toc.yml")
    (STAGE / "_config.yml").write_text(yaml.safe_dump(staged_config(yaml.safe_load((ROOT / "_config.yml").read_text())),
                                                      allow_unicode=True, sort_keys=False))
    # Each notebook's time of the last build of this profile: the estimate of what is left (else MEASURED_SECONDS).
    timings_path = BUILD / f"timings-{profile}.json"
    timings = json.loads(timings_path.read_text()) if timings_path.exists() else {}
    begin = time.perf_counter()
    if from_references:
        stage_references(chosen, executed_dir)
        chosen = []
    for i, source in enumerate(chosen):
        counter = f"[{i + 1}/{len(chosen)}] {source.name}"
        elapsed = time.perf_counter() - begin
        done = [c.stem for c in chosen[:i]]
        print(f"{counter} (profile {profile}) starts at {_clock(elapsed)}"
              f"{_left(chosen[i:], timings, elapsed, done, MEASURED_SECONDS[profile])}", flush=True)
        start = time.perf_counter()
        execute(source, executed_dir / f"{source.stem}.ipynb", {"profile": profile, **(parameters or {})})
        timings[source.stem] = time.perf_counter() - start
        timings_path.write_text(json.dumps(timings, indent=1))
        elapsed = time.perf_counter() - begin
        print(f"{counter} done in {_clock(timings[source.stem])}; elapsed {_clock(elapsed)}"
              f"{_left(chosen[i + 1:], timings, elapsed, done + [source.stem], MEASURED_SECONDS[profile])}", flush=True)
    executed = [executed_dir / f"{s.stem}.ipynb" for s in notebook_sources()]
    missing = [p.stem for p in executed if not p.exists()]
    if missing:
        raise SystemExit(f"only: {', '.join(missing)} not executed yet; build once without --only")
    fill(STAGE / "book" / "settings.md", SETTINGS_MARKER, settings_tables())
    rows = scorecard_rows(executed)
    fill(STAGE / "book" / "scorecard.md", SCORECARD_MARKER, scorecard_table(rows))
    fill(STAGE / "book" / "intro.md", GLANCE_MARKER, at_a_glance(rows, edition(profile)))
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
