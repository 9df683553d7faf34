"""Scorecard rows: one per paper claim, with the paper's statement, our measured value and a computed verdict.

A notebook calls show(rows): the reader sees a table, and the book build collects the same rows (carried as JSON in
the output's own MIME type) into book/scorecard.md. No side files: the executed notebook is the record.
"""

import json
from html import escape

from . import verdicts

MIME = "application/vnd.lintf.scorecard+json"
COLUMNS = ("claim", "figure", "setting", "paper", "ours", "verdict", "n", "uncertainty", "robust", "diagnosis")
# what every row must carry: the paper-protocol verdict, its n and uncertainty, and the reading robust to the draw
# (an outcome of ROBUST_OUTCOMES); "diagnosis" (verdicts.diagnose) comes from the page, or else is computed from the
# row's own test (verdicts.row_diagnosis) when it is shown
REQUIRED = COLUMNS[:-1]
VERDICTS = ("reproduced", "partly reproduced", "not reproduced")
ROBUST_OUTCOMES = ("holds", "opposite holds", "cannot tell")  # verdicts.OUTCOMES


def markdown_table(rows, columns=COLUMNS):
    def cell(value):
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def transposed_table(rows, key=""):
    """markdown_table of `rows` with rows and columns swapped: one column per row (headed by its `key` entry), one
    line per other field. For a few items with many numbers each."""
    fields = [k for k in rows[0] if k != key]
    return markdown_table([{key: field, **{row[key]: row[field] for row in rows}} for field in fields],
                          columns=[key, *[row[key] for row in rows]])


def show(rows):
    """Display the rows as a table in the notebook, carrying them as JSON for the book's scorecard page."""
    from IPython.display import display

    for row in rows:
        missing = [c for c in REQUIRED if c not in row]
        if missing or row["verdict"] not in VERDICTS or row["robust"] not in ROBUST_OUTCOMES:
            raise ValueError(f"scorecard row: needs {REQUIRED}, a verdict in {VERDICTS} and a robust outcome in "
                             f"{ROBUST_OUTCOMES}; got {row}")
    rows = [row if "diagnosis" in row else {**row, "diagnosis": verdicts.row_diagnosis(row)} for row in rows]
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


SYMBOLS = {"reproduced": ("✔", "#1a7f37", "#dafbe1"), "partly reproduced": ("◐", "#9a6700", "#fff8c5"),
           "not reproduced": ("✘", "#cf222e", "#ffebe9")}
ROBUST_SYMBOLS = {"holds": ("✔", "#1a7f37", "#dafbe1"), "cannot tell": ("?", "#9a6700", "#fff8c5"),
                  "opposite holds": ("✘", "#cf222e", "#ffebe9")}
GLANCE_COLUMNS = ("setting1", "setting2", "setting3")


def _glance_column(setting):
    """The grid column of a row's setting: Setting 1-3 (possibly with a detail such as 't=750'), else 'other'."""
    head, _, detail = str(setting).partition(", ")
    if head in GLANCE_COLUMNS and (not detail or "=" in detail):
        return head, detail
    return "other", str(setting)


def at_a_glance(rows, edition):
    """The findings in one grid: one line per claim, columns Setting 1-3 and 'other', each cell a coloured
    symbol per verdict linking to its figure's page (rows carry 'page', the page's path relative to the book
    page that shows the grid), with the counts and the edition that produced them. HTML (MyST passes it on)."""
    claims = {}
    for row in rows:
        column, detail = _glance_column(row["setting"])
        claims.setdefault((row["claim"], row["figure"]), {}).setdefault(column, []).append((row, detail))
    counts = {v: sum(r["verdict"] == v for r in rows) for v in VERDICTS}
    robust_counts = {o: sum(r.get("robust") == o for r in rows) for o in ROBUST_OUTCOMES}
    head = "".join(f"<th>{c.replace('setting', 'Setting ')}</th>" for c in GLANCE_COLUMNS)
    lines = ['<table class="lintf-glance" style="border-collapse: collapse; font-size: 0.85em; width: 100%">',
             f"<thead><tr><th style='text-align:left'>claim</th><th>figure</th>{head}"
             "<th style='text-align:left; min-width:10em'>other</th></tr></thead>",
             "<tbody>"]
    for (claim, figure), cells in claims.items():
        html = []
        for column in (*GLANCE_COLUMNS, "other"):
            badges = []
            for row, detail in cells.get(column, []):
                symbol, colour, background = SYMBOLS[row["verdict"]]
                robust = row.get("robust")
                title = (f"paper's protocol: {row['verdict']}; robust reading: {robust or 'none'}; n = "
                         f"{row.get('n', '?')}: {row['setting']}")
                label = f" <small>{escape(detail)}</small>" if detail else ""
                if robust in ROBUST_SYMBOLS:  # the robust reading's mark after the paper-protocol one
                    r_symbol, r_colour, _ = ROBUST_SYMBOLS[robust]
                    symbol = f"{symbol}<span style='color:{r_colour}'>│{r_symbol}</span>"
                # 'other' cells name what they compare (long): they wrap, so the claim column keeps its width
                wrap = "normal" if column == "other" else "nowrap"
                badges.append(f'<a href="{row["page"]}" title="{escape(title)}" style="color:{colour}; '
                              f'background:{background}; padding:0 0.3em; border-radius:3px; margin:1px 0; '
                              f'display:inline-block; text-decoration:none; white-space:{wrap}">{symbol}{label}</a>')
            align = "left" if column == "other" else "center"
            html.append(f"<td style='text-align:{align}'>{' '.join(badges)}</td>")
        lines.append(f"<tr style='border-top:1px solid #ddd'><td style='min-width:13em'>{escape(claim)}</td>"
                     f"<td style='white-space:nowrap'>{escape(figure)}</td>{''.join(html)}</tr>")
    lines.append("</tbody></table>")
    tally = ", ".join(f"{SYMBOLS[v][0]} {v}: <b>{counts[v]}</b>" for v in VERDICTS)
    robust_tally = ", ".join(f"{ROBUST_SYMBOLS[o][0]} {o}: <b>{robust_counts[o]}</b>" for o in ROBUST_OUTCOMES)
    lines.append(f"<p><b>{len(rows)} verdicts</b> — under the paper's protocol (the mark before the bar): {tally}. "
                 f"Read robustly (the mark after it: more seeds or evaluation batches where the page has them, and "
                 f"the uncertainty over seeds): {robust_tally}. Edition: <b>{escape(edition)}</b>.</p>")
    return "\n".join(lines) + "\n"
