"""Every chapter's diagram draws, renders to PNG, and names what it teaches; each chapter shows its own."""

from pathlib import Path

import pytest
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from annotated.figures import diagrams
from annotated.figures.attention_diagrams import tiling_diagram
from annotated.figures.pattern_diagrams import architecture_masks_diagram
from annotated.figures.position_diagrams import position_ids_diagram
from annotated.figures.viz import figure_png

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"

# Words each diagram must write: the operands and shapes it exists to show.
MUST_SAY = {
    "qkv_diagram": [
        "Q",
        "Kᵀ",
        "V",
        "(Tq, d_k)",
        "(d_k, Tk)",
        "(Tq, Tk)",
        "(Tk, d_v)",
        "softmax",
    ],
    "heads_diagram": [
        "(B, T, C)",
        "(B, H, T, D)",
        "h1",
        "h4",
        "attend per head",
    ],
    "positional_diagram": ["RoPE", "ALiBi", "NoPE", "sinusoidal"],
    "architecture_masks_diagram": [
        "GPT",
        "BERT",
        "T5 encoder",
        "T5 decoder self",
        "T5 cross-attention",
    ],
    "next_character_diagram": ["R", "O", "\\n"],
    "tiling_diagram": ["m_new", "O(T · block)"],
    "head_roles_diagram": [
        "previous token",
        "same character",
        "delimiter",
        "first position",
        "induction",
    ],
    "protocol_diagram": [
        "length n",
        "training",
        "testing",
        "0 … T−1",
        "randomized, from range(32)",
    ],
    "position_ids_diagram": [
        "0 … T−1",
        "Abacus",
        "coupled",
        "EOS",
        "$",
        "472 + 351 = 823",
    ],
}


def texts(fig: Figure) -> str:
    return "\n".join(t.get_text() for ax in fig.axes for t in ax.texts)


@pytest.mark.parametrize("chapter", sorted(diagrams.DIAGRAMS))
def test_each_diagram_draws_and_says_what_it_teaches(chapter):
    draw = diagrams.DIAGRAMS[chapter]
    fig = draw()
    assert isinstance(fig, Figure)
    png = figure_png(fig)
    assert png.startswith(b"\x89PNG") and len(png) > 5_000
    written = texts(fig)
    for word in MUST_SAY[draw.__name__]:
        assert word in written, (
            f"{draw.__name__} should write {word!r}; it writes {written!r}"
        )


def test_chapter_diagram_draws_the_chapters_diagram_and_names_the_chapters():
    fig = diagrams.chapter_diagram("01_attention")
    assert isinstance(fig, Figure)
    assert texts(fig) == texts(diagrams.DIAGRAMS["01_attention"]())
    with pytest.raises(ValueError, match="01_attention"):
        diagrams.chapter_diagram("10_unknown")


def test_each_diagram_is_shown_by_its_chapter():
    for chapter, draw in diagrams.DIAGRAMS.items():
        source = (NOTEBOOKS / f"{chapter}.py").read_text(encoding="utf-8")
        assert f"{draw.__name__}(" in source, (
            f"notebooks/{chapter}.py should show {draw.__name__}()"
        )


def test_masks_diagram_draws_the_masks_it_names():
    n = 4
    fig = architecture_masks_diagram(n)
    cells = [p for p in fig.axes[0].patches if isinstance(p, Rectangle)]
    assert len(cells) == 5 * n * n  # five panels of n × n cells
    hidden = [p for p in cells if p.get_facecolor()[:3] == (1.0, 1.0, 1.0)]
    # the two causal panels hide the upper triangle
    assert len(hidden) == 2 * n * (n - 1) // 2


def test_tiling_diagram_skips_the_future_only_when_causal():
    def hatched(fig):
        return sum(bool(p.get_hatch()) for p in fig.axes[0].patches)

    assert hatched(tiling_diagram(4, causal=True)) == 6
    assert hatched(tiling_diagram(4, causal=False)) == 0


def test_position_ids_diagram_shows_the_tasks_ids():
    labels = [
        t.get_text() for t in position_ids_diagram(472, 351).axes[0].texts
    ]
    coupled = labels[labels.index("coupled") + 1 :][:17]
    assert coupled == [
        str(i) for i in [1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5]
    ]
