"""Prose for a reader: paragraphs wrapped to one width, the same in every command's report."""

from __future__ import annotations

import textwrap

__all__ = ["WIDTH", "wrapped"]

WIDTH = 100


def wrapped(text: str, first: str = "", rest: str | None = None, *, end: str = "\n") -> list[str]:
    """`text` in lines of at most WIDTH (a longer word has a line of its own), each ending with
    `end`: the first after `first`, the others after `rest` (by default `first` and four spaces).

    Never broken at a hyphen or inside a word, so ids, paths and URLs stay whole.
    """
    lines = textwrap.wrap(
        text,
        WIDTH,
        initial_indent=first,
        subsequent_indent=first + "    " if rest is None else rest,
        break_on_hyphens=False,
        break_long_words=False,
    )
    return [line + end for line in lines]
