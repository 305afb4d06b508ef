"""What every layer uses and no chapter teaches.

- ``fields`` (with ``ranges``, ``type_checks`` and ``advice``): one
  validation path for the fields of every config dataclass, with a sentence
  that says what to write instead;
- ``atomic``: files written atomically, so a reader or a resumed run never
  meets half a file.
"""
