r"""Producer text made safe for a terminal.

Kinds, checkpoint and step names, messages, flow names and error types come from whoever
publishes events, so a terminal must never receive their control characters as they are: an
ESC starts a sequence that can retitle the window, clear the screen, move the cursor or plant
an OSC 8 hyperlink, and BEL rings. Every C0 control (U+0000-U+001F), DEL and every C1 control
(U+0080-U+009F) is shown as a visible escape instead (``\x1b``, ``\n``), so the text still
says what was sent. The CLI's own styling is added after this, by the CLI, and is untouched.
``--json`` output needs none of this: JSON escapes control characters itself.

See ``docs/server-architecture.md`` ("Untrusted text").
"""

from __future__ import annotations

__all__ = ["terminal_safe"]

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

_TABLE = {
    code: _NAMED.get(chr(code), f"\\x{code:02x}")
    for code in (*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0))
}


def terminal_safe(text: str) -> str:
    """``text`` with every C0/C1 control character and DEL replaced by a visible escape."""
    if text.isprintable():  # the common case, checked in C
        return text
    return text.translate(_TABLE)
