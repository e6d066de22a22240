"""The Spark engine of near-duplicate removal: the local engine's answer, computed with DataFrames on any master.

    find_clusters(documents_path, config, spark_session) -> pyarrow.Table   (core.DUPLICATE_CLUSTER_SCHEMA)

Same steps, same answer as local_engine.find_clusters (a test proves it, on local[2] and on a standalone cluster):
1. hash: per partition, mapInArrow calls local_engine.hash_batch (core's normalize/shingle/MinHash/band code);
2. exact groups: documents with the same normalized text; the best one by the representative order leads;
3. candidates: group leaders sharing an LSH bucket; a bucket of more than lsh.MAX_BUCKET_ALL_PAIRS leaders links
   each of them to its best leader only (a star), exactly as the local engine does;
4. verification: true Jaccard of the pair's shingle sets (recomputed from the texts in mapInArrow);
5. components: min-label propagation with pointer jumping, where a label is the representative order key itself,
   so a component's label *is* its representative;
6. output: each document that is not kept, with its similarity to the representative, in the corpus's row order.

The representative order (core.representative_order_key) is the struct ORDER_KEY below, which Spark compares field
by field: quality descending (null/NaN last), fetch time ascending (null last), doc_id ascending. doc_id is
assumed unique (it identifies a document in joins). Executors must import lmforge: on a cluster, install the
package in the Python that PYSPARK_PYTHON names on every worker.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa

from data_code.dedupe.config import DedupeConfig
from data_code.dedupe.core import DUPLICATE_CLUSTER_SCHEMA, EMPTY_BAND_KEY, pair_jaccards
from data_code.dedupe.local_engine import hash_batch, shingle_sets
from data_code.dedupe.lsh import MAX_BUCKET_ALL_PAIRS

MAX_COMPONENT_ROUNDS = 64  # pointer jumping needs ~log2(component diameter) rounds; 64 means something is wrong
HASHED_SCHEMA = (
    "doc_id string, quality_score double, fetch_time timestamp, file string, row long, "
    "exact_key binary, band_keys array<bigint>"
)


def _hash_partition(config: DedupeConfig):
    """mapInArrow function: the document columns (text dropped) plus exact key and band keys of each document."""

    def hash_batches(batches):
        for batch in batches:
            exact, keys = hash_batch(batch.column("text"), config)  # (B,) S16, (B, bands) uint64
            # Spark has no unsigned type: store the same 64 bits as int64 (equality is all LSH needs)
            offsets = pa.array(np.arange(0, keys.size + 1, config.bands, dtype=np.int32))
            band_keys = pa.ListArray.from_arrays(offsets, pa.array(keys.reshape(-1).view(np.int64)))
            columns = [batch.column(name) for name in ("doc_id", "quality_score", "fetch_time", "file", "row")]
            columns[1] = columns[1].cast(pa.float64())
            names = ["doc_id", "quality_score", "fetch_time", "file", "row", "exact_key", "band_keys"]
            digests = pa.py_buffer(np.ascontiguousarray(exact).tobytes())  # 16 bytes per document, back to back
            exact_keys = pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), len(exact), [None, digests])
            yield pa.RecordBatch.from_arrays([*columns, exact_keys.cast(pa.binary()), band_keys], names)

    return hash_batches


def _jaccard_partition(config: DedupeConfig):
    """mapInArrow function: (left, right, left_text, right_text) -> (left, right, similarity) by true Jaccard."""

    def jaccard_batches(batches):
        for batch in batches:
            texts = pa.concat_arrays([batch.column("left_text"), batch.column("right_text")])
            flat, offsets = shingle_sets(texts, config)  # sets 0..n-1 are the left texts, n..2n-1 the right ones
            pairs = np.arange(batch.num_rows)
            similarity = pair_jaccards(flat, offsets, pairs, pairs + batch.num_rows)
            names = ["left", "right", "similarity"]
            yield pa.RecordBatch.from_arrays(
                [batch.column("left"), batch.column("right"), pa.array(similarity)], names
            )

    return jaccard_batches


def read_documents(spark, documents_path: str):
    """The columns dedupe needs, plus each row's file and position in it (to return rows in corpus order)."""
    from pyspark.sql import functions as F

    documents = spark.read.parquet(documents_path).select(
        "doc_id",
        "text",
        "quality_score",
        F.col("fetch_time").cast("timestamp").alias("fetch_time"),
        F.col("_metadata.file_path").alias("file"),
        F.col("_metadata.row_index").alias("row"),
    )
    parallelism = spark.sparkContext.defaultParallelism
    if documents.rdd.getNumPartitions() < parallelism:  # one small file is one partition: spread it over the cores
        documents = documents.repartition(parallelism)
    return documents


def with_order_key(frame):
    """Adds ORDER_KEY: a struct whose minimum is the document to keep (core.representative_order_key in Spark)."""
    from pyspark.sql import functions as F

    quality = F.col("quality_score")
    no_quality = quality.isNull() | F.isnan(quality)
    return frame.withColumn(
        "order_key",
        F.struct(
            no_quality.alias("no_quality"),
            F.when(no_quality, F.lit(0.0)).otherwise(-quality).alias("negative_quality"),
            F.col("fetch_time").isNull().alias("no_fetch"),
            F.col("fetch_time").alias("fetch_time"),
            F.col("doc_id").alias("doc_id"),
        ),
    )


def exact_leaders(hashed):
    """Adds `leader_key`: the order key of the best document with the same normalized text (its group leader)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    return hashed.withColumn("leader_key", F.min("order_key").over(Window.partitionBy("exact_key")))


def candidate_pairs(leaders):
    """(left, right) doc_id pairs of leaders sharing a bucket in any band, left the better one, each pair once."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    bucket = Window.partitionBy("band", "key")
    members = (
        leaders.select("doc_id", "order_key", F.posexplode("band_keys").alias("band", "key"))
        .where(F.col("key") != EMPTY_BAND_KEY)
        .withColumn("size", F.count("*").over(bucket))
        .where(F.col("size") >= 2)
        .withColumn("best", F.min("order_key").over(bucket))
    )
    small = members.where(F.col("size") <= MAX_BUCKET_ALL_PAIRS).select("band", "key", "doc_id", "order_key")
    all_pairs = (
        small.alias("l")
        .join(small.alias("r"), ["band", "key"])
        .where(F.col("l.order_key") < F.col("r.order_key"))
        .select(F.col("l.doc_id").alias("left"), F.col("r.doc_id").alias("right"))
    )
    star_pairs = members.where((F.col("size") > MAX_BUCKET_ALL_PAIRS) & (F.col("order_key") != F.col("best")))
    star_pairs = star_pairs.select(F.col("best.doc_id").alias("left"), F.col("doc_id").alias("right"))
    return all_pairs.union(star_pairs).distinct()


def pair_similarities(pairs, texts, config: DedupeConfig):
    """(left, right, similarity): true Jaccard of each (left, right) doc_id pair, shingles recomputed from texts."""
    left_texts = texts.withColumnRenamed("doc_id", "left").withColumnRenamed("text", "left_text")
    right_texts = texts.withColumnRenamed("doc_id", "right").withColumnRenamed("text", "right_text")
    with_texts = pairs.join(left_texts, "left").join(right_texts, "right")
    schema = "left string, right string, similarity double"
    return with_texts.select("left", "right", "left_text", "right_text").mapInArrow(_jaccard_partition(config), schema)


def connected_components(edges, node_keys):
    """(doc_id, label) for every node of the undirected graph `edges` (left, right), where label is the smallest
    order_key (from `node_keys`: doc_id, order_key) in the node's component. Every round reads `edges`: pass it
    checkpointed.

    Each round a node takes the smallest label among its own and its neighbours', then its label's label (pointer
    jumping: chains converge in ~log2(length) rounds rather than length). Labels only decrease and never leave
    the component, so at the fixed point every node holds its component's minimum. Each round is checkpointed.
    """
    from pyspark.sql import functions as F

    both_ways = edges.select(F.col("left").alias("node"), F.col("right").alias("neighbour"))
    both_ways = both_ways.union(edges.select(F.col("right").alias("node"), F.col("left").alias("neighbour")))

    def smallest_offered(labels):  # (doc_id, offered): the smallest label among each node's neighbours
        offers = labels.select(F.col("doc_id").alias("neighbour"), F.col("label").alias("offered"))
        found = both_ways.join(offers, "neighbour").groupBy("node").agg(F.min("offered").alias("offered"))
        return found.withColumnRenamed("node", "doc_id")

    own_keys = node_keys.select("doc_id", F.col("order_key").alias("label"))
    labels = smallest_offered(own_keys).join(own_keys, "doc_id")
    labels = labels.select("doc_id", F.least("label", "offered").alias("label")).localCheckpoint()
    for _ in range(MAX_COMPONENT_ROUNDS):
        propagated = labels.join(smallest_offered(labels), "doc_id").select(
            "doc_id", F.col("label").alias("previous"), F.least("label", "offered").alias("label")
        )
        parents = propagated.select(F.col("doc_id").alias("parent"), F.col("label").alias("parent_label"))
        jumped = (
            propagated.join(parents, F.col("label.doc_id") == F.col("parent"))
            .select("doc_id", "previous", F.least("label", "parent_label").alias("label"))
            .localCheckpoint()
        )
        labels = jumped.select("doc_id", "label")
        if jumped.where(F.col("label") != F.col("previous")).limit(1).count() == 0:
            return labels
    raise RuntimeError(f"connected components did not converge in {MAX_COMPONENT_ROUNDS} rounds")


def find_clusters(documents_path: str, config: DedupeConfig, spark_session=None) -> pa.Table:
    """Every document that is not kept, with its cluster (DUPLICATE_CLUSTER_SCHEMA), in corpus row order.

    The answer equals local_engine.find_clusters(documents_path, config); the schema metadata key
    b"lmforge.dedupe.stats" holds JSON counters (candidate_pairs, verified_pairs) like the local engine's.
    Without `spark_session`, one is built (or reused) on config.spark_master and left running for the caller.
    """
    from pyspark.sql import functions as F

    if spark_session is None:
        from data_code.spark import build_spark_session

        spark_session = build_spark_session(config.spark_master)
    documents = read_documents(spark_session, documents_path)
    texts = spark_session.read.parquet(documents_path).select("doc_id", "text")  # read again where needed, not held
    hashed = with_order_key(documents.mapInArrow(_hash_partition(config), HASHED_SCHEMA))
    hashed = exact_leaders(hashed).localCheckpoint()  # hash once: everything below reuses it
    leaders = hashed.where(F.col("order_key") == F.col("leader_key"))

    pairs = candidate_pairs(leaders).localCheckpoint()
    if config.verify_candidates:
        edges = pair_similarities(pairs, texts, config).where(F.col("similarity") >= config.threshold)
    else:
        edges = pairs
    edges = edges.select("left", "right").localCheckpoint()
    stats = {"candidate_pairs": pairs.count(), "verified_pairs": edges.count()}

    labels = connected_components(edges, leaders.select("doc_id", "order_key"))
    # A document's representative: its group leader's component label, or the leader itself outside any edge.
    leader_labels = labels.select(F.col("doc_id").alias("leader_id"), F.col("label").alias("component_key"))
    placed = (
        hashed.withColumn("leader_id", F.col("leader_key.doc_id"))
        .join(leader_labels, "leader_id", "left")
        .withColumn("representative_key", F.coalesce("component_key", "leader_key"))
        .withColumn("representative", F.col("representative_key.doc_id"))
        .where(F.col("doc_id") != F.col("representative"))
        .withColumn("kind", F.when(F.col("leader_key") == F.col("representative_key"), "exact").otherwise("near"))
        .select("doc_id", "representative", "kind", "file", "row")
        .localCheckpoint()
    )
    # An exact duplicate's shingles are its leader's, so its own text gives the same Jaccard to the representative.
    near = placed.where(F.col("kind") == "near").select(
        F.col("doc_id").alias("left"), F.col("representative").alias("right")
    )
    near_similarity = pair_similarities(near, texts, config).select(F.col("left").alias("doc_id"), F.col("similarity"))
    removed = (
        placed.join(near_similarity, "doc_id", "left")
        .withColumn("similarity", F.coalesce("similarity", F.lit(1.0)))
        .orderBy("file", "row")
        .select(
            "doc_id",
            F.col("representative").alias("cluster_id"),
            "representative",
            "similarity",
            "kind",
        )
    )
    table = removed.toArrow().cast(DUPLICATE_CLUSTER_SCHEMA)
    return table.replace_schema_metadata({"lmforge.dedupe.stats": json.dumps(stats)})
