"""Instruction and preference `files` are read like WARC sources: the crawler's address guard for http(s)
(redirects included), an allow-list of fsspec schemes, and errors that quote row content only in short."""

from __future__ import annotations

import hashlib
import json

import pytest

from data_code.crawl.config import SourcePolicy
from data_code.instruct import load_chat_dataset, load_preference_dataset
from data_code.instruct.load import dataset_sha256
from tests.crawl.recording import RecordingServer

CHAT = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
PAIR = {"prompt": "Hi", "chosen": "Hello", "rejected": "Go away"}
LOOPBACK_ALLOWED = SourcePolicy(allow_private_hosts=("127.0.0.1",))


@pytest.fixture
def recording():
    instance = RecordingServer()
    yield instance
    instance.close()


def _jsonl(*rows) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


@pytest.mark.parametrize(
    ("load", "row"),
    [(load_chat_dataset, CHAT), (load_preference_dataset, PAIR), (dataset_sha256, CHAT)],
)
def test_loopback_files_are_refused_before_any_connection(recording, load, row):
    recording.serve("/data.jsonl", _jsonl(row))
    url = recording.url("/data.jsonl")
    with pytest.raises(ValueError, match="refused before connecting") as error:
        load(url)
    assert str(error.value).startswith(f"files: {url} ") and "address policy" in str(error.value)
    assert recording.connections == []


def test_allow_listed_files_are_fetched(recording):
    recording.serve("/chat.jsonl", _jsonl(CHAT, CHAT))
    recording.serve("/pairs.jsonl?v=2", _jsonl(PAIR))
    assert len(load_chat_dataset(recording.url("/chat.jsonl"), policy=LOOPBACK_ALLOWED)) == 2
    (pair,) = load_preference_dataset(recording.url("/pairs.jsonl?v=2"), policy=LOOPBACK_ALLOWED)
    assert pair["chosen"] == [{"role": "assistant", "content": "Hello"}]
    digest = dataset_sha256(recording.url("/chat.jsonl"), policy=LOOPBACK_ALLOWED)
    assert digest == hashlib.sha256(_jsonl(CHAT, CHAT)).hexdigest()
    assert recording.requests == ["/chat.jsonl", "/pairs.jsonl?v=2", "/chat.jsonl"]


def test_a_redirect_to_an_address_not_allowed_is_refused_before_connecting(recording):
    elsewhere = RecordingServer("127.0.0.2")
    try:
        elsewhere.serve("/chat.jsonl", _jsonl(CHAT))
        recording.redirect("/chat.jsonl", elsewhere.url("/chat.jsonl"))
        with pytest.raises(ValueError, match="refused before connecting") as error:
            load_chat_dataset(recording.url("/chat.jsonl"), policy=LOOPBACK_ALLOWED)
        assert f"redirected to {elsewhere.url('/chat.jsonl')}" in str(error.value)
        assert elsewhere.connections == [] and recording.requests == ["/chat.jsonl"]
    finally:
        elsewhere.close()


def test_a_missing_http_file_is_file_not_found(recording):
    with pytest.raises(FileNotFoundError, match="nothing.jsonl"):
        load_chat_dataset(recording.url("/nothing.jsonl"), policy=LOOPBACK_ALLOWED)


@pytest.mark.parametrize("uri", ["ftp://files.example/chat.jsonl", "memory://data/chat.jsonl", "sftp://h/chat.jsonl"])
def test_other_schemes_are_refused_naming_the_url(uri):
    for load in (load_chat_dataset, load_preference_dataset, dataset_sha256):
        with pytest.raises(ValueError, match="allowed schemes are http, https, file, s3, gs") as error:
            load(uri)
        assert str(error.value).startswith("files: ") and uri in str(error.value)


def test_schema_errors_quote_the_rows_values_short_and_escaped(tmp_path):
    role = "\x1b[31m" + "r" * 500
    path = tmp_path / "chat.jsonl"
    path.write_bytes(_jsonl({"messages": [{"role": role, "content": "x"}, CHAT["messages"][1]]}))
    with pytest.raises(ValueError, match=r"chat\.jsonl: line 1: ") as error:
        load_chat_dataset(str(path))
    message = str(error.value)
    assert "unknown role" in message and message.isprintable() and "\\x1b" in message
    assert "r" * 101 not in message and len(message) < len(str(path)) + 160
