"""Calibration report: how well the LSH bands x rows find pairs at the Jaccard threshold, on the actual corpus.

A sample of documents (half drawn from the clusters found, so that near-duplicate pairs are present, half at random;
exact duplicates left out) is scored exhaustively: true Jaccard for every pair in the sample, and whether LSH made
the pair a candidate. Estimated precision = candidates with J >= threshold / candidates; recall = pairs with
J >= threshold that are candidates / pairs with J >= threshold. The theoretical S-curve
P(candidate | J) = 1 - (1 - J^rows)^bands is plotted with the empirical candidate rate per J bin.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from data_code.dedupe.config import DedupeConfig
from data_code.dedupe.local_engine import hash_batch, shingle_sets
from data_code.dedupe.lsh import candidate_pairs, overlapping_pairs

BIN_WIDTH = 0.05  # Jaccard bins of the empirical S-curve


def s_curve(similarity: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """P(two documents become LSH candidates | their Jaccard similarity) = 1 - (1 - J^rows)^bands."""
    return 1.0 - (1.0 - np.asarray(similarity, np.float64) ** rows) ** bands


def _sample_ids(path: str, clusters: pa.Table, config: DedupeConfig) -> pa.Array:
    """doc_ids of the sample: members of randomly chosen near-duplicate clusters, then random documents."""
    rng = np.random.default_rng(config.seed)
    budget = config.calibration_sample
    near = clusters.filter(pc.equal(clusters.column("kind"), "near"))
    exact_ids = clusters.filter(pc.equal(clusters.column("kind"), "exact")).column("doc_id")
    chosen: list[str] = []
    cluster_ids = pc.unique(near.column("cluster_id")).to_pylist()
    for index in rng.permutation(len(cluster_ids)):
        if len(chosen) >= budget // 2:
            break
        members = near.filter(pc.equal(near.column("cluster_id"), cluster_ids[index])).column("doc_id").to_pylist()
        chosen += [cluster_ids[index], *members]
    all_ids = pq.read_table(path, columns=["doc_id"]).column("doc_id")
    others = pc.filter(
        all_ids, pc.invert(pc.is_in(all_ids, pa.concat_arrays([pa.array(chosen, pa.string()), *exact_ids.chunks])))
    )
    extra = rng.permutation(len(others))[: max(budget - len(chosen), 0)]
    return pa.concat_arrays(
        [pa.array(chosen[:budget], pa.string()), others.take(pa.array(np.sort(extra))).combine_chunks()]
    )


def _read_sample(path: str, ids: pa.Array, config: DedupeConfig) -> list[str]:
    texts = []
    for batch in pq.ParquetFile(path).iter_batches(batch_size=config.batch_size, columns=["doc_id", "text"]):
        texts += batch.column("text").filter(pc.is_in(batch.column("doc_id"), ids)).to_pylist()
    return texts


def _empirical_curve(similarity: np.ndarray, is_candidate: np.ndarray, disjoint_pairs: int) -> list[dict]:
    """Candidate rate per Jaccard bin; `disjoint_pairs` more pairs (J = 0, not candidates) join the first bin."""
    bins = np.minimum((similarity / BIN_WIDTH).astype(int), int(1 / BIN_WIDTH) - 1)
    curve = []
    for b in range(int(1 / BIN_WIDTH)):
        inside = bins == b
        pairs = int(inside.sum()) + (disjoint_pairs if b == 0 else 0)
        if pairs:
            rate = float(is_candidate[inside].sum() / pairs)
            curve.append({"jaccard_low": round(b * BIN_WIDTH, 4), "pairs": pairs, "candidate_rate": rate})
    return curve


def _scored_pairs(texts: list[str], config: DedupeConfig) -> tuple[np.ndarray, np.ndarray, int]:
    """(true Jaccard, is LSH candidate) of every sample pair that shares a shingle or is a candidate, and the
    number of the other pairs (disjoint shingle sets, not candidates: J = 0)."""
    size = len(texts)
    _, keys = hash_batch(texts, config)
    flat, offsets = shingle_sets(texts, config)
    left, right, common = overlapping_pairs(flat, offsets)
    set_sizes = np.diff(offsets)
    overlap_similarity = common / (set_sizes[left] + set_sizes[right] - common)
    cand_left, cand_right = candidate_pairs(keys)
    overlap_code, cand_code = left * size + right, cand_left * size + cand_right
    disjoint_candidates = cand_code[~np.isin(cand_code, overlap_code)]
    similarity = np.concatenate([overlap_similarity, np.zeros(len(disjoint_candidates))])
    is_candidate = np.concatenate([np.isin(overlap_code, cand_code), np.ones(len(disjoint_candidates), bool)])
    return similarity, is_candidate, size * (size - 1) // 2 - len(similarity)


def calibrate(path: str, clusters: pa.Table, config: DedupeConfig) -> dict:
    """Precision, recall and the S-curve of config.bands x config.rows on a sample of the corpus at `path`."""
    texts = _read_sample(path, _sample_ids(path, clusters, config), config) if config.calibration_sample else []
    report = {"bands": config.bands, "rows": config.rows, "threshold": config.threshold, "ngram": config.ngram}
    report["sample_size"] = len(texts)
    if len(texts) < 2:
        return report | {"precision": None, "recall": None, "pairs_evaluated": 0, "empirical_curve": []}
    similarity, is_candidate, disjoint_pairs = _scored_pairs(texts, config)
    similar = similarity >= config.threshold
    hits = int((similar & is_candidate).sum())
    return report | {
        "pairs_evaluated": len(similarity) + disjoint_pairs,  # every pair of the sample
        "pairs_above_threshold": int(similar.sum()),
        "candidate_pairs": int(is_candidate.sum()),
        "precision": hits / int(is_candidate.sum()) if is_candidate.any() else None,  # of LSH, before verification
        "recall": hits / int(similar.sum()) if similar.any() else None,
        "precision_after_verification": 1.0 if config.verify_candidates else None,
        "empirical_curve": _empirical_curve(similarity, is_candidate, disjoint_pairs),
    }


def write_report(report: dict, out_dir: pathlib.Path) -> None:
    """calibration.json and s_curve.png (theoretical curve, threshold, empirical candidate rate) into out_dir."""
    import matplotlib

    matplotlib.use("Agg")  # no display: the plot only goes to a file
    import matplotlib.pyplot as plt

    (out_dir / "calibration.json").write_text(json.dumps(report, indent=2))
    grid = np.linspace(0, 1, 201)
    figure, axes = plt.subplots(figsize=(6, 4))
    axes.plot(
        grid, s_curve(grid, report["bands"], report["rows"]), label=f"1 - (1 - J^{report['rows']})^{report['bands']}"
    )
    axes.axvline(report["threshold"], color="red", linestyle="--", label=f"threshold {report['threshold']}")
    empirical = [p for p in report.get("empirical_curve", []) if p["pairs"]]
    if empirical:
        axes.scatter(
            [p["jaccard_low"] + BIN_WIDTH / 2 for p in empirical],
            [p["candidate_rate"] for p in empirical],
            color="black",
            s=12,
            label="observed candidate rate (sample)",
        )
    axes.set(
        xlabel=f"Jaccard similarity of {report['ngram']}-gram shingle sets", ylabel="P(candidate)", title="LSH S-curve"
    )
    axes.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    figure.savefig(out_dir / "s_curve.png", dpi=100)
    plt.close(figure)
