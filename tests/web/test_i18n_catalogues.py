"""The pages' strings: English and Chinese catalogues hold the same keys, and every key a page or
its script names (data-i18n attributes, t("...") and say(node, "...") calls) is in them."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parents[2] / "web" / "static"
_KEY = re.compile(r'^\s*"([a-z0-9_.]+)":', re.MULTILINE)
_HTML_KEY = re.compile(r'data-i18n(?:-label|-placeholder)?="([a-z0-9_.]+)"')
# Literal keys only: t(`service.${x}`) and the like are checked by the pages' own fallbacks.
_JS_KEY = re.compile(r'(?:\bt|i18n\.t|i18n\.say\([^,]+,)\(?\s*"([a-z0-9_]+\.[a-z0-9_.]+)"')


def keys(name: str) -> set[str]:
    return set(_KEY.findall((STATIC / "i18n" / name).read_text(encoding="utf-8")))


@pytest.mark.parametrize(
    ("english", "chinese"), [("en.js", "zh.js"), ("tools_en.js", "tools_zh.js")]
)
def test_both_languages_have_the_same_keys(english: str, chinese: str) -> None:
    en, zh = keys(english), keys(chinese)
    assert en, english
    assert en - zh == set(), f"missing in {chinese}"
    assert zh - en == set(), f"missing in {english}"


@pytest.mark.parametrize(
    ("page", "script"),
    [
        ("appointments.html", "appointment_desk.js"),
        ("dashboard.html", "dashboard.js"),
        ("outlet.html", "outlet.js"),
        ("admin.html", "admin.js"),
    ],
)
def test_every_key_a_page_names_is_in_the_catalogues(page: str, script: str) -> None:
    known = keys("en.js") | keys("tools_en.js")
    html = (STATIC / page).read_text(encoding="utf-8")
    js = (STATIC / "js" / script).read_text(encoding="utf-8")
    named = set(_HTML_KEY.findall(html)) | set(_JS_KEY.findall(js))
    assert named, page
    assert named - known == set()


class _Untranslated(HTMLParser):
    """Text that sits in no element naming its string (the language buttons name themselves)."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[tuple[str, dict[str, str | None]]] = []
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ("input", "meta", "link", "br"):
            self.open.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        while self.open and self.open.pop()[0] != tag:
            pass

    def handle_data(self, data: str) -> None:
        if not data.strip() or not self.open:
            return
        tag, attrs = self.open[-1]
        if tag not in ("title", "script", "style") and not {"data-i18n", "data-lang"} & set(attrs):
            self.found.append(data.strip())


@pytest.mark.parametrize("page", ["appointments.html", "dashboard.html"])
def test_the_programme_pages_switch_language_and_name_every_text(page: str) -> None:
    html = (STATIC / page).read_text(encoding="utf-8")
    assert 'data-lang="zh"' in html and 'data-lang="en"' in html
    parser = _Untranslated()
    parser.feed(html)
    assert parser.found == []
