"""Tasks: pure, seeded generators of training batches, and their registry.

The layout of DeepMind's randomized-positional-encodings code (Ruoss et al.
2023), each module importing only those before it in this list:

* ``base``: the task API, :class:`Batch` and :class:`Task`;
* ``layouts``: :class:`PromptAnswerTask` and :class:`LabellingTask`;
* ``sequences``: copy, reverse, sort;
* ``arithmetic``: addition, modular running sum, parity;
* ``matching``: k-back, contains-pattern, long-range match, associative
  recall;
* ``extrapolation``: reversed addition with Abacus or coupled position ids,
  copy with EOS (counting copy);
* ``dates``: dates as people write them → ISO 8601, a translation task for
  an encoder-decoder (:class:`~annotated.tasks.dates.DateTask`);
* ``corpus``: the Tiny Shakespeare corpus, found or downloaded;
* ``text``: character-level windows (:class:`TextDataset`) and their
  tokenizer;
* ``registry``: ``TASKS``, :func:`register_task`, :func:`get_task`, and the
  built-in names.

Every public name is importable from here:
``from annotated.tasks import get_task, KBackTask``.
"""

from annotated.tasks.arithmetic import (
    AdditionTask,
    ModularRunningSumTask,
    ParityTask,
)
from annotated.tasks.base import (
    PAD,
    SEP,
    SPLITS,
    Batch,
    Task,
    as_generator,
    check_count,
    digit_names,
    letter_names,
)
from annotated.tasks.corpus import (
    ChecksumMismatchError,
    CorpusUnavailableError,
    download_tiny_shakespeare,
    load_tiny_shakespeare,
    tiny_shakespeare_path,
)
from annotated.tasks.extrapolation import (
    EOS,
    CopyEOSTask,
    ReversedAdditionTask,
    digit_places,
)
from annotated.tasks.layouts import LabellingTask, PromptAnswerTask
from annotated.tasks.matching import (
    AssociativeRecallTask,
    ContainsPatternTask,
    KBackTask,
    LongRangeMatchTask,
)
from annotated.tasks.registry import TASKS, get_task, register_task
from annotated.tasks.sequences import CopyTask, ReverseTask, SortTask
from annotated.tasks.text import CharTokenizer, TextDataset

__all__ = [
    "EOS",
    "PAD",
    "SEP",
    "SPLITS",
    "TASKS",
    "AdditionTask",
    "AssociativeRecallTask",
    "Batch",
    "CharTokenizer",
    "ChecksumMismatchError",
    "ContainsPatternTask",
    "CopyEOSTask",
    "CopyTask",
    "CorpusUnavailableError",
    "KBackTask",
    "LabellingTask",
    "LongRangeMatchTask",
    "ModularRunningSumTask",
    "ParityTask",
    "PromptAnswerTask",
    "ReverseTask",
    "ReversedAdditionTask",
    "SortTask",
    "Task",
    "TextDataset",
    "as_generator",
    "check_count",
    "digit_names",
    "digit_places",
    "download_tiny_shakespeare",
    "get_task",
    "letter_names",
    "load_tiny_shakespeare",
    "register_task",
    "tiny_shakespeare_path",
]
