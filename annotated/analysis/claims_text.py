"""The claims table as text that fits the page, with its sources.

Each row of :func:`annotated.analysis.claims.claims_table` becomes a
numbered block — the claim, the published number, ours, the verdict and why
— whose paper carries the number of its source in brackets; the sources
follow the table as a numbered list (several claims share one figure), and a
last line counts the verdicts. No line is wider than ``width`` columns.
"""

from __future__ import annotations

import textwrap
from collections import Counter

from annotated.analysis.claims import VERDICTS


def claims_text(rows: list[dict], width: int = 76) -> str:
    """The rows of a claims table, their numbered sources, and a tally."""
    sources = list(dict.fromkeys(r["source"] for r in rows if r["source"]))
    number = {source: j for j, source in enumerate(sources, 1)}
    blocks = [
        _block(i, row, number.get(row["source"]), width)
        for i, row in enumerate(rows, 1)
    ]
    notes = [
        textwrap.fill(f"[{j}] {source}", width, subsequent_indent=" " * 4)
        for j, source in enumerate(sources, 1)
    ]
    tally = Counter(row["verdict"] for row in rows)
    count = f"{len(rows)} claims: " + ", ".join(
        f"{v} {tally[v]}" for v in VERDICTS if tally[v]
    )
    parts = ["\n".join(blocks)]
    if notes:
        parts.append("Sources\n" + "\n".join(notes))
    return "\n\n".join([*parts, textwrap.fill(count, width)])


def _block(i: int, row: dict, source: int | None, width: int) -> str:
    """One numbered row: `` 3. paper [source]: setting`` and its lines."""
    mark = f" [{source}]" if source else ""
    why = f" — {row['why']}" if row["why"] else ""
    lines = [
        f"{row['paper']}{mark}: {row['setting']}",
        f"published: {row['published']}",
        f"ours: {row['ours']}",
        f"verdict: {row['verdict'].upper()}{why}",
    ]
    head = f"{i:>2}. "
    indent = " " * len(head)
    wrapped = [
        textwrap.fill(line, width - len(head), subsequent_indent="  ")
        for line in lines
    ]
    return head + "\n".join(wrapped).replace("\n", "\n" + indent)
