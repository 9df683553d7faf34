"""The premise table (lintf_core/premise.py): entries from scorecard rows, what a setting resembles, the table."""

import pytest

from lintf_core import premise
from lintf_core.premise import premise_entry


def _rows(**found):
    """Scorecard rows with one premise entry each: found = {"row__feature": bool}."""
    rows = []
    for key, value in found.items():
        row, feature = key.split("__")
        rows.append({"claim": key, "stem": f"page_{row}", "premise": premise_entry(row, feature, value, f"v {key}")})
    return rows


def test_a_setting_resembles_the_network_it_agrees_with_where_the_two_differ():
    found = premise.entries(_rows(transformer__gap=True, cnn__gap=False, setting1__gap=True, setting2__gap=False))
    assert premise.resemblance(found, "setting1", "gap") == "like the Transformer"
    assert premise.resemblance(found, "setting2", "gap") == "like the CNN"
    assert premise.resemblance(found, "setting3", "gap") == "not measured"


def test_where_the_real_networks_agree_there_is_no_contrast_to_resemble():
    found = premise.entries(_rows(transformer__noise=True, cnn__noise=True, setting1__noise=True,
                                  setting2__noise=False))
    assert premise.resemblance(found, "setting1", "noise") == "like both"
    assert premise.resemblance(found, "setting2", "noise") == "like neither"


def test_the_lstm_is_a_row_to_compare_not_a_reference():
    """Every feature, smoothness included, is read against the Transformer and the CNN; the LSTM's entry alone
    decides nothing."""
    found = premise.entries(_rows(lstm__smoothness=True, setting1__smoothness=True))
    assert premise.resemblance(found, "setting1", "smoothness") == "not measured"
    found = premise.entries(_rows(lstm__smoothness=False, transformer__smoothness=True, cnn__smoothness=False,
                                  setting1__smoothness=True))
    assert premise.resemblance(found, "setting1", "smoothness") == "like the Transformer"


def test_a_missing_reference_is_not_measured():
    found = premise.entries(_rows(transformer__gap=True, setting1__gap=True))  # no CNN
    assert premise.resemblance(found, "setting1", "gap") == "not measured"


def test_the_table_links_each_number_to_its_page_and_counts_the_cells():
    text = premise.table(_rows(transformer__gap=True, cnn__gap=False, setting1__gap=True))
    assert "| Transformer LM | **yes**: [v transformer__gap](../notebooks/page_transformer.ipynb)" in text
    assert "| LSTM LM | — | — | — | — |" in text
    assert "| Setting 1 | like the Transformer | not measured | not measured | not measured |" in text
    assert "Of the 12 (setting, feature) cells: not measured 11, like the Transformer 1." in text


def test_the_first_entry_of_a_cell_wins_and_no_entry_says_so():
    rows = _rows(transformer__gap=True) + _rows(transformer__gap=False)
    assert premise.entries(rows)["transformer", "gap"]["found"] is True
    assert premise.table([{"claim": "x"}]).startswith("_No page")


def test_a_bad_entry_is_refused():
    with pytest.raises(ValueError):
        premise_entry("resnet", "gap", True, "")
    with pytest.raises(ValueError):
        premise_entry("setting1", "sharpness", True, "")


def test_every_real_network_has_its_row():
    from lintf_core import realnets
    assert set(premise.ROW_OF_NETWORK) == set(realnets.MODELS)
    assert set(premise.ROW_OF_NETWORK.values()) == set(premise.REAL)
