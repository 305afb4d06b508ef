"""The date-translation task: every pair names one day (checked against the
standard library's calendar with a parser of its own), seeded draws, held-out
forms and years, tensors for the encoder-decoder and the decoder-only
layout, errors."""

from __future__ import annotations

import calendar
import re
from datetime import date

import pytest
import torch

from annotated.models.config import ModelConfig
from annotated.models.generate import generate
from annotated.models.transformer import build_model
from annotated.tasks.dates import (
    ANSWER_LEN,
    DATE_SPLITS,
    FORMS,
    HELDOUT_FORMS,
    MAX_SOURCE_LEN,
    DateTask,
    ordinal,
    write,
)

# tiny models run fastest on one thread (conftest)
pytestmark = pytest.mark.usefixtures("one_thread")
TASK = DateTask()

# --- an independent reading of a written date --------------------------------
# month and weekday names from the standard library (C locale), not the task
MONTH = {
    name.lower(): i
    for names in (calendar.month_name, calendar.month_abbr)
    for i, name in enumerate(names)
    if name
}
WEEKDAY = {
    name.lower(): i
    for names in (calendar.day_name, calendar.day_abbr)
    for i, name in enumerate(names)
}
SUFFIX = {1: "st", 2: "nd", 3: "rd", 21: "st", 22: "nd", 23: "rd", 31: "st"}


def read_source(text: str) -> tuple[date, int | None]:
    """(the day a source names, the weekday it writes or None)."""
    words = re.findall(r"[A-Za-z]+", text)
    named_months = [MONTH[w.lower()] for w in words if w.lower() in MONTH]
    weekdays = [WEEKDAY[w.lower()] for w in words if w.lower() in WEEKDAY]
    assert len(named_months) <= 1 and len(weekdays) <= 1, text
    numbers = re.findall(r"(\d+)(st|nd|rd|th)?", text)
    for digits, suffix in numbers:
        if suffix:  # an ordinal: the suffix must be the English one
            assert suffix == SUFFIX.get(int(digits), "th"), text
    values = [int(n) for n, _ in numbers]
    if named_months:
        year = [v for v in values if v >= 1000]
        day = [v for v in values if v < 1000]
        assert len(year) == len(day) == 1, text
        found = date(year[0], named_months[0], day[0])
    else:  # numeric: year first → Y M D, else D M Y
        assert len(values) == 3, text
        y, m, d = values if values[0] >= 1000 else values[::-1]
        found = date(y, m, d)
    return found, (weekdays[0] if weekdays else None)


def check_pair(source: str, target: str) -> date:
    day = date.fromisoformat(target)
    assert target == f"{day.year:04d}-{day.month:02d}-{day.day:02d}"
    found, weekday = read_source(source)
    assert found == day, (source, target)
    assert weekday is None or weekday == day.weekday(), (source, target)
    return day


# --- hand-checked examples ---------------------------------------------------


def test_every_form_writes_a_hand_checked_day():
    # 3 March 1998 was a Tuesday
    expected = [
        "3 March 1998",
        "March 3, 1998",
        "March 3rd, 1998",
        "Tuesday, the 3rd of March 1998",
        "Tuesday 3 March 1998",
        "03/03/1998",
        "3.3.1998",
        "1998, March 3",
        "1998/03/03",
        "3 Mar 1998",
        "Tue, 3 Mar 1998",
        "03 MAR 1998",
        "Tuesday, March 3, 1998",
        "Mar 3, 1998",
        "the 3rd of March, 1998",
    ]
    assert [write(f, date(1998, 3, 3)) for f in FORMS] == expected
    # weekdays of days known by heart; 29 February of a leap year
    assert write("{Weekday}", date(1969, 7, 20)) == "Sunday"
    assert write("{Weekday}", date(2001, 9, 11)) == "Tuesday"
    assert write("{Wkd} {D}.{M}.", date(2000, 2, 29)) == "Tue 29.2."
    assert write("{DD}/{MM}", date(1999, 12, 31)) == "31/12"
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 31)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th",
        "21st", "22nd", "23rd", "31st",
    ]  # fmt: skip
    # the longest source: the longest weekday and month, a 2-digit day
    longest = "Wednesday, the 13th of September 2000"
    assert write(FORMS[3], date(2000, 9, 13)) == longest
    assert MAX_SOURCE_LEN == len(longest) == 37


@pytest.mark.parametrize("split", DATE_SPLITS)
def test_every_sampled_pair_names_the_same_day(split):
    for source, target in TASK.sample_pairs(400, 7, split):
        check_pair(source, target)


def test_the_checker_catches_a_wrong_pair():
    with pytest.raises(AssertionError):
        check_pair("Tuesday 3 March 1998", "1998-03-04")
    with pytest.raises(AssertionError):
        check_pair("Monday 3 March 1998", "1998-03-03")  # wrong weekday
    with pytest.raises(AssertionError):
        check_pair("March 3th, 1998", "1998-03-03")  # wrong suffix


# --- seeds and splits --------------------------------------------------------


def test_draws_are_a_pure_function_of_the_seed():
    a = TASK.sample_pairs(50, 11, "train")
    assert a == TASK.sample_pairs(50, torch.Generator().manual_seed(11))
    assert a != TASK.sample_pairs(50, 12)
    assert a == DateTask().sample_pairs(50, 11)
    src, answer = TASK.seq2seq(8, 1, 3, split="test_years")
    again = TASK.seq2seq(
        8, 1, torch.Generator().manual_seed(3), split="test_years"
    )
    assert torch.equal(src, again[0]) and torch.equal(answer, again[1])
    # the task's own seed draws its held-out sets, the same every time
    drawn = DateTask(split_forms=4, heldout_years=15, seed=5)
    assert drawn.heldout_years == DateTask(4, 15, seed=5).heldout_years
    assert drawn.split_forms == DateTask(4, 15, seed=5).split_forms
    assert len(drawn.split_forms) == 4 and len(drawn.heldout_years) == 15
    assert drawn.heldout_years != DateTask(4, 15, seed=6).heldout_years


@pytest.mark.parametrize("task", [TASK, DateTask(5, 40, seed=3)])
def test_held_out_forms_and_years_never_reach_training(task):
    held_forms, held_years = set(task.split_forms), set(task.heldout_years)
    for split in ("train", "test"):
        drawn = task.draw_dates(3000, 1, split)
        assert not {form for _, form in drawn} & held_forms
        assert not {day.year for day, _ in drawn} & held_years
    forms = task.draw_dates(500, 2, "test_forms")
    assert {form for _, form in forms} == held_forms
    assert not {day.year for day, _ in forms} & held_years
    years = task.draw_dates(500, 3, "test_years")
    assert {day.year for day, _ in years} <= held_years
    assert not {form for _, form in years} & held_forms
    # sample_pairs writes exactly what draw_dates draws
    assert task.sample_pairs(20, 4) == [
        (write(form, day), day.isoformat())
        for day, form in task.draw_dates(20, 4)
    ]


def test_the_default_held_out_forms_are_unseen_as_text_too():
    assert set(HELDOUT_FORMS) == set(TASK.split_forms)
    # May's abbreviation is its name, so "May 3, 1998" is a training form
    short_month_first = r"(Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d"
    months = "|".join(calendar.month_name[1:])
    for source, _ in TASK.sample_pairs(3000, 5):
        assert not re.match(rf"[A-Za-z]+day, ({months})", source)
        assert not source.startswith("the ")
        assert not re.match(short_month_first, source)


def test_every_form_month_weekday_and_year_is_reachable():
    drawn = TASK.draw_dates(3000, 6, "train") + TASK.draw_dates(
        300, 6, "test_forms"
    )
    assert {form for _, form in drawn} == set(FORMS)
    assert {day.month for day, _ in drawn} == set(range(1, 13))
    assert {day.weekday() for day, _ in drawn} == set(range(7))
    years = {day.year for day, _ in drawn} | {
        day.year for day, _ in TASK.draw_dates(3000, 7, "test_years")
    }
    assert len(years) > 190 and years <= set(range(1900, 2100))


def test_the_reordering_is_real():
    day = date(1998, 3, 3)
    year_last = [f for f in FORMS if write(f, day).endswith("1998")]
    assert len(year_last) >= 10  # most sources: the year last
    # ... and it is the first thing the target writes
    for source, target in TASK.sample_pairs(200, 8):
        if re.search(r"\d{4}$", source):
            assert target.startswith(source[-4:])
    # D M Y: the whole order reversed
    source, target = write("{DD}/{MM}/{YYYY}", day), day.isoformat()
    assert source.split("/")[::-1] == target.split("-")


# --- tensors ------------------------------------------------------------------


def test_round_trip_encode_decode():
    for source, target in TASK.sample_pairs(300, 9):
        ids = TASK.encode_source(source)
        assert ids.dtype == torch.long and len(ids) == len(source)
        assert TASK.decode_source(ids) == source
        answer = TASK.encode_target(target)
        assert answer.shape == (ANSWER_LEN,) and answer[-1] == TASK.eos_id
        assert TASK.decode_target(answer) == target
    # a generated row: BOS, the answer, EOS, then whatever follows
    row = torch.cat([torch.tensor([TASK.bos_id]), answer, answer[:3]])
    assert TASK.decode_target(row) == target
    names = TASK.token_names
    assert len(set(names)) == TASK.vocab_size and names[-1] == "PAD"
    assert "␣" in names and " " not in names and "-" in names


def test_batches_pad_sources_on_the_right():
    pairs = TASK.sample_pairs(32, 10)
    src, answer = TASK.seq2seq(32, 1, 10)
    lengths = [len(s) for s, _ in pairs]
    assert src.shape == (32, max(lengths)) and answer.shape == (
        32,
        ANSWER_LEN,
    )
    for row, n, (source, _) in zip(src, lengths, pairs):
        assert (row[n:] == TASK.pad_id).all() and (
            row[:n] != TASK.pad_id
        ).all()
        assert TASK.decode_source(row) == source
    assert [TASK.decode_target(a) for a in answer] == [t for _, t in pairs]
    assert (answer[:, -1] == TASK.eos_id).all()
    assert not (answer == TASK.pad_id).any()
    tgt_in = TASK.decoder_inputs(answer)
    assert (tgt_in[:, 0] == TASK.bos_id).all()
    assert torch.equal(tgt_in[:, 1:], answer[:, :-1])


def test_the_decoder_only_layout():
    pairs = TASK.sample_pairs(16, 12, "test_forms")
    batch = TASK.sample(16, 1, 12, split="test_forms")
    assert batch.inputs.shape[1] <= TASK.seq_len(1)
    assert torch.equal(batch.targets[:, :-1], batch.inputs[:, 1:])
    assert (batch.target_mask.sum(1) == ANSWER_LEN).all()
    for b, (source, target) in enumerate(pairs):
        first = len(source)  # the BOS position predicts the first char
        assert batch.inputs[b, first] == TASK.bos_id
        assert TASK.decode_source(batch.inputs[b, :first]) == source
        scored = batch.targets[b][batch.target_mask[b]]
        assert TASK.decode_target(scored) == target
        assert scored[-1] == TASK.eos_id
    # the lab's held-out batches ("val") are the test split
    assert torch.equal(
        TASK.sample(4, 1, 0, split="val").inputs,
        TASK.sample(4, 1, 0, split="test").inputs,
    )


def test_the_encoder_hides_padding_given_pad_id():
    config = ModelConfig(
        arch="encoder-decoder",
        vocab_size=TASK.vocab_size,
        d_model=16,
        n_heads=2,
        n_layers=1,
        positional="t5",
        pad_id=TASK.pad_id,
    )
    torch.manual_seed(0)
    model = build_model(config).eval()
    src, answer = TASK.seq2seq(6, 1, 13)
    tgt_in = TASK.decoder_inputs(answer)
    logits = model(src, tgt_in).logits  # (B, A, V)
    for b in range(len(src)):
        alone = src[b : b + 1, : int((src[b] != TASK.pad_id).sum())]
        torch.testing.assert_close(
            model(alone, tgt_in[b : b + 1]).logits[0], logits[b]
        )
    start = torch.full((len(src), 1), TASK.bos_id)
    written = generate(model, start, ANSWER_LEN, src=src, greedy=True)
    assert written.shape == (len(src), 1 + ANSWER_LEN)


# --- errors -------------------------------------------------------------------


def test_bad_input_says_what_to_change():
    with pytest.raises(ValueError, match="split must be one of"):
        TASK.sample_pairs(2, 0, "validation")
    with pytest.raises(ValueError, match="batch_size must be an int ≥ 1"):
        TASK.seq2seq(0, 1, 0)
    with pytest.raises(ValueError, match="n must be an int ≥ 1"):
        TASK.sample_pairs(0, 0)
    with pytest.raises(ValueError, match="one size: length 1, not 2"):
        TASK.seq2seq(2, 2, 0)
    with pytest.raises(ValueError, match="some, not all, of the FORMS"):
        DateTask(split_forms=["{D} {Month}"])
    with pytest.raises(ValueError, match="a count below 15"):
        DateTask(split_forms=15)
    with pytest.raises(ValueError, match="the years 1900-2099"):
        DateTask(heldout_years=[1850])
    with pytest.raises(ValueError, match="seed must be an int ≥ 0"):
        DateTask(seed=-1)
    with pytest.raises(ValueError, match="is empty"):
        DateTask(heldout_years=0).sample_pairs(2, 0, "test_years")
    with pytest.raises(ValueError, match="characters"):
        TASK.encode_source("3 März 1998")
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        TASK.encode_target("1998-3-3")
    with pytest.raises(TypeError, match="torch.Generator or an int"):
        TASK.sample_pairs(2, "seed")
