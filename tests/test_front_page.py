"""The front page (book/intro.md) answers a newcomer's first questions: who the book is for,
what to know first, how long each chapter takes, how to get the repository and run the two
commands or open Colab, what the letters of the shapes mean, and what the jargon means."""

import re

import pytest
import yaml
from _scripts import ROOT, load_script

check_site = load_script("check_site")
INTRO = (ROOT / "book" / "intro.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    match = re.search(
        rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", INTRO, re.S | re.M
    )
    assert match, f"book/intro.md has no section '## {title}'"
    return match.group(1)


def _repository_url() -> str:
    return yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))[
        "repository"
    ]["url"]


def test_says_who_it_is_for_and_what_to_know_first():
    who = _section("Who it is for")
    assert "What to know first" in who
    for topic in ("Python", "tensors", "softmax", "gradients"):
        assert topic in who, f"the prerequisites do not mention {topic}"


def test_every_chapter_has_a_row_with_its_time():
    table = _section("The path through the book")
    chapters = [
        f
        for f in check_site.toc_files(ROOT / "_toc.yml")
        if f.startswith("notebooks/")
    ]
    for chapter in chapters:
        rows = [
            line for line in table.splitlines() if f"<../{chapter}>" in line
        ]
        assert rows, (
            f"the front page's chapter table has no row for {chapter}: add one (week, title, goals, time)"
        )
        assert re.search(r"\|\s*about \d+ min\s*\|\s*$", rows[0]), (
            f"the row of {chapter} gives no time ('about N min')"
        )


def test_get_started_gives_the_repository_the_two_commands_and_colab():
    start = _section("Get started")
    url = _repository_url().rstrip("/")
    assert f"git clone {url}" in start, (
        f"the front page must say `git clone {url}` (_config.yml's repository.url)"
    )
    assert re.search(r"^\s*make book\b", start, re.M) and re.search(
        r"^\s*make test\b", start, re.M
    )
    colab = re.findall(
        r"https://colab\.research\.google\.com/github/([^)\s]+)", start
    )
    assert colab, "the front page gives no Colab link"
    repo = url.removeprefix("https://github.com/")
    assert all(link.startswith(f"{repo}/blob/") for link in colab), (
        f"Colab links must open {repo}: {colab}"
    )
    notebooks = [
        link.split("/blob/", 1)[1].split("/", 1)[1] for link in colab
    ]
    assert all((ROOT / nb).is_file() for nb in notebooks), (
        f"Colab links name notebooks that do not exist: {notebooks}"
    )


@pytest.mark.parametrize(
    "symbol", ["B", "T", "H", "D", "C", "Tq, Tk", "(B, H, Tq, Tk)"]
)
def test_notation_table_defines_the_shape_letters(symbol):
    notation = _section("Notation and shapes")
    assert re.search(rf"^\| {re.escape(symbol)} \| \S", notation, re.M), (
        f"the notation table does not define {symbol}"
    )
    assert "(notation)=" in INTRO, (
        "the notation section needs its label (notation)= for {ref} links"
    )


@pytest.mark.parametrize(
    "term",
    [
        "nats",
        "perplexity",
        "GELU",
        "LayerNorm",
        "KV cache",
        "exact match",
        "SDPA",
    ],
)
def test_glossary_defines_the_words_the_chapters_use(term):
    glossary = _section("Glossary")
    assert "```{glossary}" in glossary
    assert re.search(rf"^{re.escape(term)}\b.*\n  \S", glossary, re.M), (
        f"the glossary does not define {term!r}"
    )


def test_the_front_page_invites_a_start_with_week_1():
    top = INTRO.split("## Who it is for")[0]
    assert re.search(
        r"```\{button-ref\} \.\./notebooks/01_attention\n(:.*\n)*\n"
        r"Start with week 1 →",
        top,
    ), "the front page's top needs a 'Start with week 1 →' button"
    for way in ("Colab", "Binder", "git clone"):
        assert way in top, f"the front page's top does not mention {way}"


def test_the_total_time_is_the_sum_of_the_chapters_times():
    rows = [
        line
        for line in _section("The path through the book").splitlines()
        if re.match(r"\| \d+[a-z]? \|", line)
    ]
    minutes = sum(int(re.search(r"about (\d+) min", r)[1]) for r in rows)
    whole, part = re.search(
        r"about \*\*(\d+)([¼½¾]?) hours\*\*", INTRO
    ).groups()
    hours = int(whole) + {"": 0, "¼": 0.25, "½": 0.5, "¾": 0.75}[part]
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    weeks = [p for p in toc["parts"] if p["caption"] == "Weeks"][0]
    assert len(rows) == len(weeks["chapters"]), "a row per chapter"
    assert minutes == hours * 60, (minutes, hours)


def test_the_hero_caption_states_what_the_stored_sweeps_hold():
    from annotated.analysis.stored_sweeps import StoredSweeps

    sweeps = StoredSweeps()
    coupled = sweeps.completed("addition_coupled", "coupled_bias")
    at = {
        n: sum(r[f"exact_match@{n}"] for r in coupled) / len(coupled)
        for n in (20, 50, 100, 200)
    }
    caption = INTRO.split("```{figure}")[1].split("```")[0]
    assert len(coupled) == 3 and "mean of 3 seeds" in caption
    assert min(at[n] for n in (20, 50, 100)) == 1.0
    assert "right up to 100 digits" in caption
    assert f"{at[200]:.3f} at 200" in caption
    baselines = [
        r
        for encoding in ("sinusoidal", "rope")
        for r in sweeps.completed("addition_marked", encoding)
    ]
    assert baselines and not any(r["learned"] for r in baselines), (
        "the caption says the baselines do not learn addition"
    )
