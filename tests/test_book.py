"""Generated pages and profiles; the build's notebooks side by side."""

import json
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import yaml

from lintf_core import book, execution, profiles, scorecard
from lintf_core.book import settings_tables
from lintf_core.errors import ParameterError
from lintf_core.settings import SETTINGS

ROOT = Path(__file__).resolve().parents[1]


def test_settings_tables_come_from_the_registry():
    text = settings_tables()
    for name, setting in SETTINGS.items():
        assert f"`{name}`" in text
    # the Table 2 vs code discrepancy is visible
    row = next(line for line in text.splitlines() if line.startswith("| `setting1` | 0.02"))
    assert "| 0.02 | 0.005 | 0.02 | 0.02 |" in row


def test_profiles_and_overrides():
    quick = profiles.resolve("quick")
    paper = profiles.resolve("paper")
    assert paper["seeds"] == [0, 1, 2, 3, 4, 5] and paper["n_iters"] == 10000 and paper["batch_size"] == 1000
    assert quick["n_iters"] < paper["n_iters"]
    assert profiles.resolve("quick", n_iters=300, seeds=None)["n_iters"] == 300
    assert profiles.resolve("quick", seeds=None)["seeds"] == quick["seeds"]
    with pytest.raises(ParameterError, match="profile"):
        profiles.resolve("fast")


def test_transposed_table_swaps_rows_and_columns():
    rows = [{"": "L=2", "gap": 1, "kurtosis": 0.5}, {"": "L=8", "gap": 3, "kurtosis": 2}]
    assert scorecard.transposed_table(rows).splitlines() == ["|  | L=2 | L=8 |", "|---|---|---|", "| gap | 1 | 3 |",
                                                             "| kurtosis | 0.5 | 2 |"]


def test_scorecard_rows_travel_through_notebook_outputs():
    rows = [{"claim": "c", "figure": "Fig. 2", "setting": "setting1", "paper": "p", "ours": "o | x",
             "verdict": "reproduced"}]
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("")
    cell.outputs = [nbformat.v4.new_output("display_data", data={scorecard.MIME: rows, "text/plain": "t"})]
    nb.cells = [cell]
    assert scorecard.rows_of_notebook(nb) == rows
    table = scorecard.markdown_table(rows)
    assert "o \\| x" in table and table.count("\n") == 2


def test_a_failing_cell_stops_the_build_and_is_shown(tmp_path, capsys):
    from lintf_core.execution import execute

    source = tmp_path / "figXX_broken.py"
    source.write_text('# %% tags=["parameters"]\nprofile = "quick"\n\n# %%\nx = 1\n\n# %%\nraise ValueError("boom " + profile)\n')
    output = tmp_path / "out" / "figXX_broken.ipynb"
    with pytest.raises(SystemExit) as stop:
        execute(source, output, {"profile": "paper"})
    assert stop.value.code == 1
    err = capsys.readouterr().err
    assert "figXX_broken.py" in err and "ValueError: boom paper" in err and 'raise ValueError("boom " + profile)' in err
    assert not output.exists(), "no half-executed notebook is left behind"
    assert not any(output.parent.iterdir())


def test_list_parameters_as_papermill_delivers_them():
    assert profiles.as_list("settings", '["setting3"]') == ["setting3"]
    assert profiles.as_list("settings", "setting2") == ["setting2"]
    assert profiles.as_list("seeds", "[0, 4]") == [0, 4]
    assert profiles.as_list("seeds", None) is None
    with pytest.raises(ParameterError, match="settings"):
        profiles.as_list("settings", '["setting3"')


def test_only_names_an_existing_notebook():
    from lintf_core.book import select

    assert [p.stem for p in select(["fig02"])] == ["fig02_adam_vs_sgd"]
    with pytest.raises(ParameterError, match="only: got 'fig99'"):
        select(["fig02", "fig99"])


def test_progress_lines_forecast_from_the_last_build_the_measured_times_or_the_mean_so_far():
    from pathlib import Path

    from lintf_core.book import PROFILES, notebook_sources
    from lintf_core.execution import MEASURED_SECONDS, _clock, _left, longest_first

    remaining = [Path("fig07_x.py"), Path("fig08_y.py")]
    assert _clock(125.4) == "2 min 05 s"
    assert _left(remaining, {"fig07_x": 60, "fig08_y": 30}, done={}) == ", about 1 min 30 s left"
    # mean so far: 50 s
    assert _left(remaining, {"fig07_x": 60}, done={"a": 40, "b": 60}) == ", about 1 min 50 s left"
    assert _left(remaining, {}, done={}) == ""  # nothing to go by yet
    assert _left([], {}, done={"a": 10}) == ""
    # measured times, scaled by this build's pace: "a" was measured at 40 s and took 80 s here, so twice as slow
    measured = {"a": 40, "fig07_x": 100, "fig08_y": 200}
    assert _left(remaining, {}, done={"a": 80}, measured=measured) == ", about 10 min 00 s left"
    assert _left(remaining, {"fig08_y": 30}, done={"a": 80}, measured=measured) == ", about 3 min 50 s left"
    assert _left(remaining, {}, done={}, measured=measured) == ", about 5 min 00 s left"
    # two side by side: the work shared, but never sooner than the longest one; a running one counts what it has left
    assert _left(remaining, {"fig07_x": 60, "fig08_y": 30}, done={}, jobs=2) == ", about 1 min 00 s left"
    assert _left(remaining, {"fig07_x": 100, "fig08_y": 60}, done={}, jobs=2) == ", about 1 min 40 s left"
    timings = {"fig07_x": 60, "fig08_y": 30}
    assert _left(remaining[:1], timings, done={}, jobs=1, running={"fig08_y": 10}) == ", about 1 min 20 s left"
    assert _left([], timings, done={}, jobs=2, running={"fig08_y": 10}) == ", about 0 min 20 s left"
    assert _left([], timings, done={}, jobs=2, running={"fig08_y": 50}) == ", about 0 min 00 s left"
    # the longest first, by the last build's times before the measured ones
    order = longest_first(remaining, {"fig08_y": 30}, {"fig07_x": 20, "fig08_y": 10})
    assert [s.stem for s in order] == ["fig08_y", "fig07_x"]
    # ... after the notebooks whose runs others read (Fig. 2's), however short
    fig02 = next(s for s in notebook_sources() if s.stem == "fig02_adam_vs_sgd")
    order = longest_first([*remaining, fig02], {"fig08_y": 30, "fig02_adam_vs_sgd": 1}, {})
    assert [s.stem for s in order] == ["fig02_adam_vs_sgd", "fig08_y", "fig07_x"]
    # every notebook of each profile has a measured time
    for profile in PROFILES:
        assert sorted(MEASURED_SECONDS[profile]) == sorted(s.stem for s in notebook_sources())


def _timed_notebook(path, body):
    path.write_text('# %% tags=["parameters"]\nprofile = "quick"\n\n# %%\nimport os, time\n'
                    'from ipykernel import get_connection_info\n'
                    'start = time.time()\nthreads = os.environ.get("OMP_NUM_THREADS"), '
                    'os.environ.get("NUMBA_NUM_THREADS"), os.environ.get("MALLOC_TRIM_THRESHOLD_", "unset")\n'
                    'transport = get_connection_info(unpack=True)["transport"]\n'
                    + body + "\nprint(start, time.time(), *threads, transport)\n")
    return path


def test_notebooks_run_side_by_side_one_thread_each(tmp_path, monkeypatch):
    """make book executes one notebook per core at once, each kernel on one thread without Dask's malloc setting, and
    records each one's time."""
    monkeypatch.setattr(book, "BUILD", tmp_path)
    # 15 s each: two kernels can begin their cells seconds apart on a loaded 2-core machine
    sources = [_timed_notebook(tmp_path / f"fig0{i}_sleep.py", "time.sleep(15)") for i in (1, 2)]
    out = tmp_path / "executed"
    timings = {}
    execution.run_notebooks(sources, out, {"profile": "quick"}, timings, tmp_path / "timings.json", jobs=2)
    spans = []
    for source in sources:
        cells = nbformat.read(out / f"{source.stem}.ipynb", as_version=4).cells
        start, end, omp, numba, malloc, transport = cells[-1].outputs[0]["text"].split()
        assert (omp, numba) == ("1", "1")
        assert transport == "ipc", "kernels on Unix sockets: no TCP port for two starting at once to both draw"
        assert malloc == "unset", "Dask's MALLOC_TRIM_THRESHOLD_ slows torch's large buffers (cluster.py)"
        spans.append((float(start), float(end)))
    assert max(s for s, _ in spans) < min(e for _, e in spans), "the two ran at the same time"
    assert sorted(timings) == ["fig01_sleep", "fig02_sleep"] and all(t >= 15 for t in timings.values())
    assert sorted(json.loads((tmp_path / "timings.json").read_text())) == sorted(timings)


def test_a_failing_notebook_stops_those_running_beside_it(tmp_path, capfd):
    sources = [_timed_notebook(tmp_path / "fig01_long.py", "time.sleep(120)"),
               _timed_notebook(tmp_path / "fig02_broken.py", "time.sleep(2)\nraise ValueError('boom')")]
    out = tmp_path / "executed"
    begin = time.perf_counter()
    with pytest.raises(SystemExit, match="fig02_broken.py failed"):
        execution.run_notebooks(sources, out, {"profile": "quick"}, {}, tmp_path / "timings.json", jobs=2)
    assert time.perf_counter() - begin < 60, "the long notebook was stopped, not waited for"
    assert "ValueError: boom" in capfd.readouterr().err
    assert not out.exists() or not any(out.iterdir()), "no notebook, no temporary folder left behind"


def test_papermills_injected_parameters_are_shown_under_a_heading(tmp_path):
    import nbformat

    from lintf_core.execution import INJECTED_HEADING, label_injected_parameters

    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell('profile = "quick"', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell('# Parameters\nprofile = "paper"\nn_iters = 300\n',
                                  metadata={"tags": ["injected-parameters"]}),
        nbformat.v4.new_code_cell("x = 1")])
    path = tmp_path / "n.ipynb"
    nbformat.write(notebook, path)
    for _ in range(2):  # labelling twice changes nothing more
        label_injected_parameters(path)
    cells = nbformat.read(path, as_version=4).cells
    assert [cell.metadata.get("tags", []) for cell in cells] == [["parameters"], ["injected-parameters"], []]
    assert cells[1].source == f'{INJECTED_HEADING}\nprofile = "paper"\nn_iters = 300'
    assert cells[0].source == 'profile = "quick"' and cells[2].source == "x = 1"


def test_launch_buttons_are_off_without_a_repository_url_and_on_with_one():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    staged = book.staged_config(config)
    assert not set(staged["launch_buttons"]) & set(book.LAUNCH_PROVIDERS)
    config["repository"] = {"url": "https://github.com/someone/lintf", "branch": "main"}
    staged = book.staged_config(config)
    assert staged["launch_buttons"]["binderhub_url"] == "https://mybinder.org"
    assert staged["launch_buttons"]["thebe"] is False  # Thebe stays off: it loads from another host


def test_the_at_a_glance_grid_places_counts_and_links_every_verdict():
    rows = [dict(claim="Adam beats SGD", figure="Fig. 2", setting=s, verdict=v, page="../notebooks/fig02.html")
            for s, v in (("setting1", "reproduced"), ("setting2", "reproduced"), ("setting3", "partly reproduced"))]
    rows += [dict(claim="R_med ratio", figure="Fig. 4", setting="setting1, t=750", verdict="not reproduced",
                  page="../notebooks/fig04.html"),
             dict(claim="depth", figure="Fig. 12", setting="L=2, L=4", verdict="not reproduced",
                  page="../notebooks/fig12.html")]
    html = scorecard.at_a_glance(rows, "quick (3 seeds)")
    assert html.count("<tr") == 1 + 3  # the header, then one line per claim
    assert html.count('href="../notebooks/fig02.html"') == 3 and html.count("✔") >= 2 and "◐" in html
    assert "t=750" in html and "L=2, L=4" in html  # a detail in its Setting column; other settings under 'other'
    assert "<b>5 verdicts</b>" in html and "reproduced: <b>2</b>" in html and "not reproduced: <b>2</b>" in html
    assert "quick (3 seeds)" in html
    assert "0 verdicts" in scorecard.at_a_glance([], "paper")


def test_each_script_is_written_once_per_page():
    """Sphinx 7.4 hands a late inline script over twice, once with file None and once with '' (sphinx_site.py)."""
    from sphinx.builders.html._assets import _JavaScript

    from lintf_core.sphinx_site import drop_repeated_scripts

    thebe = 'const THEBE_JS_URL = "x"'
    scripts = [_JavaScript("_static/a.js"), _JavaScript(None, body=thebe), _JavaScript("_static/b.js", defer="defer"),
               _JavaScript("", body=thebe), _JavaScript("_static/a.js"), _JavaScript("", body="other")]
    kept = drop_repeated_scripts(scripts)
    assert [(s.filename, s.attributes) for s in kept] == [
        ("_static/a.js", {}), (None, {"body": thebe}), ("_static/b.js", {"defer": "defer"}), ("", {"body": "other"})]


def test_the_scorecard_table_puts_the_verdict_first_with_its_symbol():
    rows = [dict(claim="Adam beats SGD", figure="Fig. 2", setting="setting1", paper="p", ours="o",
                 verdict="partly reproduced", stem="fig02_adam_vs_sgd")]
    header, _, line = book.scorecard_table(rows).splitlines()[:3]
    assert header.split("|")[1].strip() == "verdict"
    assert line.split("|")[1].strip() == "◐ partly reproduced"
    assert "[Fig. 2](../notebooks/fig02_adam_vs_sgd.ipynb)" in line


def test_the_root_redirect_page_names_the_favicon(tmp_path):
    page = tmp_path / "index.html"
    page.write_text('<meta http-equiv="Refresh" content="0; url=book/intro.html" />\n')
    book.add_favicon(page)
    book.add_favicon(page)
    assert page.read_text().count('rel="icon" href="_static/favicon.svg"') == 1
    assert 'url=book/intro.html' in page.read_text()


def test_the_site_from_references_takes_only_quick_profile_notebooks(tmp_path):
    """make test builds the site from the committed references (nbval has just re-executed them); a notebook that
    ran with another profile must not slip in, and the build refuses other profiles or a partial selection."""
    cells = [nbformat.v4.new_code_cell('profile = "quick"', metadata={"tags": ["parameters"]}),
             nbformat.v4.new_code_cell("x = 1")]
    quick, paper = tmp_path / "quick.ipynb", tmp_path / "paper.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), quick)
    ran_paper = nbformat.v4.new_notebook(cells=cells)
    ran_paper.metadata["papermill"] = {"parameters": {"profile": "paper"}}
    nbformat.write(ran_paper, paper)
    assert book.reference_profile(quick) == "quick" and book.reference_profile(paper) == "paper"
    staged = tmp_path / "staged"
    book.stage_references([quick.with_suffix(".py")], staged)
    assert (staged / "quick.ipynb").exists()
    with pytest.raises(SystemExit, match="paper.ipynb: not a quick-profile reference"):
        book.stage_references([paper.with_suffix(".py")], staged)
    with pytest.raises(ParameterError, match="from_references"):
        book.build(profile="paper", from_references=True)
    with pytest.raises(ParameterError, match="from_references"):
        book.build(profile="quick", only=["fig02"], from_references=True)
    # the committed references are all quick-profile notebooks
    assert {book.reference_profile(s.with_suffix(".ipynb")) for s in book.notebook_sources()} == {"quick"}


def test_a_notebooks_papermill_process_does_not_import_torch():
    """Each notebook's papermill process (python -m lintf_core.execution) only writes files: torch's ~1.3 s import,
    paid once per notebook, would be the kernel's alone."""
    code = "import sys, lintf_core.execution, lintf_core.cache; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
