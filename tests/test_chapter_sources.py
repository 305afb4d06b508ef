"""Every chapter shows the library code it teaches, and the code a reader sees is the code the tests run.

CHAPTER_SOURCES names, for each chapter, the library objects whose source must appear on its
page (chapters show it with ``annotated.figures.showcode.show_source``). Two checks:

- the stored notebook has an output holding the object's *current* source, line for line
  (a changed function whose chapter was not re-executed fails here: run ``make execute``);
- the built page (``_build/html``, made by ``make book-strict``) shows the same lines. That
  check runs when the page is newer than its notebook, and always under ``make check-site``,
  which sets ANNOTATED_BUILT_SITE so that a missing page fails instead of skipping.
"""

import html
import importlib
import inspect
import os
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from _scripts import ROOT

CHAPTER_SOURCES = {
    "01_attention": [
        "annotated.attention.attend:attend",
        "annotated.attention.attend:masked_softmax",
        "annotated.attention.masks:causal",
        "annotated.attention.masks:padding",
    ],
    "02_multi_head": [
        "annotated.attention.multihead:MultiHeadAttention.forward",
        "annotated.attention.multihead:MultiHeadAttention._attend",
        "annotated.attention.cache:KVCache",
    ],
    "03_positional_encodings": [
        "annotated.positional.rope:apply_rope",
        "annotated.positional.bias:AlibiBias.score_mod",
        "annotated.positional.bias:T5RelativeBias.score_mod",
    ],
    "04_architectures": [
        "annotated.models.blocks:Residual.forward",
        "annotated.models.generate:generate",
    ],
    "04b_translation": [
        "annotated.models.blocks:TransformerBlock.forward",
        "annotated.models.transformer:EncoderDecoder.forward",
        "annotated.training.seq2seq:PairedBatches.sample",
        "annotated.models.beam:beam_search",
    ],
    "04c_vision_transformer": [
        "annotated.models.vit:VisionTransformer.forward",
        "annotated.models.vit:VisionTransformer.class_attention",
    ],
    "05_language_model": ["annotated.models.generate:sample_next"],
    "05b_modern_transformer": [
        "annotated.models.feedforward:GatedFeedForward.forward",
        "annotated.training.optim:muon_groups",
    ],
    "05c_subword_tokens": [
        "annotated.tasks.bpe:train_bpe",
        "annotated.tasks.bpe:encode",
        "annotated.analysis.tokens:val_bits_per_character",
    ],
    "06_length_generalization": [
        "annotated.training.evaluation:batch_positions",
        "annotated.training.loop:stop_rule",
        "annotated.analysis.intervals:wilson_interval",
    ],
    "reproduction_report": ["annotated.analysis.claims:_value_verdict"],
    "06b_making_transformers_extrapolate": [
        "annotated.positional.randomized:sample_sorted_positions",
        "annotated.tasks.extrapolation:digit_places",
        "annotated.positional.abacus:AbacusEncoding.shifted",
        "annotated.positional.coupled:CoupledRelativeBias.score_mod",
    ],
    "07_efficient_attention": [
        "annotated.kernels.blockwise:BlockwiseAttentionFunction.forward",
        "annotated.kernels.blockwise:BlockwiseAttentionFunction.backward",
        "annotated.models.recurrence:forward_in_segments",
        "annotated.models.recurrence:forward_segment",
    ],
    "08_inside_the_model": [
        "annotated.analysis.head_scores:window_scores",
        "annotated.analysis.head_scores:induction_scores",
        "annotated.analysis.ablation:ablate_head",
        "annotated.analysis.rollout:attention_rollout",
        "annotated.analysis.scaling:fit_power_law",
    ],
}
BUILT_SITE = Path(
    os.environ.get("ANNOTATED_BUILT_SITE") or ROOT / "_build" / "html"
)
CASES = [
    (chapter, name)
    for chapter, names in CHAPTER_SOURCES.items()
    for name in names
]


def resolve(name: str):
    """``'package.module:Qual.name'`` -> the object."""
    module, _, qualname = name.partition(":")
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def source_lines(text: str) -> list[str]:
    """The non-blank lines of a text, stripped: indentation and blank lines are layout, not code."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def shows_source(text: str, source: str) -> bool:
    """True when the lines of ``source`` appear in ``text`` one after another (ignoring indentation)."""
    wanted, have = source_lines(source), source_lines(text)
    if not wanted:
        return False
    first = wanted[0]
    return any(
        have[i : i + len(wanted)] == wanted
        for i, line in enumerate(have)
        if line == first
    )


class _Text(HTMLParser):
    """The text of an HTML page, with the line breaks of its <pre> blocks kept."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data):
        self.parts.append(data)

    def handle_starttag(self, tag, attrs):
        if tag in ("p", "div", "br", "li", "pre", "tr"):
            self.parts.append("\n")


def page_text(page_html: str) -> str:
    parser = _Text()
    parser.feed(page_html)
    return html.unescape("".join(parser.parts))


def stored_outputs(chapter: str) -> list[str]:
    """Every text an output of the stored notebook carries (plain text and HTML, as text)."""
    notebook = nbformat.read(
        ROOT / "notebooks" / f"{chapter}.ipynb", as_version=4
    )
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            texts += [
                output.get("text", ""),
                data.get("text/plain", ""),
                page_text(data.get("text/html", "")),
            ]
    return [t for t in texts if t]


def test_every_chapter_is_named():
    chapters = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    unknown = sorted(set(CHAPTER_SOURCES) - set(chapters))
    assert not unknown, (
        f"CHAPTER_SOURCES names chapters that do not exist: {unknown}"
    )


def test_shows_source_needs_the_lines_in_order():
    source = "def f(x):\n    y = x + 1\n\n    return y\n"
    assert shows_source(
        "text\n  def f(x):\ny = x + 1\n        return y\nmore", source
    )
    assert not shows_source("def f(x):\nreturn y\ny = x + 1", source)
    assert not shows_source("def f(x):\n    y = x + 2\n    return y", source)
    assert not shows_source("anything", "")


def test_page_text_keeps_the_lines_of_highlighted_code():
    highlighted = '<div class="highlight"><pre><span class="k">def</span> <span class="nf">f</span>(x):\n    <span>return</span> x &gt; 0\n</pre></div>'
    assert shows_source(page_text(highlighted), "def f(x):\n    return x > 0")


@pytest.mark.parametrize(("chapter", "name"), CASES)
def test_stored_notebook_shows_the_current_source(chapter, name):
    source = inspect.getsource(resolve(name))
    assert any(
        shows_source(text, source) for text in stored_outputs(chapter)
    ), (
        f"notebooks/{chapter}.ipynb shows no output with the current source of {name}: call "
        f"show_source({name.split(':')[1]}) in notebooks/{chapter}.py, or, if the code changed since, "
        f"re-execute it with `make execute NB=notebooks/{chapter}.ipynb`"
    )


@pytest.mark.parametrize(("chapter", "name"), CASES)
def test_built_page_shows_the_source(chapter, name):
    page = BUILT_SITE / "notebooks" / f"{chapter}.html"
    notebook = ROOT / "notebooks" / f"{chapter}.ipynb"
    if not os.environ.get("ANNOTATED_BUILT_SITE"):
        if (
            not page.is_file()
            or page.stat().st_mtime < notebook.stat().st_mtime
        ):
            pytest.skip(
                f"{page} is missing or older than its notebook: `make book-strict` builds it"
            )
    assert page.is_file(), (
        f"no built page {page}: build the book with `make book-strict` first"
    )
    source = inspect.getsource(resolve(name))
    assert shows_source(
        page_text(page.read_text(encoding="utf-8")), source
    ), (
        f"the built page notebooks/{chapter}.html does not show the source of {name}"
    )
