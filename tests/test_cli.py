"""python -m lintf_core: the JSON of `train --out` (Trajectories.to_json), and one-line errors for bad input."""

import json
import subprocess
import sys

import pytest

from lintf_core.__main__ import parse_seeds


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "lintf_core", *args], capture_output=True, text=True, cwd=cwd)


def test_train_writes_the_design_json(tmp_path):
    out = tmp_path / "runs.json"
    done = cli("train", "--setting", "setting1", "--optimizer", "sgd", "--optimizer", "adam", "--seeds", "0-2",
               "--iters", "20", "--eval-every", "10", "--batch-size", "16", "--quiet", "--out", str(out))
    assert done.returncode == 0, done.stderr
    data = json.loads(out.read_text())
    assert data["setting"] == "setting1"
    assert len(data["runs"]) == 6
    run = data["runs"][0]
    assert {"optimizer", "lr", "seed", "iterations", "eval_loss"} <= set(run)
    assert run["iterations"] == [0, 10, 20] and len(run["eval_loss"]) == 3
    assert {(r["optimizer"], r["seed"]) for r in data["runs"]} == {(o, s) for o in ("sgd", "adam") for s in (0, 1, 2)}
    assert {r["lr"] for r in data["runs"]} == {0.02}
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("args, flag", [
    (["--setting", "nope"], "--setting"),
    (["--setting", "setting1", "--iters", "-5"], "--iters"),
    (["--setting", "setting1", "--lr", "0"], "--lr"),
    (["--setting", "setting1", "--lr", "-0.1"], "--lr"),
    (["--setting", "setting1", "--optimizer", "lion"], "--optimizer"),
    (["--setting", "setting1", "--seeds", "5-2"], "--seeds"),
    (["--setting", "setting1", "--lr-source", "blog"], "--lr-source"),
    (["--setting", "setting1", "--sampler", "tokens"], "--sampler"),
])
def test_bad_values_stop_with_one_line(args, flag):
    done = cli("train", *args, "--quiet")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert flag in lines[0] and "allowed" in lines[0]


def test_settings_prints_tables_1_and_2():
    done = cli("settings")
    assert done.returncode == 0
    for name in ("setting1", "setting2", "setting3", "sphere", "heavy_tailed", "depth8", "large", "nonlinear"):
        assert f"`{name}`" in done.stdout


def test_parse_seeds():
    assert parse_seeds("0-5") == [0, 1, 2, 3, 4, 5]
    assert parse_seeds("1,4") == [1, 4]
    assert parse_seeds("7") == [7]
