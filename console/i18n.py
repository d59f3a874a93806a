"""Interface languages: gettext catalogues compiled from the shipped ``.po`` files at start.

The ``.po`` files under ``console/locale`` are the source; :func:`load_catalogues` compiles
them in memory with Babel (``babel.messages.pofile`` / ``mofile``), so nothing is built at
install time and nothing is fetched.  :class:`Lang` bundles one language's ``gettext`` with
Babel's date and number formatting for its locale.
"""

from __future__ import annotations

import datetime as dt
import gettext
import io
from dataclasses import dataclass
from pathlib import Path

from babel import Locale
from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

LOCALE_DIR = Path(__file__).parent / "locale"
LANGS = {"en": "English", "zh_CN": "简体中文"}
DEFAULT_LANG = "en"


@dataclass(frozen=True)
class Lang:
    """One interface language: translations, dates and numbers for its locale."""

    code: str
    translations: gettext.NullTranslations

    def gettext(self, message: str) -> str:
        return self.translations.gettext(message)

    def datetime(self, value: str | dt.datetime | None) -> str:
        """An ISO time stamp (UTC) shown in the locale's medium format, in UTC."""
        if not value:
            return "-"
        when = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
        return format_datetime(when, "medium", tzinfo=dt.UTC, locale=Locale.parse(self.code)) + " UTC"

    def number(self, value: float | None, digits: int = 1) -> str:
        """A number in the locale's format with at most ``digits`` decimals."""
        if value is None:
            return "-"
        return format_decimal(value, format="#,##0." + "#" * digits if digits else "#,##0",
                              locale=Locale.parse(self.code))


def load_catalogues() -> dict[str, Lang]:
    """Every shipped language, compiled from its ``.po`` file (English is the source text)."""
    langs = {DEFAULT_LANG: Lang(DEFAULT_LANG, gettext.NullTranslations())}
    for code in LANGS:
        po = LOCALE_DIR / code / "LC_MESSAGES" / "messages.po"
        if code == DEFAULT_LANG or not po.is_file():
            continue
        with open(po, "rb") as f:
            catalog = read_po(f, locale=code)
        buf = io.BytesIO()
        write_mo(buf, catalog)
        buf.seek(0)
        langs[code] = Lang(code, gettext.GNUTranslations(buf))
    return langs


def pick(langs: dict[str, Lang], wanted: str | None) -> Lang:
    """The language ``wanted`` names, else English."""
    return langs.get(wanted or "", langs[DEFAULT_LANG])
