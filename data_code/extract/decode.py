"""From HTTP payload bytes to text: what kind of content it is, and which character encoding reads it.

The encoding is chosen the way browsers do, then checked: BOM, the Content-Type header's charset, the page's own
<meta charset>, and finally detection (uchardet, through resiliparse). The first that decodes the bytes without
error wins; mojibake (UTF-8 read as windows-1252 somewhere upstream) is repaired later with ftfy.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

import ftfy
from resiliparse.parse.encoding import detect_encoding, map_encoding_to_html5

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
TEXT_TYPES = frozenset({"text/plain"})

# File signatures of formats that servers often mislabel as text/html (downloads, images behind a CMS).
_BINARY_SIGNATURES = (
    b"%PDF-",
    b"\x89PNG",
    b"GIF8",
    b"\xff\xd8\xff",  # JPEG
    b"PK\x03\x04",  # zip, docx, epub
    b"\x1f\x8b",  # gzip
    b"BZh",
    b"\x7fELF",
    b"RIFF",
    b"OggS",
    b"ID3",
    b"wOFF",
    b"wOF2",
    b"\xd0\xcf\x11\xe0",  # OLE: doc, xls
    b"7z\xbc\xaf",
    b"Rar!",
)
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-z0-9_:.\-]+)""", re.IGNORECASE)
_HTML_START = re.compile(rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html|head|body)\b", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Decoded:
    text: str
    encoding: str  # the codec that produced `text`
    replacement_ratio: float  # share of U+FFFD characters in `text`
    tried: tuple[str, ...]  # codecs tried, in order (for the rejection detail)


def parse_content_type(value: str | None) -> tuple[str | None, str | None]:
    """('text/html', 'utf-8') from 'text/html; charset="UTF-8"'; (None, None) when absent."""
    if not value:
        return None, None
    media_type, *params = value.split(";")
    charset = None
    for param in params:
        name, _, param_value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = param_value.strip().strip("\"'") or None
    return media_type.strip().lower() or None, charset


def content_kind(media_type: str | None, payload: bytes) -> str | None:
    """'html', 'text', or None for content we do not extract. A missing type is sniffed from the first bytes."""
    if media_type in HTML_TYPES:
        return "html"
    if media_type in TEXT_TYPES:
        return "text"
    if media_type in (None, "application/octet-stream") and _HTML_START.match(payload[:1024]):
        return "html"
    return None


def is_binary(payload: bytes, declared_charset: str | None) -> bool:
    """True for bytes that are no text in any encoding: a known file signature, or NUL bytes outside UTF-16/32."""
    head = payload[:1024]
    if head.startswith(_BINARY_SIGNATURES):
        return True
    wide = head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or "16" in (declared_charset or "")
    return b"\x00" in head and not wide


def decode_payload(payload: bytes, header_charset: str | None, *, is_html: bool) -> Decoded:
    """Decode `payload`: BOM -> header charset -> meta charset -> detected; the first strict decode wins.

    When none decodes strictly, the candidate with the fewest replacement characters is used and then repaired
    with ftfy; the caller rejects the page when too many replacement characters remain.
    """
    candidates = _candidates(payload, header_charset, is_html)
    for encoding in candidates:
        try:
            text = payload.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            continue
        return Decoded(text, encoding, _replacement_ratio(text), candidates)
    decodings = [(payload.decode(encoding, errors="replace"), encoding) for encoding in candidates]
    text, encoding = min(decodings, key=lambda pair: pair[0].count("\ufffd"))  # min keeps the earliest on ties
    text = ftfy.fix_encoding(text)
    return Decoded(text, encoding, _replacement_ratio(text), candidates)


def _candidates(payload: bytes, header_charset: str | None, is_html: bool) -> tuple[str, ...]:
    bom = next((encoding for mark, encoding in _BOMS if payload.startswith(mark)), None)
    if bom:  # a BOM overrides every declaration (WHATWG "decode")
        return (bom,)
    labels = [header_charset]
    if is_html:
        match = _META_CHARSET.search(payload[:4096])
        labels.append(match.group(1).decode("ascii") if match else None)
    labels.append(detect_encoding(payload))
    labels.append("utf-8")
    names = [_codec_name(label) for label in labels]
    return tuple(dict.fromkeys(name for name in names if name))


def _codec_name(label: str | None) -> str | None:
    """Python codec for a charset label, remapped as browsers do (iso-8859-1 and ascii mean windows-1252)."""
    if not label:
        return None
    try:
        codecs.lookup(label)
        name = map_encoding_to_html5(label)
        return codecs.lookup(name).name
    except LookupError:
        return None


def _replacement_ratio(text: str) -> float:
    return text.count("\ufffd") / len(text) if text else 0.0
