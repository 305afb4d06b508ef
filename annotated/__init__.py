"""Annotated Attention: the library behind the book.

Each module holds one idea; see the chapters in ``notebooks/`` for the
walk-through.
"""

__version__ = "0.1.0"
