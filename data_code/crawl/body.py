"""Response bodies: size-capped content decoding, binary sniffing and charset detection.

Decoding is incremental and capped, so a gzip bomb is stopped after `cap` output bytes, not after it has filled
memory.
"""

from __future__ import annotations

import codecs
import re
import zlib
from collections.abc import Callable

try:  # optional: brotli >= 1.2 can cap its output; older versions cannot, so they are not used
    import brotli

    _BROTLI = hasattr(brotli.Decompressor(), "can_accept_more_data")
    _BROTLI_ERRORS: tuple[type[Exception], ...] = (brotli.error,)
except ImportError:  # pragma: no cover - depends on the environment
    _BROTLI, _BROTLI_ERRORS = False, ()

ACCEPT_ENCODING = "gzip, deflate, br" if _BROTLI else "gzip, deflate"
TEXT_CONTENT_TYPES = ("text/html", "application/xhtml+xml", "text/plain")
# Leading bytes of common binary formats (PNG, JPEG, GIF, PDF, ZIP, gzip, ELF, RIFF, Ogg, MP3, ICO, WOFF, 7z).
_MAGIC = (
    b"\x89PNG",
    b"\xff\xd8\xff",
    b"GIF8",
    b"%PDF",
    b"PK\x03\x04",
    b"\x1f\x8b",
    b"\x7fELF",
    b"RIFF",
    b"OggS",
    b"ID3",
    b"\x00\x00\x01\x00",
    b"wOFF",
    b"7z\xbc\xaf",
)
_CONTROL = set(range(0, 32)) - {9, 10, 12, 13, 27}  # tab, LF, FF, CR and ESC appear in real text
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


class DecodeLimitError(Exception):
    """Decoded output passed the cap (a decompression bomb)."""


class CorruptEncodingError(Exception):
    """The body is not valid gzip/deflate/br data."""


class UnsupportedEncodingError(Exception):
    """A Content-Encoding this crawler cannot decode."""


class CappedDecoder:
    """Content-decodes a body chunk by chunk into at most `cap` bytes; raises DecodeLimitError past that.

    The decoded bytes are kept in `output`, or handed to `sink` as they come (a download to a file).
    """

    def __init__(self, content_encoding: str | None, cap: int, sink: Callable[[bytes], object] | None = None):
        self.cap = cap
        self.output = bytearray()
        self.size = 0  # decoded bytes so far
        self._sink = sink
        self._encodings = [e.strip().lower() for e in (content_encoding or "").split(",") if e.strip()]
        self._encodings = [e for e in self._encodings if e != "identity"]
        if len(self._encodings) > 1 or any(e not in ("gzip", "x-gzip", "deflate", "br") for e in self._encodings):
            raise UnsupportedEncodingError(f"unsupported Content-Encoding {content_encoding!r}")
        if self._encodings == ["br"] and not _BROTLI:
            raise UnsupportedEncodingError("Content-Encoding br needs brotli >= 1.2")
        self._encoding = self._encodings[0] if self._encodings else None
        self._zlib = None
        self._brotli = brotli.Decompressor() if self._encoding == "br" else None

    def feed(self, chunk: bytes) -> None:
        """Decode one chunk of the body as sent."""
        try:
            self._feed(chunk)
        except (zlib.error, *_BROTLI_ERRORS) as error:
            raise CorruptEncodingError(str(error)) from error

    def _feed(self, chunk: bytes) -> None:
        if self._encoding is None:
            self._append(chunk)
        elif self._brotli is not None:
            self._feed_brotli(chunk)
        else:
            self._feed_zlib(chunk)

    def _feed_zlib(self, chunk: bytes) -> None:
        if self._zlib is None:
            self._zlib = zlib.decompressobj(_wbits(self._encoding, chunk))
        data = chunk
        while data:
            # Ask for one byte more than the room left: getting it proves the cap is exceeded.
            self._append(self._zlib.decompress(data, self.cap - self.size + 1))
            data = self._zlib.unconsumed_tail

    def _feed_brotli(self, chunk: bytes) -> None:
        self._append(self._brotli.process(chunk, output_buffer_limit=self.cap - self.size + 1))
        while not self._brotli.can_accept_more_data():
            self._append(self._brotli.process(b"", output_buffer_limit=self.cap - self.size + 1))

    def _append(self, data: bytes) -> None:
        if self.size + len(data) > self.cap:
            raise DecodeLimitError(f"decoded body exceeds {self.cap} bytes")
        self.size += len(data)
        if self._sink is None:
            self.output += data
        elif data:
            self._sink(data)

    def finish(self) -> bytes:
        """The decoded body (empty when it went to a sink)."""
        if self._zlib is not None:
            try:
                self._append(self._zlib.flush())
            except zlib.error as error:
                raise CorruptEncodingError(str(error)) from error
            if not self._zlib.eof:
                raise CorruptEncodingError("compressed stream ends early")
        return bytes(self.output)


def _wbits(encoding: str, first_chunk: bytes) -> int:
    """zlib window bits: gzip 31; deflate is meant to be zlib-wrapped (15) but some servers send it raw (-15)."""
    if encoding != "deflate":
        return 31
    zlib_header = len(first_chunk) >= 2 and (first_chunk[0] & 0x0F) == 8 and int.from_bytes(first_chunk[:2]) % 31 == 0
    return 15 if zlib_header else -15


def media_type(content_type: str | None) -> str:
    """'text/html; charset=utf-8' -> 'text/html' ('' when absent)."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def binary_reason(data: bytes) -> str | None:
    """Why `data` looks like a binary file rather than text, or None when it looks like text."""
    head = data[:4096]
    for magic in _MAGIC:
        if head.startswith(magic):
            return f"starts with the magic number {magic!r}"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return None  # UTF-16 text legitimately contains NUL bytes
    nul = head.find(b"\x00")
    if nul >= 0:
        return f"NUL byte at offset {nul}"
    control = sum(1 for byte in head if byte in _CONTROL)
    if head and control / len(head) > 0.1:
        return f"{control} of the first {len(head)} bytes are control characters"
    return None


def charset_of(content_type: str | None, body: bytes) -> str | None:
    """Declared charset: BOM, then the Content-Type header, then <meta charset> in the first 4 KB (not checked)."""
    for bom, name in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if body.startswith(bom):
            return name
    match = re.search(r"charset\s*=\s*[\"']?([^\s;\"']+)", content_type or "", re.IGNORECASE)
    if match:
        return match.group(1)
    match = _META_CHARSET.search(body[:4096])
    return match.group(1).decode("ascii", "replace") if match else None


def decode_text(body: bytes, content_type: str | None) -> tuple[str, str]:
    """Decode `body` with its declared charset, falling back to UTF-8 with replacement; return (text, charset)."""
    declared = charset_of(content_type, body)
    try:
        charset = codecs.lookup(declared).name if declared else "utf-8"
    except LookupError:  # an unknown charset name (e.g. 'foo-bar'): UTF-8 is the web's best guess
        charset = "utf-8"
    return body.decode(charset, errors="replace"), charset
