"""lm-evaluation-harness tasks derived from held-out documents, and running them on a local HF model.

    ids = validation_doc_ids("lake/token_shards/<v>")                      # the validation split's documents
    stats = write_eval_tasks("lake/filtered_documents/<v>/documents.parquet", out_dir, doc_ids=ids)
    scores = run_lm_eval("lake/base_model/<v>/model", out_dir, limit=50)  # {task: {metric: value}}

The task directory holds, per task, <task>.jsonl (the examples) and <task>.yaml (lm-eval 0.4.13 config with
`dataset_path: json` and `dataset_kwargs: data_files:` naming the JSONL relative to the directory, so the
directory can be moved; with the lm_eval CLI run it from inside the directory: `lm_eval --include_path .`):

    <prefix>_cloze   LAMBADA-style: context = a passage up to the end of its first full sentence minus the final
                     word, target = that word (loglikelihood; acc = the greedy continuation is the word, perplexity)
    <prefix>_repeat  "Repeat exactly: <phrase>" -> the phrase (generate_until, exact_match)
    <prefix>_title   "What is the title of: <first sentence>" -> the page title (generate_until, exact_match)
"""

from __future__ import annotations

import json
import numbers
import re
import tempfile
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import yaml

from data_code.corpus import is_corpus, iter_documents
from data_code.shards.shard_set import is_shard_set, set_description

CLOZE, REPEAT, TITLE = "cloze", "repeat", "title"
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")  # a cloze target: a plain word, no digits or symbols
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*$")
_TRAILING = ".!?\"')];:,"  # stripped off the word that ends a sentence
_UNTIL = ["\n", "<|im_end|>", "<|endoftext|>"]  # generation stops at a line end or the end of a turn
_STRIP = ["^\\s+", "\\s+$"]  # exact_match ignores leading and trailing whitespace (the space after "Answer:")


@dataclass(frozen=True)
class TaskSetConfig:
    """How evaluation tasks are derived from documents. Invalid values raise ValueError naming the field."""

    prefix: str = "lmforge"  # task names are <prefix>_cloze, <prefix>_repeat, <prefix>_title
    max_examples: int = 500  # per task, the first documents that yield one
    min_context_words: int = 12  # a cloze context has at least this many words
    max_context_words: int = 120  # and at most this many (the last ones before the target): fits small contexts
    repeat_words: int = 6  # words in the phrase to repeat
    max_prompt_words: int = 40  # the title task shows at most this many words of the first sentence
    max_new_tokens: int = 32  # generation budget of the generate_until tasks

    def __post_init__(self):
        if not re.fullmatch(r"[a-z][a-z0-9_]*", self.prefix):
            raise ValueError(f"prefix must be lower-case letters, digits and _, got {self.prefix!r}")
        for name in (
            "max_examples",
            "min_context_words",
            "max_context_words",
            "repeat_words",
            "max_prompt_words",
            "max_new_tokens",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if self.max_context_words < self.min_context_words:
            raise ValueError(
                f"max_context_words ({self.max_context_words}) must be >= min_context_words ({self.min_context_words})"
            )


def validation_doc_ids(shards_dir: str | Path, split: str = "validation") -> set[str]:
    """doc_ids of every document with tokens in `split` of a token-shard directory (from its span sidecars)."""
    index_path = Path(shards_dir) / "index.json"
    if not index_path.is_file():
        raise FileNotFoundError(f"{index_path} not found: {shards_dir} is not a token-shard directory")
    entries = json.loads(index_path.read_text(encoding="utf-8"))["splits"].get(split)
    if entries is None:
        raise ValueError(f"split {split!r} not in token shards {shards_dir}")
    tables = [pq.read_table(Path(shards_dir) / entry["spans"], columns=["doc_id"]) for entry in entries]
    excluded = set(set_description(shards_dir)["excluded_documents"]) if is_shard_set(shards_dir) else set()
    return {doc_id for table in tables for doc_id in table.column("doc_id").to_pylist()} - excluded


def write_eval_tasks(
    documents: str | Path | Iterable[dict],
    out_dir: str | Path,
    config: TaskSetConfig | None = None,
    *,
    doc_ids: Collection[str] | None = None,
) -> dict:
    """Derive the three tasks from `documents` (a Document Parquet path or dicts with doc_id, text, title), only
    those in `doc_ids` when given, and write <task>.jsonl + <task>.yaml into out_dir.

    Returns {"tasks": [names], "examples": {name: count}, "documents": documents read, "files": [names]}.
    Raises ValueError when no document yields a cloze example (nothing to evaluate).
    """
    config = config or TaskSetConfig()
    wanted = set(doc_ids) if doc_ids is not None else None
    examples: dict[str, list[dict]] = {CLOZE: [], REPEAT: [], TITLE: []}
    read = 0
    for document in _documents(documents):
        if wanted is not None and document["doc_id"] not in wanted:
            continue
        read += 1
        for kind, example in _examples(document, config).items():
            if example is not None and len(examples[kind]) < config.max_examples:
                examples[kind].append({"doc_id": document["doc_id"], **example})
    if not examples[CLOZE]:
        raise ValueError(
            f"none of the {read} documents selected from {_name(documents)} yields a cloze example "
            f"(a sentence of more than {config.min_context_words} words ending in a plain word)"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names, files = [], []
    for kind, rows in examples.items():
        if not rows:
            continue  # e.g. no document has a title
        name = f"{config.prefix}_{kind}"
        files += _write_task(out_dir, name, _task_yaml(kind, name, config), rows)
        names.append(name)
    return {
        "tasks": names,
        "examples": {f"{config.prefix}_{k}": len(v) for k, v in examples.items() if v},
        "documents": read,
        "files": files,
    }


def cloze_example(text: str, config: TaskSetConfig) -> dict | None:
    """{"context", "target"} from the first sentence end with enough words before it, or None."""
    words = text.split()
    for position in range(config.min_context_words, len(words)):
        word = words[position]
        target = word.rstrip(_TRAILING)
        if _SENTENCE_END.search(word) and _WORD.fullmatch(target):
            context = words[max(0, position - config.max_context_words) : position]
            return {"context": " ".join(context), "target": target}
    return None


def repeat_example(text: str, config: TaskSetConfig) -> dict | None:
    """{"phrase"}: the document's first repeat_words words, or None for a shorter document."""
    words = text.split()
    return {"phrase": " ".join(words[: config.repeat_words])} if len(words) >= config.repeat_words else None


def title_example(text: str, title: str | None, config: TaskSetConfig) -> dict | None:
    """{"sentence", "title"}: the first sentence (at most max_prompt_words words) and the title, or None."""
    title = " ".join((title or "").split())
    words = text.split()
    if not title or not words:
        return None
    end = next((i + 1 for i, word in enumerate(words) if _SENTENCE_END.search(word)), len(words))
    return {"sentence": " ".join(words[: min(end, config.max_prompt_words)]), "title": title}


def run_lm_eval(
    model_dir: str | Path,
    task_dir: str | Path,
    limit: int | None = None,
    *,
    batch_size: int = 4,
    device: str | None = None,
    apply_chat_template: bool = False,
) -> dict:
    """Every task of task_dir run by lm_eval.simple_evaluate on the HF model in model_dir (local, offline).

    limit: examples per task (None: all). apply_chat_template: render prompts as a user turn (for chat models).
    Returns {task: {metric: value}} with lm-eval's metric names ("acc", "perplexity", "exact_match").
    """
    import torch
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    task_dir = Path(task_dir)
    paths = sorted(task_dir.glob("*.yaml"))
    if not paths:
        raise FileNotFoundError(f"no task .yaml files in {task_dir}")
    if not (Path(model_dir) / "config.json").is_file():
        raise FileNotFoundError(f"no config.json in model directory {model_dir}: not an HF-format model")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = HFLM(pretrained=str(model_dir), device=device, batch_size=batch_size, dtype="float32")
    # Only this directory is indexed: lm-eval's thousands of built-in tasks are neither needed nor scanned.
    manager = TaskManager(include_path=str(task_dir), include_defaults=False)
    with tempfile.TemporaryDirectory(prefix="lmforge-lm-eval-") as cache_dir:  # datasets' Arrow cache, thrown away
        tasks = [_resolved_config(path, cache_dir) for path in paths]
        results = simple_evaluate(
            model=model,
            tasks=tasks,
            task_manager=manager,
            limit=limit,
            bootstrap_iters=0,
            log_samples=False,
            apply_chat_template=apply_chat_template,
        )
    return {task: _metrics(values) for task, values in results["results"].items()}


def _documents(documents) -> Iterable[dict]:
    if not isinstance(documents, (str, Path)):
        yield from documents
        return
    path = Path(documents)
    if is_corpus(path):  # a corpus directory: its days' documents minus its exclusions
        for batch in iter_documents(path, ["doc_id", "text", "title"]):
            yield from batch.to_pylist()
        return
    if not path.is_file():
        raise FileNotFoundError(f"documents file {path} not found")
    table = pq.ParquetFile(path)
    missing = {"doc_id", "text", "title"} - set(table.schema_arrow.names)
    if missing:
        raise ValueError(f"documents file {path} lacks columns {sorted(missing)}")
    for batch in table.iter_batches(columns=["doc_id", "text", "title"]):
        yield from batch.to_pylist()


def _examples(document: dict, config: TaskSetConfig) -> dict[str, dict | None]:
    text = document.get("text") or ""
    return {
        CLOZE: cloze_example(text, config),
        REPEAT: repeat_example(text, config),
        TITLE: title_example(text, document.get("title"), config),
    }


def _task_yaml(kind: str, name: str, config: TaskSetConfig) -> dict:
    """The lm-eval task config of one task (its data file named relative to the task directory)."""
    task = {
        "task": name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": f"{name}.jsonl"}},
        "test_split": "test",
    }
    if kind == CLOZE:
        # lm-eval 0.4.13 scores a loglikelihood target as written (no delimiter added): the space is in the target.
        task |= {"output_type": "loglikelihood", "doc_to_text": "{{context}}", "doc_to_target": " {{target}}"}
        task["metric_list"] = [
            {"metric": "acc", "aggregation": "mean", "higher_is_better": True},
            {"metric": "perplexity", "aggregation": "perplexity", "higher_is_better": False},
        ]
    else:
        question = "Repeat exactly: {{phrase}}" if kind == REPEAT else "What is the title of: {{sentence}}"
        task |= {"output_type": "generate_until", "doc_to_text": question + "\nAnswer:"}
        task["doc_to_target"] = "{{phrase}}" if kind == REPEAT else "{{title}}"
        task["generation_kwargs"] = {"until": _UNTIL, "do_sample": False, "max_gen_toks": config.max_new_tokens}
        task["metric_list"] = [
            {"metric": "exact_match", "aggregation": "mean", "higher_is_better": True, "regexes_to_ignore": _STRIP}
        ]
    return task | {"metadata": {"version": 1.0}}


def _write_task(out_dir: Path, name: str, task: dict, rows: list[dict]) -> list[str]:
    with open(out_dir / f"{name}.jsonl", "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    (out_dir / f"{name}.yaml").write_text(yaml.safe_dump(task, sort_keys=False, allow_unicode=True), "utf-8")
    return [f"{name}.jsonl", f"{name}.yaml"]


def _resolved_config(path: Path, cache_dir: str) -> dict:
    """A task YAML as a dict, its data files made absolute (datasets reads relative ones from the cwd)."""
    task = yaml.safe_load(path.read_text(encoding="utf-8"))
    kwargs = dict(task.get("dataset_kwargs") or {})
    files = kwargs.get("data_files") or {}
    kwargs["data_files"] = {split: str((path.parent / name).resolve()) for split, name in files.items()}
    return {**task, "dataset_kwargs": {**kwargs, "cache_dir": cache_dir}}


def _metrics(values: dict) -> dict:
    """lm-eval's {"acc,none": 0.3, "acc_stderr,none": "N/A", "alias": ...} as {"acc": 0.3}."""
    return {
        key.split(",")[0]: float(value)
        for key, value in values.items()
        if "," in key and "_stderr" not in key and isinstance(value, numbers.Real)
    }


def _name(documents) -> str:
    return str(documents) if isinstance(documents, (str, Path)) else "the given documents"
