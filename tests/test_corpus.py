import pyarrow as pa
import pyarrow.parquet as pq

from data_code.corpus import concatenate_documents
from data_code.document import DOCUMENT_SCHEMA


def write_documents(path, rows):
    defaults = {name: None for name in DOCUMENT_SCHEMA.names}
    table = pa.Table.from_pylist([{**defaults, **row} for row in rows], schema=DOCUMENT_SCHEMA)
    pq.write_table(table, path)
    return str(path)


def test_concatenation_keeps_first_copy_of_each_document(tmp_path):
    day1 = write_documents(
        tmp_path / "d1.parquet",
        [
            {"doc_id": "a", "url": "http://x.org/a", "domain": "x.org", "text": "one two three"},
            {"doc_id": "b", "url": "http://y.org/b", "domain": "y.org", "text": "four five"},
        ],
    )
    day2 = write_documents(
        tmp_path / "d2.parquet",
        [
            {"doc_id": "b", "url": "http://y.org/b", "domain": "y.org", "text": "four five"},
            {"doc_id": "c", "url": "http://x.org/c", "domain": "x.org", "text": "six"},
        ],
    )
    stats = concatenate_documents([day1, day2], tmp_path / "corpus.parquet")
    assert pq.read_table(tmp_path / "corpus.parquet").column("doc_id").to_pylist() == ["a", "b", "c"]
    assert stats["documents"] == 3 and stats["duplicates_dropped"] == 1 and stats["tokens"] == 6
    assert stats["domains"] == {"x.org": 2, "y.org": 1}
    assert stats["sources"] == {day1: 2, day2: 1}


def test_empty_inputs_give_a_valid_empty_corpus(tmp_path):
    stats = concatenate_documents([], tmp_path / "corpus.parquet")
    assert stats["documents"] == 0
    assert pq.read_table(tmp_path / "corpus.parquet").schema.equals(DOCUMENT_SCHEMA)
