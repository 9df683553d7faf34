"""Notebook hygiene: Jupytext sources and committed notebooks in sync, literal parameters cells, every notebook in
the table of contents, and nbval able to catch a drifting number (not only a crash)."""

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted((ROOT / "notebooks").glob("*.py"))


def cells(notebook):
    return [(c.cell_type, c.source.strip()) for c in notebook.cells]


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_paired_notebook_is_in_sync(source):
    paired = source.with_suffix(".ipynb")
    assert paired.exists(), f"{paired.name} is missing: run 'make references' and commit it"
    committed = nbformat.read(paired, as_version=4)
    assert cells(jupytext.read(source)) == cells(committed), (
        f"{source.name} and {paired.name} differ: run 'make references' and commit both")
    assert committed.metadata["kernelspec"]["name"] == "lintf"
    assert any(o for c in committed.cells if c.cell_type == "code" for o in c.get("outputs", [])), (
        f"{paired.name} has no outputs: nbval needs the executed reference")


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_parameters_cell_holds_literals_only(source):
    notebook = jupytext.read(source)
    tagged = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    tree = ast.parse(tagged[0].source)
    names = []
    for node in tree.body:
        assert isinstance(node, ast.Assign), f"only assignments in the parameters cell: {ast.unparse(node)}"
        ast.literal_eval(node.value)  # raises if not a literal
        names += [t.id for t in node.targets]
    assert "profile" in names


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_is_in_toc_and_defines_no_model_code(source):
    assert re.search(rf"file:\s*notebooks/{source.stem}\s*$", (ROOT / "_toc.yml").read_text(), re.M)
    text = source.read_text()
    assert not re.search(r"^(class .*nn\.Module|def (forward|train_step|attention)\b)", text, re.M)
    assert "NBVAL_CHECK_OUTPUT" in text, "one cell must carry key numbers for nbval to compare"


GUARD = '''
import torch
from lintf_core.data import PromptStream, prompt_statistics
from lintf_core.model import Architecture, init_params, loss
from lintf_core.settings import get_setting
setting = get_setting("setting1")
stats = prompt_statistics(PromptStream(setting, 0).sample(200))
theta = init_params(Architecture.of(setting), [0], 0.3)
'''


def run_nbval(path):
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
                           "--nbval-kernel-name", "lintf", str(path)], capture_output=True, text=True,
                          cwd=path.parent)


def test_nbval_fails_when_a_key_number_drifts(tmp_path):
    """The mechanism CI relies on: a cell marked NBVAL_CHECK_OUTPUT printing a rounded number computed by
    lintf_core passes against its own output and fails once the reference number differs."""
    from jupyter_client.kernelspec import find_kernel_specs

    if "lintf" not in find_kernel_specs():
        pytest.fail("the 'lintf' kernel is not registered: run 'make setup'")
    import papermill

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "lintf", "display_name": "lintf", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(GUARD),
                nbformat.v4.new_code_cell('# NBVAL_CHECK_OUTPUT\nprint(f"loss at init: {loss(theta, '
                                          'Architecture.of(setting), stats)[0].item():.3g}")')]
    reference = tmp_path / "guard.ipynb"
    nbformat.write(nb, tmp_path / "raw.ipynb")
    papermill.execute_notebook(str(tmp_path / "raw.ipynb"), str(reference), kernel_name="lintf",
                               progress_bar=False)
    printed = nbformat.read(reference, as_version=4).cells[1].outputs[0]["text"]
    assert printed.startswith("loss at init: ")

    passed = run_nbval(reference)
    assert passed.returncode == 0, passed.stdout + passed.stderr

    drifted = json.loads(reference.read_text())
    number = printed.split(": ")[1].strip()
    drifted["cells"][1]["outputs"][0]["text"] = [printed.replace(number, str(float(number) * 1.1)[:5])]
    reference.write_text(json.dumps(drifted))
    failed = run_nbval(reference)
    assert failed.returncode != 0, "nbval did not notice a changed key number"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_glue_roles_are_well_formed(source):
    """{glue:kind}`key` roles in the prose: a role closed by '}' instead of a backtick silently swallows the rest
    of the line until the book build (with -W) fails at the very end of `make test`."""
    text = source.read_text()
    broken = re.findall(r"\{glue:\w+\}`[^`\n]*\}(?!`)", text)
    assert not broken, f"malformed glue roles: {broken}"
