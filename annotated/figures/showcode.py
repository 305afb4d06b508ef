"""Show the library's own code on a chapter's page, by object.

For example ``show_source(attend)``.

A chapter never slices source text; it names the function or class, and the
page shows the same lines the tests run, syntax-highlighted in HTML and as
plain text everywhere else.
"""

from __future__ import annotations

import inspect
import textwrap


def show_source(obj):
    """The source of a function, class or method as a ``Code`` block.

    An ``IPython.display.Code``: syntax-highlighted in HTML, plain text
    elsewhere."""
    from IPython.display import Code

    try:
        source = inspect.getsource(obj)
    except TypeError as err:
        raise ValueError(
            "show_source needs a function, class or method, "
            f"got {type(obj).__name__}"
        ) from err
    # a method's body stays indented under its def
    return Code(textwrap.dedent(source), language="python")
