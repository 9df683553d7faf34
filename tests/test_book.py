"""Generated pages and profiles."""

import nbformat
import pytest

from lintf_core import profiles, scorecard
from lintf_core.book import settings_tables
from lintf_core.errors import ParameterError
from lintf_core.settings import SETTINGS


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
    from lintf_core.book import execute

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
