"""The premise in one table (Section 2): does the linear Transformer look like a real Transformer, or like a CNN?

A scorecard row that measures a feature on one network or setting carries a `premise` entry, premise_entry(...): the
table's row (a real network or Setting 1-3), its column (a feature), whether the page's rule finds the feature, and
the number behind it. The book build collects the entries from the executed notebooks' scorecard rows (book.py) and
writes the table into book/premise.md and the intro: one source for each number, the page that measured it."""

from collections import Counter
from html import escape

REAL = {"transformer": "Transformer LM", "cnn": "CNN (LeNet-5)", "lstm": "LSTM LM"}
ROW_OF_NETWORK = {"lenet5": "cnn", "transformer": "transformer", "transformer_small": "transformer", "lstm": "lstm"}
#                  realnets' networks -> the table's real rows (the PTB-shaped and the small Transformer share one)
MINIATURE = {"setting1": "Setting 1", "setting2": "Setting 2", "setting3": "Setting 3"}
ROWS = {**REAL, **MINIATURE}
# each feature as the book's rule reads it; what a setting resembles is read against the Transformer and the CNN, the
# contrast the premise is about (the LSTM, Zhang et al.'s network for smoothness, is a third row to compare by eye)
FEATURES = {"gap": "Adam ≫ SGD (Fig. 2's rule)",
            "noise": "heavy-tailed gradient noise (Fig. 3's rule)",
            "conditioning": "SGD's path worse conditioned than Adam's (Fig. 4's rule)",
            "smoothness": "(L0, L1)-smoothness (Fig. 16's rule)"}
REFERENCES = ("transformer", "cnn")


def premise_entry(row, feature, found, value):
    """A scorecard row's `premise` entry: on `row` (a key of ROWS) the page's rule finds `feature` (a key of
    FEATURES) or not (`found`), measured as `value` (a short text)."""
    if row not in ROWS or feature not in FEATURES:
        raise ValueError(f"premise entry: row in {tuple(ROWS)}, feature in {tuple(FEATURES)}; got {row}, {feature}")
    return {"row": row, "feature": feature, "found": bool(found), "value": str(value)}


def entries(rows):
    """{(row, feature): the entry with its page} of scorecard rows (each with the 'stem' of its notebook, as the book
    build collects them; the page is its link from book/); the first one wins."""
    found = {}
    for row in rows:
        entry = row.get("premise")
        if entry:
            page = f"../notebooks/{row['stem']}.ipynb" if row.get("stem") else ""
            found.setdefault((entry["row"], entry["feature"]), {**entry, "page": page})
    return found


def resemblance(found, setting, feature):
    """In words: whether `setting` (a key of MINIATURE) looks like the real networks on `feature`, from entries():
    "like the Transformer", "like the CNN", "like both", "like neither", or "not measured"."""
    mine = found.get((setting, feature))
    references = [found.get((name, feature)) for name in REFERENCES]
    if mine is None or any(r is None for r in references):
        return "not measured"
    transformer, cnn = (r["found"] for r in references)
    if transformer == cnn:
        return "like both" if mine["found"] == transformer else "like neither"
    return "like the Transformer" if mine["found"] == transformer else "like the CNN"


def _cell(entry):
    if entry is None:
        return "—"
    mark = "yes" if entry["found"] else "no"
    return f"**{mark}**: [{entry['value']}]({entry['page']})" if entry["page"] else f"**{mark}**: {entry['value']}"


def table(rows):
    """The premise table (Markdown, for a page in book/) of scorecard rows: one line per network or setting, one
    column per feature (does the page's rule find it, and the number, linking to the page), then for Settings 1-3
    what they resemble per feature, and a one-sentence count."""
    found = entries(rows)
    if not found:
        return "_No page has reported a premise measurement yet._\n"
    head = "| | " + " | ".join(FEATURES.values()) + " |"
    lines = [head, "|---" * (len(FEATURES) + 1) + "|"]
    for key, label in ROWS.items():
        lines.append(f"| {label} | " + " | ".join(_cell(found.get((key, f))) for f in FEATURES) + " |")
    lines += ["", "| the miniature | " + " | ".join(FEATURES.values()) + " |",
              "|---" * (len(FEATURES) + 1) + "|"]
    verdicts = {(s, f): resemblance(found, s, f) for s in MINIATURE for f in FEATURES}
    for setting, label in MINIATURE.items():
        lines.append(f"| {label} | " + " | ".join(verdicts[setting, f] for f in FEATURES) + " |")
    counts = Counter(verdicts.values())
    lines += ["", f"Of the {len(verdicts)} (setting, feature) cells: "
              + ", ".join(f"{escape(v)} {n}" for v, n in counts.most_common()) + "."]
    return "\n".join(lines) + "\n"
