"""A Sphinx extension of the book's build (listed in _config.yml): each page loads each script once.

An inline script that an extension adds after the builder started (sphinx-thebe's `const THEBE_JS_URL = ...`, which
jupyter-book 1.x loads even with Thebe off, and sphinx-togglebutton's selector) reaches Sphinx 7.4's page twice: once
with file None, once with file '' (Sphinx's own `registry.js_files or ''`). The browser then logs "Identifier
'THEBE_JS_URL' has already been declared" on every page, and the browser test (tests/site) fails on any console
error, so the repeat is dropped here.
"""


def drop_repeated_scripts(scripts):
    """The scripts in order, each (file, attributes) pair kept at its first occurrence only."""
    seen, kept = set(), []
    for script in scripts:
        key = (str(getattr(script, "filename", script) or ""), repr(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    return kept


def _on_page(app, pagename, templatename, context, doctree):
    if "script_files" in context:
        context["script_files"] = drop_repeated_scripts(context["script_files"])


def setup(app):
    app.connect("html-page-context", _on_page)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
