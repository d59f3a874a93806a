"""Every literal string the templates and routes translate has a Simplified Chinese translation."""

from __future__ import annotations

import re
from pathlib import Path

from console.i18n import load_catalogues

CONSOLE = Path(__file__).resolve().parents[2] / "console"
LITERAL = re.compile(r'(?:\b_|gettext)\("((?:[^"\\]|\\.)*)"\)')


def test_every_translated_literal_has_a_chinese_translation() -> None:
    zh = load_catalogues()["zh_CN"]
    sources = [*CONSOLE.glob("templates/*.html"), *CONSOLE.glob("*.py")]
    literals = {m for p in sources for m in LITERAL.findall(p.read_text(encoding="utf-8"))}
    assert len(literals) > 100
    missing = sorted(s for s in literals if zh.gettext(s) == s)
    assert missing == []
