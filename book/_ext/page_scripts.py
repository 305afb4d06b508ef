"""Every page's scripts run without an error.

- sphinx-thebe adds its inline configuration (``const THEBE_JS_URL = …``)
  with ``add_js_file`` on every ``env-before-read-docs``; Sphinx 7 can put
  such an inline script on a page twice, and the browser stops at
  "Identifier 'THEBE_JS_URL' has already been declared". A script equal to
  one already on the page is dropped, keeping the order.
- pydata-sphinx-theme reads the colour mode from the ``default_mode`` page
  variable; left empty, its script logs "Got invalid theme mode". The book
  sets it to ``auto`` (follow the reader's system) unless the configuration
  names one.
"""

from __future__ import annotations


def default_colour_mode(app, config):
    config.html_context.setdefault("default_mode", "auto")


def drop_repeated_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not isinstance(scripts, list):
        return
    seen, kept = set(), []
    for script in scripts:
        # an inline script's filename is None in one copy and "" in the other
        attributes = getattr(script, "attributes", {})
        key = (
            getattr(script, "filename", script) or "",
            tuple(sorted((k, str(v)) for k, v in attributes.items())),
        )
        if key not in seen:
            seen.add(key)
            kept.append(script)
    scripts[:] = kept


def setup(app):
    app.connect("config-inited", default_colour_mode)
    # after the extensions that add scripts in html-page-context
    app.connect("html-page-context", drop_repeated_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
