"""Text from modules, made safe to show on a terminal.

A module's summary, names, ports and paths, and the error messages that quote them, come
from files anyone can publish. Shown as they are, ``\\x1b[2J`` clears the screen, ``\\x1b]0;``
retitles the window and a bidirectional override reorders what the reader sees. Everything
such text reaches the terminal through :func:`safe_text`; rich output additionally passes it
as :class:`rich.text.Text` (see ``modreg.cli._render``), so ``[bold]`` stays literal.

Example:
    >>> safe_text("drag\\x1b[2J law")
    'drag\\\\x1b[2J law'
    >>> safe_text("two\\nlines")
    'two\\\\nlines'
"""

from __future__ import annotations

import re

__all__ = ["safe_text"]

# C0 controls, DEL, C1 controls, and the Unicode bidirectional embeddings/overrides/isolates.
_UNSAFE_RE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def safe_text(value: object) -> str:
    """``str(value)`` with every control character written visibly as an escape."""
    return _UNSAFE_RE.sub(_escape, str(value))
