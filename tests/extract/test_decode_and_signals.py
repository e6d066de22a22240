"""Encoding repair, page signals read from the DOM, language and metadata parsing, and the config contract."""

from __future__ import annotations

import dataclasses

import pyarrow.parquet as pq
import pytest

from data_code.extract import ExtractConfig, extract_text, extract_to_parquet
from data_code.extract.decode import content_kind, decode_payload, is_binary, parse_content_type
from data_code.extract.page import parse_html, read_page_signals
from data_code.extract.pipeline import parse_warc_fields
from data_code.extract.record import declared_language
from data_code.signals import page_signals
from lineage.identity import versioned_fields
from tests.extract.warcs import ARTICLE, Exchange, realistic_page, write_crawl_warc

FRENCH = "Le café crème coûte deux euros à Noël, dit l’élève naïve. " * 5


def french_page(charset_meta: str) -> str:
    return realistic_page(title="Café", body=f"<h1>Café</h1><p>{FRENCH}</p>").replace(
        '<meta charset="utf-8">', f'<meta http-equiv="Content-Type" content="text/html; charset={charset_meta}">'
    )


def test_windows_1252_page_declared_by_meta_charset():
    payload = french_page("windows-1252").encode("cp1252")
    decoded = decode_payload(payload, None, is_html=True)
    assert decoded.encoding == "cp1252" and FRENCH in decoded.text


def test_wrong_header_charset_falls_back_to_meta_charset():
    payload = french_page("windows-1252").encode("cp1252")
    decoded = decode_payload(payload, "utf-8", is_html=True)  # the server lies; cp1252 bytes are invalid UTF-8
    assert decoded.tried[:2] == ("utf-8", "cp1252")
    assert decoded.encoding == "cp1252" and FRENCH in decoded.text and decoded.replacement_ratio == 0.0


def test_latin1_header_on_utf8_bytes_and_double_encoded_text_are_repaired(tmp_path):
    mislabelled = french_page("iso-8859-1").encode("utf-8")  # reads as "cafÃ© crÃ¨me" in windows-1252
    double_encoded = french_page("utf-8").replace(FRENCH, FRENCH.encode("utf-8").decode("cp1252")).encode("utf-8")
    warc = tmp_path / "crawl.warc.gz"
    write_crawl_warc(
        warc,
        [
            Exchange("https://example.fr/a", mislabelled, "text/html; charset=ISO-8859-1"),
            Exchange("https://example.fr/b", double_encoded, "text/html"),
        ],
    )
    extract_to_parquet([str(warc)], str(tmp_path / "d.parquet"), str(tmp_path / "r.parquet"), ExtractConfig(workers=1))
    texts = pq.read_table(tmp_path / "d.parquet").column("text").to_pylist()
    assert len(texts) == 2
    for text in texts:
        assert FRENCH.strip() in " ".join(text.split()), text[:120]


def test_bytes_no_candidate_can_read_are_undecodable():
    payload = b"<p>" + bytes(range(0x80, 0x100)) * 4 + b"</p>"
    decoded = decode_payload(payload, "utf-8", is_html=True)
    assert decoded.replacement_ratio > 0.01


def test_utf16_with_bom_is_text_not_binary():
    payload = "\ufeff<html><body><p>Grüße</p></body></html>".encode("utf-16-le")
    assert not is_binary(payload, None)
    assert "Grüße" in decode_payload(payload, None, is_html=True).text


@pytest.mark.parametrize(
    ("header", "payload", "kind"),
    [
        ('text/html; charset="UTF-8"', b"", "html"),
        ("application/xhtml+xml", b"", "html"),
        ("text/plain; charset=utf-8", b"", "text"),
        (None, b"  <!DOCTYPE html><html>", "html"),
        (None, b"just bytes", None),
        ("application/json", b"{}", None),
    ],
)
def test_content_kind(header, payload, kind):
    assert content_kind(parse_content_type(header)[0], payload) == kind


def test_parse_content_type():
    assert parse_content_type('Text/HTML; Charset="ISO-8859-1"; boundary=x') == ("text/html", "ISO-8859-1")
    assert parse_content_type(None) == (None, None)


PAGES = [
    realistic_page(head_extra='<meta name="ROBOTS" content="NoIndex,NoFollow"><link rel="License" href="/l">'),
    realistic_page(
        lang="pt-BR", footer_extra='<a rel="nofollow" href="http://creativecommons.org/publicdomain/zero/1.0/">CC0</a>'
    ),
    realistic_page(head_extra='<base href="https://cdn.example.net/docs/"><meta name="ai" content="noai">')
    + '<a rel="license" href="terms.html">terms</a>',
    realistic_page(title="Real title", footer_extra="<svg><title>logo</title></svg>"),
    realistic_page(lang="", footer_extra='<a href="mailto:x@example.org" rel="license">mail</a>'),
]


@pytest.mark.parametrize("html", PAGES)
def test_dom_signals_agree_with_the_crawler_signals(html):
    """Extraction reads signals from the resiliparse DOM; they must match data_code.signals.page_signals."""
    url = "https://example.org/section/page.html"
    expected = page_signals(html, url, x_robots_tag="googlebot: noarchive")
    actual = read_page_signals(parse_html(html), url, x_robots_tag="googlebot: noarchive")
    assert (actual.license, actual.robots_meta, actual.language, actual.title) == (
        expected.license,
        expected.robots_meta,
        expected.language,
        expected.title,
    )


@pytest.mark.parametrize(
    ("html_lang", "content_language", "expected"),
    [
        ("en-GB", None, "en"),
        ("", "de-AT, en", "de"),
        ("zh_Hant", None, "zh"),
        ("x-default", "FR", "fr"),
        (None, None, None),
    ],
)
def test_declared_language(html_lang, content_language, expected):
    assert declared_language(html_lang, content_language) == expected


def test_parse_warc_fields():
    payload = b"robots: allowed\nrobots-meta: noai\nlicense: https://x.org/l\ndepth: 2\n"
    assert parse_warc_fields(payload) == {
        "robots": "allowed",
        "robots-meta": "noai",
        "license": "https://x.org/l",
        "depth": "2",
    }


@pytest.mark.parametrize("engine", ["resiliparse", "trafilatura"])
def test_extract_text_returns_title_and_main_text(engine):
    title, text = extract_text(realistic_page(), "https://example.org/otters", engine)
    assert title == "Otters return to the valley" and ARTICLE in " ".join(text.split())


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("extractor", "lxml"),
        ("engine", "trafilatura"),  # the extractor's old field: the error says where it moved
        ("engine", "dask"),
        ("min_text_chars", -1),
        ("max_replacement_char_ratio", 1.5),
        ("workers", 0),
        ("batch_records", 0),
        ("include_tables", "yes"),
    ],
)
def test_invalid_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        ExtractConfig(**{field: value})


EXTRACT_CHANGES = {  # field: (another valid value, does it change the artifact version?)
    "extractor": ("trafilatura", True),
    "engine": ("spark", False),
    "min_text_chars": (50, True),
    "max_replacement_char_ratio": (0.2, True),
    "include_tables": (False, True),
    "workers": (7, False),
    "batch_records": (3, False),
}


@pytest.mark.parametrize("name", sorted(EXTRACT_CHANGES))
def test_only_output_fields_change_the_version(name):
    assert set(EXTRACT_CHANGES) == {field.name for field in dataclasses.fields(ExtractConfig)}
    value, changes = EXTRACT_CHANGES[name]
    base = ExtractConfig(extractor="resiliparse", workers=1)
    changed = dataclasses.replace(base, **{name: value})
    assert (versioned_fields(changed) != versioned_fields(base)) is changes
