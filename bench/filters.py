"""Heuristic filters: lmforge's compiled chain against datatrove's filters with the same rules, in one run.

    .venv/bin/python -m bench.filters [--quick] --json bench-filters.json

Input: the demo site's pages (the Python manual, else pydoc's pages of the standard library) extracted by
resiliparse, as the extract stage makes them. Everything runs on ONE core, in this process.

- lmforge: FilterPipeline over non_empty, gopher_quality, gopher_repetition, c4, fineweb, pii (the stage's order,
  published thresholds); documents/s and MB/s of input text (UTF-8). The same chain with language ID (lid.176) in
  front is reported too, and so is each filter alone over every document.
- reference: the same rules in plain Python (data_code.filters.reference, lmforge's filters before compilation),
  which the compiled chain must match decision for decision (checked here as well: `reference_identical`).
- datatrove 0.10 (`pip install -e '.[filters-compare]'`): GopherQualityFilter, GopherRepetitionFilter,
  C4QualityFilter, FineWebQualityFilter and PIIFormatter with the same thresholds, called directly on Documents,
  in the same order. It is slow (spaCy word tokenizer), so it runs on a prefix of the pages, and lmforge is timed
  on that prefix again for the speed-up.
- agreement: the share of documents both sides keep or both drop, for the chain and for each filter alone (PII:
  both change the text or both leave it, e-mail and IP addresses only, the types datatrove handles). The rules
  differ in details documented in docs/filters-research.md (tokenizer, line handling, n-gram denominators).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

PAGES = {"quick": 150, "full": None}  # None: every page
DATATROVE_PAGES = {"quick": 40, "full": 200}
REPEATS = 2  # best of two runs: the least disturbed one
CHAIN = ("gopher_quality", "gopher_repetition", "c4", "fineweb", "pii")


def load_documents(pages: int | None) -> list[dict]:
    from cli.demo_site import site_pages
    from data_code.extract.page import extract_text

    documents = []
    for path, html in site_pages(pages):
        url = f"http://127.0.0.1/{path}"
        text = extract_text(html, url, "resiliparse")[1]
        if text:
            documents.append({"doc_id": path, "url": url, "domain": "127.0.0.1", "text": text})
    return documents


def lmforge_filters(names, compiled: bool = True) -> list:
    from data_code.filters import reference
    from data_code.filters.c4 import C4QualityFilter
    from data_code.filters.fineweb import FineWebQualityFilter
    from data_code.filters.gopher import GopherQualityFilter, GopherRepetitionFilter
    from data_code.filters.language import LanguageFilter
    from data_code.filters.pii import PIIRedactionFilter

    classes = {
        "language": (LanguageFilter, LanguageFilter),
        "gopher_quality": (GopherQualityFilter, reference.GopherQualityReference),
        "gopher_repetition": (GopherRepetitionFilter, reference.GopherRepetitionReference),
        "c4": (C4QualityFilter, reference.C4QualityReference),
        "fineweb": (FineWebQualityFilter, reference.FineWebQualityReference),
        "pii": (PIIRedactionFilter, reference.PIIRedactionReference),
    }
    return [classes[name][0 if compiled else 1]() for name in names]


def run_lmforge(documents: list[dict], names, compiled: bool = True):
    from data_code.filters.base import FilterPipeline, NonEmptyFilter

    pipeline = FilterPipeline([NonEmptyFilter(), *lmforge_filters(names, compiled)])
    pipeline.run(documents[:5])  # compile and load models outside the timing
    return _best(lambda: pipeline.run(documents))


def datatrove_steps() -> dict:
    try:
        from datatrove.pipeline.filters import (
            C4QualityFilter,
            FineWebQualityFilter,
            GopherQualityFilter,
            GopherRepetitionFilter,
        )
        from datatrove.pipeline.formatters import PIIFormatter
    except ImportError as error:
        message = f"bench.filters compares with datatrove: pip install -e '.[filters-compare]' ({error})"
        raise SystemExit(message) from error

    from data_code.filters.gopher import DUP_NGRAM_CHAR_FRACS, TOP_NGRAM_CHAR_FRACS

    return {  # lmforge's thresholds, spelled in datatrove's parameters (most are its defaults too)
        "gopher_quality": GopherQualityFilter(min_doc_words=50, max_doc_words=100_000, min_stop_words=2),
        "gopher_repetition": GopherRepetitionFilter(
            top_n_grams=TOP_NGRAM_CHAR_FRACS, dup_n_grams=DUP_NGRAM_CHAR_FRACS
        ),
        "c4": C4QualityFilter(min_num_sentences=5, min_words_per_line=3, max_word_length=1000),
        "fineweb": FineWebQualityFilter(line_punct_thr=0.12, short_line_thr=0.67, char_duplicates_ratio=0.01),
        "pii": PIIFormatter(remove_emails=True, remove_ips=True, only_remove_public_ips=True),
    }


def datatrove_decide(steps: dict, text: str, names) -> bool:
    """Run `text` through datatrove's `names` in order; True if kept."""
    from datatrove.data import Document

    document = Document(text=text, id="bench")
    for name in names:
        if name == "pii":
            document.text = steps["pii"].format(document.text)
        elif steps[name].filter(document) is not True:
            return False
    return True


def run_datatrove(documents: list[dict]) -> tuple[float, list[bool]]:
    steps = datatrove_steps()
    datatrove_decide(steps, documents[0]["text"] + " warm", CHAIN)  # load spaCy outside the timing
    return _best(lambda: [datatrove_decide(steps, doc["text"], CHAIN) for doc in documents])


def per_filter_speed(documents: list[dict], megabytes: float) -> dict:
    """MB/s of each lmforge filter alone over every document (filter, then transform when kept)."""
    speeds = {}
    for name in ("language", *CHAIN):
        (each,) = lmforge_filters([name])

        def run(each=each):
            for document in documents:
                doc = dict(document)
                if each.filter(doc) is True:
                    each.transform(doc)

        run()
        speeds[name] = round(megabytes / _best(run)[0], 2)
    return speeds


def agreement(documents: list[dict], lmforge_kept: set, datatrove_kept: list[bool]) -> dict:
    """Shares of documents on which both sides decide alike: the chain, and each filter alone."""
    from data_code.filters.pii import redact_pii

    ids = [doc["doc_id"] for doc in documents]
    shares = {"chain": _share([(i in lmforge_kept) == kept for i, kept in zip(ids, datatrove_kept, strict=True)])}
    steps = datatrove_steps()
    for name, each in zip(CHAIN[:-1], lmforge_filters(CHAIN[:-1]), strict=True):
        same = [(each.filter(dict(doc)) is True) == datatrove_decide(steps, doc["text"], [name]) for doc in documents]
        shares[name] = _share(same)
    shares["pii"] = _share(
        [
            bool(redact_pii(doc["text"], ("email", "ip_address"))[1])
            == (steps["pii"].format(doc["text"]) != doc["text"])
            for doc in documents
        ]
    )
    return shares


def _share(flags: list[bool]) -> float:
    return round(sum(flags) / max(len(flags), 1), 4)


def _best(function):
    """(best wall time of REPEATS runs, the last result)."""
    best, result = float("inf"), None
    for _ in range(REPEATS):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


DEBIAN_REFERENCE = pathlib.Path("/usr/share/debian-reference")
DEBIAN_LANGUAGES = {"en": "en", "de": "de", "fr": "fr", "es": "es", "ja": "ja", "zh-cn": "zh"}  # file -> lid.176


def per_language_speed(quick: bool) -> dict:
    """The whole chain behind language ID, each language judged by its rule set, on the Debian Reference's
    translations (when installed): MB/s and kept share per language. Segmentation (jieba, Sudachi) is the cost."""
    from data_code.extract.page import extract_text
    from data_code.filters import FilterConfig, build_filters
    from data_code.filters.base import FilterPipeline

    if not DEBIAN_REFERENCE.is_dir():
        return {}
    config = FilterConfig(languages=tuple(DEBIAN_LANGUAGES.values()), enabled=("language", *CHAIN))
    pipeline = FilterPipeline(build_filters(config, None))
    report = {}
    for name, language in DEBIAN_LANGUAGES.items():
        documents = []
        for path in sorted(DEBIAN_REFERENCE.glob(f"ch*.{name}.html"))[: 3 if quick else None]:
            text = extract_text(path.read_text(encoding="utf-8"), f"http://127.0.0.1/{path.name}", "resiliparse")[1]
            documents.append({"doc_id": path.name, "url": path.name, "domain": "127.0.0.1", "text": text[:100_000]})
        pipeline.run(documents[:1])  # load the segmenter outside the timing
        seconds, result = _best(lambda documents=documents: pipeline.run(documents))
        report[language] = {
            "documents": len(documents),
            "mb_per_s": _rate(documents, seconds)[1],
            "kept": len(result.kept),
        }
    return report


def _rate(documents: list[dict], seconds: float) -> tuple[float, float]:
    megabytes = sum(len(doc["text"].encode()) for doc in documents) / 1e6
    return round(len(documents) / seconds, 1), round(megabytes / seconds, 2)


def run_bench(quick: bool) -> dict:
    from bench.extract import _machine

    mode = "quick" if quick else "full"
    documents = load_documents(PAGES[mode])
    prefix = documents[: DATATROVE_PAGES[mode]]
    megabytes = sum(len(doc["text"].encode()) for doc in documents) / 1e6

    seconds, result = run_lmforge(documents, CHAIN)
    reference_seconds, reference = run_lmforge(documents, CHAIN, compiled=False)
    language_seconds, _ = run_lmforge(documents, ("language", *CHAIN))
    prefix_seconds, prefix_result = run_lmforge(prefix, CHAIN)
    datatrove_seconds, datatrove_kept = run_datatrove(prefix)

    docs_per_s, mb_per_s = _rate(documents, seconds)
    reference_docs_per_s, reference_mb_per_s = _rate(documents, reference_seconds)
    language_docs_per_s, language_mb_per_s = _rate(documents, language_seconds)
    prefix_docs_per_s, prefix_mb_per_s = _rate(prefix, prefix_seconds)
    datatrove_docs_per_s, datatrove_mb_per_s = _rate(prefix, datatrove_seconds)
    return {
        "documents": len(documents),
        "megabytes": round(megabytes, 2),
        "chain": list(CHAIN),
        "lmforge_docs_per_s_per_core": docs_per_s,
        "lmforge_mb_per_s_per_core": mb_per_s,
        "lmforge_kept": len(result.kept),
        "lmforge_with_language_id_mb_per_s_per_core": language_mb_per_s,
        "lmforge_with_language_id_docs_per_s_per_core": language_docs_per_s,
        "reference_docs_per_s_per_core": reference_docs_per_s,
        "reference_mb_per_s_per_core": reference_mb_per_s,
        "reference_identical": result.kept == reference.kept and result.rejections == reference.rejections,
        "speedup_vs_reference": round(reference_seconds / seconds, 1),
        "datatrove_documents": len(prefix),
        "datatrove_docs_per_s_per_core": datatrove_docs_per_s,
        "datatrove_mb_per_s_per_core": datatrove_mb_per_s,
        "lmforge_on_datatrove_documents_mb_per_s": prefix_mb_per_s,
        "lmforge_on_datatrove_documents_docs_per_s": prefix_docs_per_s,
        "speedup_vs_datatrove": round(datatrove_seconds / prefix_seconds, 1),
        "per_filter_mb_per_s": per_filter_speed(documents, megabytes),
        "agreement": agreement(prefix, {doc["doc_id"] for doc in prefix_result.kept}, datatrove_kept),
        "per_language": per_language_speed(quick),
        "machine": _machine(),
    }


def print_table(report: dict) -> None:
    print(f"{report['documents']} pages, {report['megabytes']} MB of extracted text, one core")
    print(f"{'chain':<38} {'docs/s':>9} {'MB/s':>7}")
    rows = [
        ("lmforge (compiled)", report["lmforge_docs_per_s_per_core"], report["lmforge_mb_per_s_per_core"]),
        (
            "lmforge + language ID",
            report["lmforge_with_language_id_docs_per_s_per_core"],
            report["lmforge_with_language_id_mb_per_s_per_core"],
        ),
        ("reference (plain Python)", report["reference_docs_per_s_per_core"], report["reference_mb_per_s_per_core"]),
        (
            f"lmforge, first {report['datatrove_documents']} pages",
            report["lmforge_on_datatrove_documents_docs_per_s"],
            report["lmforge_on_datatrove_documents_mb_per_s"],
        ),
        (
            f"datatrove, first {report['datatrove_documents']} pages",
            report["datatrove_docs_per_s_per_core"],
            report["datatrove_mb_per_s_per_core"],
        ),
    ]
    for name, docs, mb in rows:
        print(f"{name:<38} {docs:>9} {mb:>7}")
    print(
        f"speed-up: {report['speedup_vs_reference']}x the reference (identical: {report['reference_identical']}), "
        f"{report['speedup_vs_datatrove']}x datatrove"
    )
    print(
        "each lmforge filter alone, MB/s: " + ", ".join(f"{k} {v}" for k, v in report["per_filter_mb_per_s"].items())
    )
    print("agreement with datatrove: " + ", ".join(f"{k} {v:.1%}" for k, v in report["agreement"].items()))
    if report["per_language"]:
        cells = [f"{k} {v['mb_per_s']} ({v['kept']}/{v['documents']})" for k, v in report["per_language"].items()]
        print("language ID + each language's rules, Debian Reference, MB/s (kept/pages): " + ", ".join(cells))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{PAGES['quick']} pages, datatrove on 40: ~1 minute")
    parser.add_argument("--json", type=pathlib.Path, help="write the results here")
    args = parser.parse_args(argv)
    report = run_bench(args.quick)
    print_table(report)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
