"""Plain text helpers with no Django imports."""

from __future__ import annotations

# Unicode bidirectional controls (UAX #9): embeddings and overrides U+202A-U+202E, isolates
# U+2066-U+2069, marks U+200E/U+200F and the Arabic letter mark U+061C. A patient name or a
# clinical question carrying U+202E can show its text reversed, so "tnemhcatta.exe" reads differently
# from what it is; staff pages show these characters as visible codes instead.
BIDI_CONTROLS = frozenset(
    [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
)
_VISIBLE = {code: f"[U+{code:04X}]" for code in BIDI_CONTROLS}


def reveal_bidi_controls(text: str) -> str:
    """Each bidi control replaced by its code in brackets, e.g. "[U+202E]" (no HTML metacharacters,
    so the result of escaped HTML is still escaped HTML)."""
    return text.translate(_VISIBLE)
