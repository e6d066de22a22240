"""Chat and preference loaders: JSONL and Parquet, fsspec URLs, and errors that name the file and line/row."""

from __future__ import annotations

import json

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_code.crawl.config import SourcePolicy
from data_code.instruct import load_chat_dataset, load_preference_dataset

USER = {"role": "user", "content": "Hi"}
ASSISTANT = {"role": "assistant", "content": "Hello"}
GOOD_CHAT = {"messages": [USER, ASSISTANT]}
GOOD_PAIR = {"prompt": [USER], "chosen": [ASSISTANT], "rejected": [{"role": "assistant", "content": "Go away"}]}


def write_jsonl(path, lines: list) -> str:
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    return str(path)


def test_chat_jsonl_round_trip_keeps_extra_keys(tmp_path):
    uri = write_jsonl(tmp_path / "chat.jsonl", [{**GOOD_CHAT, "example_id": "a"}, "", GOOD_CHAT])
    rows = load_chat_dataset(uri)
    assert [row["messages"] for row in rows] == [[USER, ASSISTANT]] * 2
    assert rows[0]["example_id"] == "a"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"messages": [', "invalid JSON"),
        ({"messages": [{"role": "bot", "content": "x"}, ASSISTANT]}, "messages[0] has unknown role 'bot'"),
        ({"messages": [{"content": "x"}, ASSISTANT]}, "messages[0] is missing 'role'"),
        ({"messages": [USER, {"role": "assistant", "content": 3}]}, "messages[1] has non-string content (int)"),
        ({"messages": [USER, {"role": "assistant"}]}, "messages[1] is missing 'content'"),
        ({"conversation": [USER, ASSISTANT]}, "missing key 'messages'"),
        ({"messages": [USER]}, "must end with an assistant turn"),
        ({"messages": [{"role": "system", "content": "s"}, ASSISTANT]}, "has no user turn"),
        ({"messages": []}, "non-empty list of messages"),
    ],
)
def test_chat_schema_errors_name_file_and_line(tmp_path, line, message):
    uri = write_jsonl(tmp_path / "chat.jsonl", [GOOD_CHAT, "", line])
    with pytest.raises(ValueError, match=r"chat\.jsonl: line 3: ") as error:
        load_chat_dataset(uri)
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"prompt": [USER], "chosen": [ASSISTANT]}, "missing key(s) ['rejected']"),
        ({**GOOD_PAIR, "rejected": [ASSISTANT]}, "'chosen' and 'rejected' are identical"),
        ({**GOOD_PAIR, "chosen": "Hello", "rejected": "Hello"}, "'chosen' and 'rejected' are identical"),
        ({**GOOD_PAIR, "prompt": [USER, ASSISTANT]}, "'prompt' must end with a user turn"),
        ({**GOOD_PAIR, "chosen": [USER]}, "'chosen' must hold assistant messages only"),
        ({**GOOD_PAIR, "rejected": [{"role": "assistant", "content": None}]}, "rejected[0] is missing 'content'"),
        ({**GOOD_PAIR, "prompt": [{"role": "moderator", "content": "x"}]}, "unknown role 'moderator'"),
    ],
)
def test_preference_schema_errors_name_file_and_line(tmp_path, row, message):
    uri = write_jsonl(tmp_path / "pairs.jsonl", [GOOD_PAIR, row])
    with pytest.raises(ValueError, match=r"pairs\.jsonl: line 2: ") as error:
        load_preference_dataset(uri)
    assert message in str(error.value)


def test_preference_plain_strings_become_messages(tmp_path):
    uri = write_jsonl(tmp_path / "pairs.jsonl", [{"prompt": "Hi", "chosen": "Hello", "rejected": "Go away"}])
    (row,) = load_preference_dataset(uri)
    assert row["prompt"] == [USER]
    assert row["chosen"] == [ASSISTANT]
    assert row["rejected"] == [{"role": "assistant", "content": "Go away"}]


def test_parquet_errors_name_the_row(tmp_path):
    path = tmp_path / "chat.parquet"
    bad = {"messages": [USER, {"role": "critic", "content": "no"}]}
    pq.write_table(pa.Table.from_pylist([GOOD_CHAT, GOOD_CHAT, bad]), path)
    with pytest.raises(ValueError, match=r"chat\.parquet: row 3: messages\[1\] has unknown role 'critic'"):
        load_chat_dataset(str(path))


def test_parquet_preferences_through_an_fsspec_url():
    with fsspec.open("memory://instruct-test/pairs.parquet", "wb") as handle:
        rows = [{**GOOD_PAIR, "example_id": "a"}, {**GOOD_PAIR, "example_id": "b"}]
        pq.write_table(pa.Table.from_pylist(rows), handle)
    memory_allowed = SourcePolicy(schemes=("file", "memory"))  # not a default scheme: allowed explicitly
    rows = load_preference_dataset("memory://instruct-test/pairs.parquet", policy=memory_allowed)
    assert [row["chosen"] for row in rows] == [[ASSISTANT]] * 2
    assert rows[1]["example_id"] == "b"


def test_empty_missing_and_unknown_files(tmp_path):
    empty = write_jsonl(tmp_path / "empty.jsonl", ["", ""])
    with pytest.raises(ValueError, match=r"empty\.jsonl: the dataset is empty"):
        load_chat_dataset(empty)
    with pytest.raises(FileNotFoundError, match="nowhere.jsonl"):
        load_chat_dataset(str(tmp_path / "nowhere.jsonl"))
    (tmp_path / "data.csv").write_text("a,b\n")
    with pytest.raises(ValueError, match=r"data\.csv: unknown dataset format"):
        load_preference_dataset(str(tmp_path / "data.csv"))
