"""Short, realistic texts for filter tests: each passes every heuristic filter unless a test breaks it on purpose."""

from __future__ import annotations

import datetime

# Prose in the register of library documentation: 5+ sentences, lines ending in punctuation, no repeats.
GOOD_TEXT = """\
The archive module reads and writes compressed files in the common formats used for software distribution.
Each archive is opened with a single function call, and the returned object behaves like an ordinary file.
When a member is extracted, its permissions and modification time are restored from the stored header.
Paths that would escape the destination directory are rejected, since a hostile archive could overwrite files.
Large archives are processed as a stream, so the whole file never has to fit in memory at once.
The examples below show how to list the members of an archive and how to extract only the ones you need."""

GOOD_TEXT_2 = """\
A thread pool runs many small tasks on a fixed number of worker threads that are created only once.
Submitting a task returns a future object, which can be asked whether the work has finished and what it returned.
If the task raised an exception, the future stores it and raises it again when the result is requested.
The pool should be shut down when it is no longer needed, so that the worker threads can exit cleanly.
Using the pool as a context manager does this automatically at the end of the block.
This pattern suits programs that spend most of their time waiting for the network or the disk."""

GERMAN_TEXT = """\
Das Archivmodul liest und schreibt komprimierte Dateien in den gängigen Formaten für die Softwareverteilung.
Jedes Archiv wird mit einem einzigen Aufruf geöffnet, und das Ergebnis verhält sich wie eine Datei.
Beim Entpacken werden die Berechtigungen und die Änderungszeit aus dem gespeicherten Kopf wiederhergestellt.
Pfade, die das Zielverzeichnis verlassen würden, werden abgelehnt, weil sie Systemdateien überschreiben könnten.
Große Archive werden als Datenstrom verarbeitet, sodass die ganze Datei nie auf einmal in den Speicher passen muss."""


def make_doc(text: str, url: str = "https://docs.example.com/page", **fields) -> dict:
    """A Document row (DOCUMENT_SCHEMA keys) around `text`."""
    from urllib.parse import urlsplit

    doc_id = fields.pop("doc_id", None) or f"id-{abs(hash((url, text))) % 10**12:012d}"
    doc = {
        "doc_id": doc_id,
        "url": url,
        "domain": urlsplit(url).hostname,
        "fetch_time": datetime.datetime(2024, 5, 1, tzinfo=datetime.UTC),
        "warc_file": "crawl.warc.gz",
        "warc_offset": 0,
        "warc_record_id": None,
        "http_status": 200,
        "content_type": "text/html",
        "license": None,
        "robots": "allowed",
        "robots_meta": None,
        "source": "crawl",
        "title": "A page",
        "text": text,
        "language": None,
        "language_score": None,
        "quality_score": None,
    }
    doc.update(fields)
    return doc
