"""Text from modules, made safe to show on a terminal or in a figure.

A module's summary, names, ports, paths and provenance, and the error messages that quote
them, come from files anyone can publish. Shown as they are, ``\\x1b[2J`` clears the screen,
``\\x1b]0;`` retitles the window, a bidirectional override (U+202E) reorders what the reader
sees and a zero-width space hides in a name. Everything such text reaches the terminal
through :func:`safe_text`; rich output additionally passes it as :class:`rich.text.Text`
(see ``modreg.cli._render``), so ``[bold]`` stays literal.

In a matplotlib figure ``$...$`` is math text (``$\\frac$`` fails the whole drawing) and,
under ``text.usetex``, everything goes to LaTeX: each text artist that shows module text is
passed to :func:`plain_figure_text`, after :func:`safe_text` made its string.

Example:
    >>> safe_text("drag\\x1b[2J law")
    'drag\\\\x1b[2J law'
    >>> safe_text("two\\nlines")
    'two\\\\nlines'
    >>> safe_text("gpj.\\u202eexe")
    'gpj.\\\\u202eexe'
    >>> safe_text("Größe ≤ 5 m²")
    'Größe ≤ 5 m²'
"""

from __future__ import annotations

import re
import unicodedata
from typing import Protocol

__all__ = ["plain_figure_text", "safe_text"]

# Anything outside printable ASCII is a candidate; unicodedata decides (see _UNSAFE).
_CANDIDATE_RE = re.compile("[^\x20-\x7e]")
# Cc: C0, DEL, C1. Cf: format characters: bidi embeddings, overrides and isolates
# (U+202A-U+202E, U+2066-U+2069), marks (U+200E, U+200F, U+061C), zero-width characters,
# the BOM, tags. Cs: lone surrogates, which cannot even be encoded. Zl, Zp: the line and
# paragraph separators (U+2028, U+2029), line breaks to some terminals.
_UNSAFE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if unicodedata.category(char) not in _UNSAFE:
        return char
    code = ord(char)
    if char in _NAMED:
        return _NAMED[char]
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def safe_text(value: object) -> str:
    """``str(value)`` with every control or format character written visibly as an escape.

    Escaping is idempotent (an escape is plain ASCII), so text made safe twice reads the same.
    """
    return _CANDIDATE_RE.sub(_escape, str(value))


class _TextArtist(Protocol):
    def set_parse_math(self, parse_math: bool) -> None: ...
    def set_usetex(self, usetex: bool | None) -> None: ...


def plain_figure_text(*artists: _TextArtist) -> None:
    """Show each matplotlib text artist's string as written: no math text, no LaTeX.

    Only artists holding module text: tick labels of a log axis are math text on purpose.
    """
    for artist in artists:
        artist.set_parse_math(False)
        artist.set_usetex(False)
