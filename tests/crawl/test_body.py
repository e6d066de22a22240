"""Body handling: capped decoding, binary sniffing, charsets, Retry-After."""

import gzip
import zlib
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from data_code.crawl.body import (
    CappedDecoder,
    CorruptEncodingError,
    DecodeLimitError,
    UnsupportedEncodingError,
    binary_reason,
    decode_text,
)
from data_code.crawl.fetch import retry_after_seconds


def _decode(encoding, data, cap=10_000, chunk=7):
    decoder = CappedDecoder(encoding, cap)
    for start in range(0, len(data), chunk):
        decoder.feed(data[start : start + chunk])
    return decoder.finish()


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda data: zlib.compress(data)[2:-4]),  # raw deflate, as some servers send it
        (None, lambda data: data),
        ("identity", lambda data: data),
    ],
)
def test_decoder_round_trips(encoding, compress):
    text = b"<html>hello</html>" * 50
    assert _decode(encoding, compress(text)) == text


def test_decoder_stops_a_bomb_at_the_cap():
    decoder = CappedDecoder("gzip", 100_000)
    with pytest.raises(DecodeLimitError):
        decoder.feed(gzip.compress(b"\0" * 50_000_000))
    assert len(decoder.output) <= 100_000


def test_brotli_bomb_is_stopped():
    brotli = pytest.importorskip("brotli")
    with pytest.raises(DecodeLimitError):
        CappedDecoder("br", 100_000).feed(brotli.compress(b"a" * 20_000_000))


def test_decoder_rejects_corrupt_and_unknown_encodings():
    with pytest.raises(CorruptEncodingError):
        _decode("gzip", b"this is not gzip data")
    with pytest.raises(CorruptEncodingError):
        _decode("gzip", gzip.compress(b"x" * 1000)[:-20])  # truncated
    with pytest.raises(UnsupportedEncodingError):
        CappedDecoder("compress", 100)


@pytest.mark.parametrize(
    "data", [b"\x89PNG\r\n\x1a\n", b"GIF89a", b"%PDF-1.4", b"PK\x03\x04", b"<html>\x00</html>", bytes(range(32)) * 10]
)
def test_binary_content_is_recognized(data):
    assert binary_reason(data)


@pytest.mark.parametrize(
    "data", [b"<html><body>caf\xc3\xa9</body></html>", b"plain\ttext\r\n", b"", "é".encode("utf-16")]
)
def test_text_is_not_binary(data):
    assert binary_reason(data) is None


def test_charset_detection_and_fallback():
    assert decode_text("café".encode("latin-1"), "text/html; charset=ISO-8859-1") == ("café", "iso8859-1")
    assert decode_text(b'<meta charset="windows-1252"><p>\xe9', None)[1] == "cp1252"
    assert decode_text("café".encode(), "text/html; charset=foo-bar") == ("café", "utf-8")
    assert decode_text(b"bad \xff byte", None) == ("bad \ufffd byte", "utf-8")


def test_retry_after_forms():
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= retry_after_seconds(later) <= 30
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
