"""`make lab`: JupyterLab with jupytext opens a figure's Jupytext source as a notebook on the lintf kernel. The test
starts the server as the Makefile does (another port, a known token), asks its contents API, and stops it."""

import json
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url, token):
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def test_lab_opens_a_figure_source_as_a_notebook_on_the_lintf_kernel(tmp_path):
    port, token = _free_port(), secrets.token_hex(16)
    jupyter = Path(sys.executable).with_name("jupyter")
    server = subprocess.Popen([str(jupyter), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--allow-root",
                               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={ROOT}"],
                              stdout=subprocess.DEVNULL, stderr=open(tmp_path / "lab.log", "w"))
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                _get(f"{base}/api/status", token)
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    raise AssertionError("JupyterLab did not start: " + (tmp_path / "lab.log").read_text()[-2000:])
                time.sleep(0.5)
        model = _get(f"{base}/api/contents/notebooks/fig02_adam_vs_sgd.py?type=notebook&content=1", token)
        assert model["type"] == "notebook"
        notebook = model["content"]
        assert notebook["metadata"]["kernelspec"]["name"] == "lintf"
        cells = notebook["cells"]
        assert cells[0]["cell_type"] == "markdown" and "Figure 2" in "".join(cells[0]["source"])
        assert any("parameters" in c["metadata"].get("tags", []) for c in cells)
        kernels = _get(f"{base}/api/kernelspecs", token)["kernelspecs"]
        assert "lintf" in kernels
    finally:
        server.terminate()
        server.wait(timeout=30)
