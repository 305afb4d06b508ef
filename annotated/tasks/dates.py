"""Dates as people write them → ISO 8601: translation with re-ordering.

The source is one day in one of fifteen human forms (:data:`FORMS`), the
target the same day as ``YYYY-MM-DD``: ``3 March 1998``, ``Tuesday, the 3rd
of March 1998`` and ``03/03/1998`` all give ``1998-03-03``. The year comes
last in most sources and first in the target, so the decoder cannot copy
left to right: for each character it writes it must find the source
characters that decide it, the alignment Bahdanau et al. (2015, "Neural
Machine Translation by Jointly Learning to Align and Translate", Fig. 3)
draw for re-ordered words. Days and weekdays come from :mod:`datetime`.
Numeric forms are day first (``3.3.1998``) unless the year leads, and years
are written in full (``'98`` would be 1998 or 2098): no source names two
days. (May's abbreviated forms equal its full ones.)

Splits: ``train``; ``test``, fresh draws from the training distribution;
``test_forms``, forms never used in training (by default three that
recombine pieces training shows); ``test_years``, the training forms in
years of 1900–2099 never used in training (a seeded draw).

Characters are the tokens, one vocabulary for both sides (the library's
encoder-decoder shares one embedding): the source characters (the space is
``␣``), ``-``, then ``BOS`` (starts the answer), ``EOS`` and ``PAD``.
:meth:`DateTask.seq2seq` pads each source on the right with PAD to the
batch's longest; a model built with ``ModelConfig(pad_id=task.pad_id)``
hides those keys from its encoder and from the decoder's cross-attention.
Every answer is 10 characters and EOS, so answers need no padding::

    src, answer = task.seq2seq(64, 1, generator)  # (B, S), (B, A)
    logits = model(src, task.decoder_inputs(answer)).logits
    start = torch.full((len(src), 1), task.bos_id)
    written = generate(model, start, 11, src=src, greedy=True)[:, 1:]

``length`` is there for the task API and is always 1. ``sample`` lays the
same pairs out for a decoder-only model.

Legend: B batch, S source length, A answer length (11), T sequence length.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Sequence
from datetime import date, timedelta
from itertools import takewhile

import torch
from torch.nn.utils.rnn import pad_sequence

from annotated.tasks.base import PAD, Batch, Task, as_generator, check_count
from annotated.tasks.extrapolation import EOS

BOS, SPACE = "BOS", "␣"
YEARS = tuple(range(1900, 2100))
ANSWER_LEN = 11  # YYYY-MM-DD, EOS
DATE_SPLITS = ("train", "test", "test_forms", "test_years")
MONTHS = (
    "January", "February", "March", "April", "May", "June", "July",
    "August", "September", "October", "November", "December",
)  # fmt: skip
WEEKDAYS = (
    "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
    "Sunday",
)  # fmt: skip


def ordinal(n: int) -> str:
    """``3`` → ``3rd``; ``11`` → ``11th``; ``22`` → ``22nd``."""
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}th" if 11 <= n % 100 <= 13 else f"{n}{suffix}"


def fields(d: date) -> dict[str, str]:
    """The pieces a form writes, by name; for 1998-03-03 in comments."""
    return {
        "D": str(d.day),  # 3
        "DD": f"{d.day:02d}",  # 03
        "Dth": ordinal(d.day),  # 3rd
        "M": str(d.month),  # 3
        "MM": f"{d.month:02d}",  # 03
        "Month": MONTHS[d.month - 1],  # March
        "Mon": MONTHS[d.month - 1][:3],  # Mar
        "MON": MONTHS[d.month - 1][:3].upper(),  # MAR
        "Weekday": WEEKDAYS[d.weekday()],  # Tuesday (Monday: 0)
        "Wkd": WEEKDAYS[d.weekday()][:3],  # Tue
        "YYYY": str(d.year),  # 1998
    }


# the forms, as format patterns over fields(); examples for 1998-03-03
FORMS = (
    "{D} {Month} {YYYY}",  # 3 March 1998
    "{Month} {D}, {YYYY}",  # March 3, 1998
    "{Month} {Dth}, {YYYY}",  # March 3rd, 1998
    "{Weekday}, the {Dth} of {Month} {YYYY}",  # Tuesday, the 3rd of March…
    "{Weekday} {D} {Month} {YYYY}",  # Tuesday 3 March 1998
    "{DD}/{MM}/{YYYY}",  # 03/03/1998
    "{D}.{M}.{YYYY}",  # 3.3.1998
    "{YYYY}, {Month} {D}",  # 1998, March 3
    "{YYYY}/{MM}/{DD}",  # 1998/03/03
    "{D} {Mon} {YYYY}",  # 3 Mar 1998
    "{Wkd}, {D} {Mon} {YYYY}",  # Tue, 3 Mar 1998 (e-mail headers)
    "{DD} {MON} {YYYY}",  # 03 MAR 1998
    # held out by default: pieces the forms above show, recombined
    "{Weekday}, {Month} {D}, {YYYY}",  # Tuesday, March 3, 1998
    "{Mon} {D}, {YYYY}",  # Mar 3, 1998
    "the {Dth} of {Month}, {YYYY}",  # the 3rd of March, 1998
)
HELDOUT_FORMS = FORMS[-3:]


def write(form: str, d: date) -> str:
    """Day ``d`` in ``form``: ``write("{D}.{M}.{YYYY}", d)`` → 3.3.1998."""
    return form.format(**fields(d))


# every day of a leap year: every month, weekday, day number and character
_PROBE = [date(2000, 1, 1) + timedelta(days=i) for i in range(366)]
_SOURCES = [write(form, d) for form in FORMS for d in _PROBE]
SOURCE_CHARS = tuple(sorted(set("".join(_SOURCES))))
MAX_SOURCE_LEN = max(map(len, _SOURCES))


def _choose(name, value, pool: Sequence, seed: int) -> tuple:
    """``value`` items of ``pool`` drawn with ``seed``, or those given."""
    items = value
    if isinstance(value, int) and not isinstance(value, bool):
        check_count(name, value, 0)
        seeded = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(pool), generator=seeded)[:value]
        items = [pool[i] for i in order.tolist()]
    items = set(items)
    if not items <= set(pool) or len(items) >= len(pool):
        raise ValueError(
            f"{name} must hold out some, not all, of "
            f"{'the FORMS' if pool is FORMS else 'the years 1900-2099'}: "
            f"a count below {len(pool)} or a list of them; got {value!r}"
        )
    return tuple(item for item in pool if item in items)


class DateTask(Task):
    """Human dates → ``YYYY-MM-DD``. ``sample_pairs(3, 0)``::

        2 December 1948                     →  1948-12-02
        2011, August 24                     →  2011-08-24
        Thursday, the 16th of October 2092  →  2092-10-16

    ``split_forms``: the :data:`FORMS` seen only in ``test_forms``, or how
    many to draw; ``heldout_years``: the years seen only in ``test_years``,
    or how many to draw; ``seed`` draws those counts."""

    supports_seq2seq = True
    min_length = max_length = 1  # a date has one size
    eval_splits = DATE_SPLITS[1:]  # what the lab reports

    def __init__(
        self,
        split_forms: int | Sequence[str] = HELDOUT_FORMS,
        heldout_years: int | Sequence[int] = 20,
        seed: int = 0,
    ):
        check_count("seed", seed, 0)
        if isinstance(split_forms, str):
            split_forms = [split_forms]
        self.split_forms = _choose("split_forms", split_forms, FORMS, seed)
        self.heldout_years = _choose(
            "heldout_years", heldout_years, YEARS, seed
        )
        self.seed = seed
        names = [SPACE if c == " " else c for c in SOURCE_CHARS]
        self.token_names = tuple(names) + ("-", BOS, EOS, PAD)
        self._ids = {c: i for i, c in enumerate(SOURCE_CHARS + ("-",))}

    bos_id = property(lambda self: self.token_id(BOS))
    eos_id = property(lambda self: self.token_id(EOS))

    def check_length(self, length: int) -> None:
        if type(length) is not int or length != 1:
            raise ValueError(f"a date has one size: length 1, not {length}")

    def answer_len(self, length: int) -> int:
        return ANSWER_LEN  # YYYY-MM-DD, EOS

    def split_parts(self, split: str) -> tuple[tuple[str, ...], tuple]:
        """The form names and years a split draws from."""
        forms = tuple(f for f in FORMS if f not in self.split_forms)
        years = tuple(y for y in YEARS if y not in self.heldout_years)
        # "val": the lab's name for held-out batches
        parts = dict.fromkeys(("train", "test", "val"), (forms, years))
        parts["test_forms"] = (self.split_forms, years)
        parts["test_years"] = (forms, self.heldout_years)
        if split not in parts:
            raise ValueError(
                f"split must be one of {DATE_SPLITS}, got {split!r}"
            )
        if not all(parts[split]):
            raise ValueError(
                f"split {split!r} is empty: this task holds out no "
                "forms or no years; pass split_forms or heldout_years"
            )
        return parts[split]

    def draw_dates(
        self, n: int, generator, split: str = "train"
    ) -> list[tuple[date, str]]:
        """``n`` (day, form name) pairs: a year, then a day of it, uniform."""
        check_count("n", n, 1)
        forms, years = self.split_parts(split)
        g = as_generator(generator)
        year_i = torch.randint(len(years), (n,), generator=g).tolist()
        form_i = torch.randint(len(forms), (n,), generator=g).tolist()
        where = torch.rand(n, generator=g, dtype=torch.float64).tolist()
        out = []
        for y, f, u in zip(year_i, form_i, where):
            n_days = 366 if calendar.isleap(years[y]) else 365
            day = date(years[y], 1, 1) + timedelta(days=int(u * n_days))
            out.append((day, forms[f]))
        return out

    def sample_pairs(
        self, n: int, generator, split: str = "train"
    ) -> list[tuple[str, str]]:
        """``n`` (source, ISO target) strings of ``split``."""
        return [
            (write(form, day), day.isoformat())
            for day, form in self.draw_dates(n, generator, split)
        ]

    def encode_source(self, text: str) -> torch.Tensor:
        """A written date → character ids (S,)."""
        unknown = sorted(set(text) - set(SOURCE_CHARS))
        if unknown or not text:
            raise ValueError(
                f"a source is a non-empty string of the characters "
                f"{''.join(SOURCE_CHARS)!r}; {text!r} has {unknown}"
            )
        return torch.tensor([self._ids[c] for c in text], dtype=torch.long)

    def encode_target(self, iso: str) -> torch.Tensor:
        """``YYYY-MM-DD`` → its 10 character ids and EOS (A,)."""
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", iso):
            raise ValueError(f"a target reads YYYY-MM-DD, got {iso!r}")
        ids = [self._ids[c] for c in iso] + [self.eos_id]
        return torch.tensor(ids, dtype=torch.long)

    def decode_target(self, ids) -> str:
        """Ids (T,) → text: a leading BOS dropped, cut at EOS or PAD."""
        names = [self.token_names[i] for i in torch.as_tensor(ids).tolist()]
        names = names[1:] if names[:1] == [BOS] else names
        kept = takewhile(lambda c: c not in (BOS, EOS, PAD), names)
        return "".join(kept).replace(SPACE, " ")

    decode_source = decode_target

    def pairs_to_tensors(
        self, pairs: Sequence[tuple[str, str]]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(source, target) strings → src (B, S) padded with PAD on the
        right to the longest source, and answers (B, A)."""
        if not pairs:
            raise ValueError("pairs_to_tensors needs at least one pair")
        ids = [self.encode_source(s) for s, _ in pairs]
        src = pad_sequence(ids, batch_first=True, padding_value=self.pad_id)
        answer = torch.stack([self.encode_target(t) for _, t in pairs])
        return src, answer

    def seq2seq(
        self, batch_size: int, length: int, generator, *, split="train"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sources (B, S), right-padded, and answers (B, A) of ``split``."""
        check_count("batch_size", batch_size, 1)
        self.check_length(length)
        pairs = self.sample_pairs(batch_size, generator, split)
        return self.pairs_to_tensors(pairs)

    def decoder_inputs(self, answer: torch.Tensor) -> torch.Tensor:
        """Answers (B, A) → decoder inputs (B, A): BOS, answer[:, :-1]."""
        bos = answer.new_full((answer.shape[0], 1), self.bos_id)
        return torch.cat([bos, answer[:, :-1]], dim=1)

    def seq_len(self, length: int) -> int:
        self.check_length(length)
        return MAX_SOURCE_LEN + ANSWER_LEN  # source, BOS, answer, less one

    def sample(
        self, batch_size: int, length: int, generator, *, split="train"
    ) -> Batch:
        """For a decoder-only model: ``source BOS answer`` as next-token
        inputs and targets, scored on the answer and EOS, right-padded."""
        src, answer = self.seq2seq(batch_size, length, generator, split=split)
        n_src = (src != self.pad_id).sum(1).tolist()  # (B,)
        n_ans = ANSWER_LEN
        s = torch.full((batch_size, src.shape[1] + 1 + n_ans), self.pad_id)
        scored = torch.zeros(batch_size, s.shape[1] - 1, dtype=torch.bool)
        for b, n in enumerate(n_src):
            s[b, :n], s[b, n] = src[b, :n], self.bos_id
            s[b, n + 1 : n + 1 + n_ans] = answer[b]
            scored[b, n : n + n_ans] = True  # BOS predicts the first char
        return Batch(s[:, :-1], s[:, 1:], scored)
