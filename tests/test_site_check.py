"""The pure helpers of scripts/check_site.py (the browser check itself runs in `make check-site`)."""

import pytest
from _scripts import ROOT, load_script

check_site = load_script("check_site")

ORIGIN = "http://127.0.0.1:8765"


def test_html_ids_collects_element_ids_and_anchor_names():
    html = '<h1 id="top">T</h1><section id="s-1"><a name="old-style">x</a><a href="#top">up</a></section><p>no id</p>'
    assert check_site.html_ids(html) == {"top", "s-1", "old-style"}


def test_html_ids_ignores_empty_ids():
    assert check_site.html_ids('<div id="">x</div><a name="">y</a>') == set()


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ('<meta http-equiv="Refresh" content="0; url=book/intro.html" />', True),
        ('<meta http-equiv="refresh" content="0; url=x.html">', True),
        ('<meta charset="utf-8"><h1>A real page</h1>', False),
    ],
)
def test_is_redirect_stub(html, expected):
    assert check_site.is_redirect_stub(html) is expected


def test_site_pages_skips_generated_pages_stubs_and_underscore_folders(tmp_path):
    for name, text in {
        "index.html": '<meta http-equiv="Refresh" content="0; url=book/intro.html" />',
        "genindex.html": "<h1>Index</h1>",
        "search.html": "<h1>Search</h1>",
        "book/intro.html": "<h1>Intro</h1>",
        "notebooks/01_attention.html": "<h1>Week 1</h1>",
        "_static/webpack-macros.html": "{% macro x() %}{% endmacro %}",
        "_sources/book/intro.html": "<h1>copy</h1>",
    }.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert check_site.site_pages(tmp_path) == ["book/intro.html", "notebooks/01_attention.html"]


def test_toc_pages_lists_root_and_every_file(tmp_path):
    toc = tmp_path / "_toc.yml"
    toc.write_text(
        "format: jb-book\nroot: book/intro\nparts:\n"
        "  - caption: Weeks\n    chapters:\n      - file: notebooks/01_attention\n"
        "        sections:\n          - file: notebooks/01b_extra.ipynb\n"
        "  - caption: Back matter\n    chapters:\n      - file: book/references\n"
    )
    assert check_site.toc_pages(toc) == [
        "book/intro.html",
        "notebooks/01_attention.html",
        "notebooks/01b_extra.html",
        "book/references.html",
    ]


def test_toc_pages_of_this_book_start_at_the_landing_page():
    pages = check_site.toc_pages(ROOT / "_toc.yml")
    assert pages[0] == "book/intro.html"
    assert all(p.endswith(".html") for p in pages)


@pytest.mark.parametrize(
    ("href", "expected"),
    [
        (f"{ORIGIN}/book/intro.html", ("local", "/book/intro.html", "")),
        (f"{ORIGIN}/notebooks/01_attention.html#masks-what", ("local", "/notebooks/01_attention.html", "masks-what")),
        (f"{ORIGIN}/book/intro.html#caf%C3%A9", ("local", "/book/intro.html", "café")),
        (f"{ORIGIN}", ("local", "/", "")),
        ("https://github.com/annotated-attention/x", ("external", "https://github.com/annotated-attention/x", "")),
        ("http://127.0.0.1:9999/book/intro.html", ("external", "http://127.0.0.1:9999/book/intro.html", "")),
        ("mailto:someone@example.org", None),
        ("javascript:void(0)", None),
    ],
)
def test_split_link(href, expected):
    assert check_site.split_link(href, ORIGIN) == expected


def test_is_our_host_does_not_accept_a_longer_port():
    assert check_site.is_our_host(f"{ORIGIN}/x.js", ORIGIN)
    assert not check_site.is_our_host(f"{ORIGIN}0/x.js", ORIGIN)
    assert not check_site.is_our_host("https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js", ORIGIN)


def test_known_upstream_errors_are_narrow():
    thebe = "uncaught script error: Identifier 'THEBE_JS_URL' has already been declared"
    theme = (
        f"console error ({ORIGIN}/_static/scripts/pydata-sphinx-theme.js?digest=55c2): "
        "Got invalid theme mode: . Resetting to auto."
    )
    assert check_site.known_upstream_error(thebe)
    assert check_site.known_upstream_error(theme)
    # the same words about our own identifiers, another mode, or another script are real failures
    assert check_site.known_upstream_error("uncaught script error: Identifier 'x' has already been declared") is None
    assert check_site.known_upstream_error(theme.replace("mode: .", "mode: dark.")) is None
    assert check_site.known_upstream_error(theme.replace("pydata-sphinx-theme.js", "custom.js")) is None
    assert check_site.known_upstream_error("uncaught script error: undefinedFunctionCall is not defined") is None


def test_format_table_pads_columns():
    table = check_site.format_table(["page", "ok"], [["a.html", "1/1"], ["notebooks/b.html", "10/12"]])
    lines = table.splitlines()
    assert lines[0] == "page              ok"
    assert lines[1] == "----------------  -----"
    assert lines[3] == "notebooks/b.html  10/12"
