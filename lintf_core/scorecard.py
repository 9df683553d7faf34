"""Scorecard rows: one per paper claim, with the paper's statement, our measured value and a computed verdict.

A notebook calls show(rows): the reader sees a table, and the book build collects the same rows (carried as JSON in
the output's own MIME type) into book/scorecard.md. No side files: the executed notebook is the record.
"""

import json

MIME = "application/vnd.lintf.scorecard+json"
COLUMNS = ("claim", "figure", "setting", "paper", "ours", "verdict")
VERDICTS = ("reproduced", "partly reproduced", "not reproduced")


def markdown_table(rows, columns=COLUMNS):
    def cell(value):
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def show(rows):
    """Display the rows as a table in the notebook, carrying them as JSON for the book's scorecard page."""
    from IPython.display import display

    for row in rows:
        missing = [c for c in COLUMNS if c not in row]
        if missing or row["verdict"] not in VERDICTS:
            raise ValueError(f"scorecard row: needs {COLUMNS} and a verdict in {VERDICTS}; got {row}")
    table = markdown_table(rows)
    display({"text/markdown": table, "text/plain": table, MIME: json.loads(json.dumps(rows))}, raw=True)


def rows_of_notebook(notebook):
    """Every scorecard row an executed notebook (nbformat node) displayed, in order."""
    rows = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if MIME in data:
                payload = data[MIME]
                rows.extend(json.loads(payload) if isinstance(payload, str) else payload)
    return rows
