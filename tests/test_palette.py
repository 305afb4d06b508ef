"""One colour per positional encoding across the book's figures."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from annotated.figures.curves import accuracy_vs_length  # noqa: E402
from annotated.figures.palette import (  # noqa: E402
    ENCODING_COLORS,
    encoding_color,
    encoding_name,
)
from annotated.positional import POSITIONAL_ENCODINGS  # noqa: E402


def test_every_registered_encoding_has_its_own_colour():
    assert set(ENCODING_COLORS) == set(POSITIONAL_ENCODINGS)
    assert len(set(ENCODING_COLORS.values())) == len(ENCODING_COLORS)


@pytest.mark.parametrize(
    ("label", "name"),
    [
        ("RoPE", "rope"),
        ("NoPE (n ≤ 20)", "nope"),
        ("ALiBi, seed 2", "alibi"),
        ("T5 bias", "t5"),
        ("position coupling", "coupled_bias"),
        ("coupled_bias", "coupled_bias"),
        ("randomised positions", "randomized"),
        ("Abacus", "abacus"),
        ("train length", None),
        ("europe", None),  # a word that only contains an encoding's name
    ],
)
def test_a_label_names_its_encoding(label, name):
    assert encoding_name(label) == name


def test_accuracy_curves_take_the_encodings_colours():
    fig, ax = plt.subplots()
    curves = {"RoPE": ([1, 2], [1.0, 0.5]), "ALiBi": ([1, 2], [1.0, 0.9])}
    accuracy_vs_length(curves, ax, train_length=1)
    handles, labels = ax.get_legend_handles_labels()
    colours = {
        label: matplotlib.colors.to_hex(handle.lines[0].get_color())
        for handle, label in zip(handles, labels)
        if label != "train length"
    }
    assert colours["RoPE"] == encoding_color("rope")
    assert colours["ALiBi"] == ENCODING_COLORS["alibi"]
    plt.close(fig)
