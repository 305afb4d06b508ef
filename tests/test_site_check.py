"""scripts/check_site.py: its pure helpers, and the browser check itself on a tiny site (where Chromium is).

The full check of the built book runs in `make check-site`."""

import os

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
        (
            '<meta http-equiv="Refresh" content="0; url=book/intro.html" />',
            True,
        ),
        ('<meta http-equiv="refresh" content="0; url=x.html">', True),
        ('<meta charset="utf-8"><h1>A real page</h1>', False),
    ],
)
def test_is_redirect_stub(html, expected):
    assert check_site.is_redirect_stub(html) is expected


def test_site_pages_skips_generated_pages_stubs_and_underscore_folders(
    tmp_path,
):
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
    assert check_site.site_pages(tmp_path) == [
        "book/intro.html",
        "notebooks/01_attention.html",
    ]


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
        (
            f"{ORIGIN}/notebooks/01_attention.html#masks-what",
            ("local", "/notebooks/01_attention.html", "masks-what"),
        ),
        (
            f"{ORIGIN}/book/intro.html#caf%C3%A9",
            ("local", "/book/intro.html", "café"),
        ),
        (f"{ORIGIN}", ("local", "/", "")),
        (
            "https://github.com/annotated-attention/x",
            ("external", "https://github.com/annotated-attention/x", ""),
        ),
        (
            "http://127.0.0.1:9999/book/intro.html",
            ("external", "http://127.0.0.1:9999/book/intro.html", ""),
        ),
        ("mailto:someone@example.org", None),
        ("javascript:void(0)", None),
    ],
)
def test_split_link(href, expected):
    assert check_site.split_link(href, ORIGIN) == expected


def test_is_our_host_does_not_accept_a_longer_port():
    assert check_site.is_our_host(f"{ORIGIN}/x.js", ORIGIN)
    assert not check_site.is_our_host(f"{ORIGIN}0/x.js", ORIGIN)
    assert not check_site.is_our_host(
        "https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js", ORIGIN
    )


def test_no_script_error_is_excused():
    """Every script error fails the check: the book's own extension
    (book/_ext/page_scripts.py) removes the two the tool chain used to log."""
    assert not hasattr(check_site, "KNOWN_UPSTREAM_ERRORS")
    assert not hasattr(check_site, "known_upstream_error")


def test_format_table_pads_columns():
    table = check_site.format_table(
        ["page", "ok"], [["a.html", "1/1"], ["notebooks/b.html", "10/12"]]
    )
    lines = table.splitlines()
    assert lines[0] == "page              ok"
    assert lines[1] == "----------------  -----"
    assert lines[3] == "notebooks/b.html  10/12"


def test_external_resources_finds_what_a_page_loads_from_other_hosts():
    html = (
        '<script src="../_static/mathjax/tex-chtml.js"></script>'
        '<script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"></script>'
        '<script src="//unpkg.com/@jupyter-widgets/html-manager@1/dist/embed-amd.js"></script>'
        '<link rel="stylesheet" href="https://fonts.example.org/a.css"><link rel="stylesheet" href="_static/a.css">'
        '<img src="http://example.org/x.png"><img src="_images/y.png">'
        '<a href="https://github.com/annotated-attention/annotated-attention">a link is not a resource</a>'
        '<link rel="canonical" href="https://example.org/page.html">'
    )
    assert check_site.external_resources(html) == [
        "https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js",
        "//unpkg.com/@jupyter-widgets/html-manager@1/dist/embed-amd.js",
        "https://fonts.example.org/a.css",
        "http://example.org/x.png",
    ]


def _layout(**changes):
    return {
        "window": 1280,
        "page": 1280,
        "prose": [],
        "outputs": [],
        "split": [],
    } | changes


def test_layout_problems_of_a_page_that_fits_are_none():
    assert check_site.layout_problems(_layout(), 1280) == []
    assert (
        check_site.layout_problems(_layout(window=390, page=390), 390) == []
    )


def test_layout_problems_fail_prose_at_every_width():
    prose = [{"tag": "p", "text": "averyveryverylongword", "overflow": 40}]
    for width in (1280, 390):
        problems = check_site.layout_problems(
            _layout(window=width, page=width + 40, prose=prose), width
        )
        assert len(problems) == 2
        assert (
            f"scrolls sideways at {width} px" in problems[0]
            and f"{width + 40} px wide" in problems[0]
        )
        assert "by 40 px: <p> 'averyveryverylongword'" in problems[1]


def test_layout_problems_fail_outputs_and_split_prints_at_desktop_width_only():
    outputs = [
        {"text": "a wide table", "chars": 112, "content": 976, "column": 688}
    ]
    split = [{"blocks": 3, "text": "row 1"}]
    desktop = check_site.layout_problems(
        _layout(outputs=outputs, split=split), 1280
    )
    assert len(desktop) == 2
    assert (
        "976 px of text in a 688 px column" in desktop[0]
        and "112 characters" in desktop[0]
    )
    assert "3 separate output blocks" in desktop[1]
    assert (
        check_site.layout_problems(
            _layout(window=390, page=390, outputs=outputs, split=split), 390
        )
        == []
    )


def test_math_problem_only_when_formulas_stay_raw():
    assert check_site.math_problem({"formulas": 0, "rendered": 0}) is None
    assert check_site.math_problem({"formulas": 5, "rendered": 5}) is None
    assert "5 formula(s) left as raw TeX" in check_site.math_problem(
        {"formulas": 5, "rendered": 0}
    )


class _FakeRoute:
    def __init__(self, url):
        self.request = type("Request", (), {"url": url})()
        self.outcome = None

    def continue_(self):
        self.outcome = "continued"

    def abort(self, reason):
        self.outcome = reason


@pytest.mark.parametrize(
    ("url", "outcome", "blocked"),
    [
        (f"{ORIGIN}/_static/mathjax/tex-chtml.js", "continued", False),
        ("data:image/png;base64,iVBORw0KGgo=", "continued", False),
        (
            "https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js",
            "blockedbyclient",
            True,
        ),
        (f"{ORIGIN}0/x.js", "blockedbyclient", True),
    ],
)
def test_route_lets_our_host_through_and_blocks_and_records_every_other(
    url, outcome, blocked
):
    report = check_site.PageReport("p.html", 1280)
    route = _FakeRoute(url)
    check_site._route(route, ORIGIN, report)
    assert route.outcome == outcome
    assert report.blocked == ([url] if blocked else [])


def test_summarize_fails_on_a_blocked_request_and_a_script_error(
    tmp_path, capsys
):
    thebe = "uncaught script error: Identifier 'THEBE_JS_URL' has already been declared"
    clean = check_site.PageReport("book/intro.html", 1280)
    assert check_site.summarize([clean], [], [], tmp_path, 1.0) == 0
    erring = check_site.PageReport("book/intro.html", 1280, errors=[thebe])
    assert check_site.summarize([erring], [], [], tmp_path, 1.0) == 1
    offline = check_site.PageReport(
        "book/intro.html", 390, blocked=["https://cdn.example.org/x.js"] * 2
    )
    assert check_site.summarize([clean, offline], [], [], tmp_path, 1.0) == 1
    err = capsys.readouterr().err
    assert "FAILED: 1 problem(s)" in err
    assert (
        "book/intro.html @ 390 px: request to another host (blocked; the site must work offline)"
        in err
    )
    static = [
        "book/intro.html: the HTML loads a resource from another host: https://cdn.example.org/x.js"
    ]
    assert check_site.summarize([clean], static, [], tmp_path, 1.0) == 1


def _chromium() -> str | None:
    chromium = os.environ.get("CHROMIUM", check_site.CHROMIUM)
    try:
        import playwright  # noqa: F401
    except ImportError:
        return None
    return chromium if os.access(chromium, os.X_OK) else None


@pytest.mark.skipif(
    _chromium() is None,
    reason="needs Chromium and playwright (make browser-deps)",
)
def test_the_browser_check_fails_a_page_that_reaches_off_the_machine(
    tmp_path, capsys
):
    """The real check, in Chromium, on a two-page site: the clean page passes, the other fails on
    its request to another host (blocked before it leaves), its missing image and its wide prose."""
    site = tmp_path / "html"
    site.mkdir()
    (site / "index.html").write_text(
        '<meta http-equiv="refresh" content="0; url=clean.html">'
    )
    (site / "clean.html").write_text(
        "<!doctype html><meta name=viewport content='width=device-width'><main><p>Fits.</p>"
        "<a href='offline.html'>next</a></main>"
    )
    (site / "offline.html").write_text(
        "<!doctype html><meta name=viewport content='width=device-width'><main>"
        "<script src='https://cdn.example.invalid/lib.js'></script><img src='missing.png'>"
        f"<p>{'x' * 300}</p><a href='clean.html#nowhere'>back</a></main>"
    )
    code = check_site.run(
        site, tmp_path / "shots", _chromium(), only="*.html"
    )
    err = capsys.readouterr().err
    assert code == 1
    assert (
        "offline.html @ 1280 px: request to another host (blocked; the site must work offline): https://cdn.example.invalid/lib.js"
        in err
    )
    assert (
        "offline.html: the HTML loads a resource from another host: https://cdn.example.invalid/lib.js"
        in err
    )
    assert "image missing: /missing.png" in err
    assert "offline.html @ 390 px: the page scrolls sideways" in err
    assert "broken link (no id 'nowhere' on the target page)" in err
    assert "clean.html @" not in err
    assert (tmp_path / "shots" / "390" / "offline.png").is_file()
    assert (tmp_path / "shots" / "1280" / "clean.png").is_file()


def test_layout_problems_fail_figures_shrunk_more_than_twice_at_desktop_width():
    figures = [
        {"src": "a.png", "drawn": 1961, "shown": 688},
        {"src": "b.png", "drawn": 1311, "shown": 688},
    ]
    problems = check_site.layout_problems(_layout(figures=figures), 1280)
    assert problems == [
        "figure shrunk 2.85× at 1280 px (1961 px drawn, 688 px shown; at most 2× keeps its labels readable): "
        "split it or draw it narrower: 'a.png'"
    ]
    assert (
        check_site.layout_problems(
            _layout(window=390, page=390, figures=figures), 390
        )
        == []
    )


def test_summarize_can_report_presentation_problems_without_failing(
    tmp_path, capsys
):
    wide = check_site.layout_problems(
        _layout(
            outputs=[
                {
                    "text": "a wide table",
                    "chars": 112,
                    "content": 976,
                    "column": 688,
                }
            ]
        ),
        1280,
    )
    report = check_site.PageReport("notebooks/06.html", 1280, errors=wide)
    assert check_site.summarize([report], [], [], tmp_path, 1.0) == 1
    assert (
        check_site.summarize(
            [report], [], [], tmp_path, 1.0, presentation="report"
        )
        == 0
    )
    assert "reported, not failed" in capsys.readouterr().out
    blocked = check_site.PageReport(
        "notebooks/06.html",
        1280,
        errors=wide,
        blocked=["https://x.example/y.js"],
    )
    assert (
        check_site.summarize(
            [blocked], [], [], tmp_path, 1.0, presentation="report"
        )
        == 1
    )


def test_layout_problems_fail_wide_code_at_desktop_width_only():
    code = [
        {
            "kind": "library source",
            "first": "def attend(",
            "line": 12,
            "chars": 96,
            "fits": 80,
            "content": 842,
            "column": 704,
        }
    ]
    problems = check_site.layout_problems(_layout(code=code), 1280)
    assert problems == [
        "code wider than its column at 1280 px (library source: line 12 has 96 characters, "
        "the column fits 80; 842 px of code in a 704 px column), first line: 'def attend('"
    ]
    assert (
        check_site.layout_problems(
            _layout(window=390, page=390, code=code), 390
        )
        == []
    )


def test_summarize_reports_wide_code_without_failing_when_asked(
    tmp_path, capsys
):
    code = [
        {
            "kind": "code cell",
            "first": "import torch",
            "line": 3,
            "chars": 101,
            "fits": 80,
            "content": 890,
            "column": 704,
        }
    ]
    wide = check_site.layout_problems(_layout(code=code), 1280)
    report = check_site.PageReport("notebooks/01.html", 1280, errors=wide)
    assert check_site.summarize([report], [], [], tmp_path, 1.0) == 1
    assert "notebooks/01.html @ 1280 px: code wider than its column" in (
        capsys.readouterr().err
    )
    assert (
        check_site.summarize(
            [report], [], [], tmp_path, 1.0, presentation="report"
        )
        == 0
    )
    out = capsys.readouterr().out
    assert (
        "reported, not failed" in out and "line 3 has 101 characters" in out
    )


# A chapter's page as myst-nb writes it: a code cell (its input folded, as `hide-input` folds
# it), its output a library listing (show_source's IPython Code, HTML) and a printed line, then
# a solution folded by sphinx-togglebutton; a fenced code block in the text. The column is
# 704 px and its code font 14 px, about 80 characters: 78 fit, 120 do not.
CODE_PAGE = """<!doctype html><meta name=viewport content='width=device-width'>
<style>
article.bd-article {{ max-width: 704px; margin: 0 auto; padding: 0 8px; }}
pre {{ overflow: auto; font: 14px/1.4 monospace; padding: 8px; margin: 0; }}
.admonition.toggle-hidden .admonition-title ~ * {{ height: 0; visibility: hidden; display: block; }}
</style>
<main><article class="bd-article"><p>A chapter.</p>
<div class="cell docutils container">
<details class="hide above-input"><summary>Show code cell source</summary>
<div class="cell_input docutils container"><div class="highlight-ipython3 notranslate">
<div class="highlight"><pre>import torch
{cell}
</pre></div></div></div></details>
<div class="cell_output docutils container">
<div class="output text_html"><style>.output_html .k {{ color: green }}</style>
<div class="highlight"><pre><span></span><span class="k">def</span> attend(q, k, v):
{source}
</pre></div></div>
<div class="output stream highlight-myst-ansi notranslate"><div class="highlight"><pre>printed</pre></div></div>
</div></div>
<div class="admonition solution toggle toggle-hidden"><p class="admonition-title">Solution</p>
<div class="cell docutils container"><div class="cell_input docutils container">
<div class="highlight"><pre>lines = []
{solution}
</pre></div></div></div></div>
<div class="highlight-python notranslate"><div class="highlight"><pre>x = 1
{fenced}
</pre></div></div>
</article></main>"""


def _code_site(tmp_path, **lines):
    site = tmp_path / "html"
    site.mkdir(parents=True)
    (site / "index.html").write_text(
        '<meta http-equiv="refresh" content="0; url=chapter.html">'
    )
    fill = {
        key: lines.get(key, "y = 2  # short")
        for key in ("cell", "source", "solution", "fenced")
    }
    (site / "chapter.html").write_text(CODE_PAGE.format(**fill))
    return site


@pytest.mark.skipif(
    _chromium() is None,
    reason="needs Chromium and playwright (make browser-deps)",
)
def test_the_browser_check_fails_code_wider_than_its_column(tmp_path, capsys):
    """In Chromium: code lines of 78 characters fit the column at 1280 px; a line of 120 in a
    folded code cell, in a listing show_source prints, in a folded solution or in a fenced
    block fails there (page, kind, first line, longest line), and nowhere at 390 px; report
    mode lists them without failing."""
    fits = "z = " + "x" * 74
    assert len(fits) == 78
    site = _code_site(
        tmp_path / "fits", cell=fits, source=fits, solution=fits, fenced=fits
    )
    assert (
        check_site.run(site, tmp_path / "shots", _chromium(), only="*.html")
        == 0
    )
    assert "every output block and code line fits" in capsys.readouterr().out

    wide = "w = " + "x" * 116
    site = _code_site(
        tmp_path / "wide",
        cell=wide,
        source="    return " + "x" * 110,
        solution=wide,
        fenced=wide,
    )
    code = check_site.run(
        site, tmp_path / "shots", _chromium(), only="*.html"
    )
    err = capsys.readouterr().err
    assert code == 1
    wide_code = [line for line in err.splitlines() if "code wider" in line]
    assert len(wide_code) == 4, err
    assert all(
        line.strip().startswith(
            "chapter.html @ 1280 px: code wider than its column"
        )
        for line in wide_code
    )
    assert "(code cell: line 2 has 120 characters" in wide_code[0]
    assert wide_code[0].endswith("first line: 'import torch'")
    assert "(library source: line 2 has 121 characters" in wide_code[1]
    assert wide_code[1].endswith("first line: 'def attend(q, k, v):'")
    assert "(code cell: line 2 has 120 characters" in wide_code[2]
    assert wide_code[2].endswith("first line: 'lines = []'")
    assert "(code block: line 2 has 120 characters" in wide_code[3]
    assert "output block needs sideways scrolling" not in err
    assert "@ 390 px" not in err

    assert (
        check_site.run(
            site,
            tmp_path / "shots",
            _chromium(),
            only="*.html",
            presentation="report",
        )
        == 0
    )
    assert "line 2 has 121 characters" in capsys.readouterr().out
