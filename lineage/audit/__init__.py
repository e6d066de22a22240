"""Audits for compliance: what is in a model, can it be reproduced, which models saw a URL.

resolve_target(target, store, client=None) -> (asset, version, registry info | None)
build_audit(store, asset, version, registry=None, client=None) -> audit dict (top-level `verified`)
verify_artifact(store, asset, version) -> [finding]; verify_chain(store, chain) -> {verified, mismatches, ...}
write_report(audit, out_dir) -> {file name: path}: report.json/.md/.html, mlbom.cdx.json, model_card.md,
                                datasheet.md
model_card_markdown(audit) -> str; datasheet_markdown(audit) -> str; build_mlbom(audit) -> str
build_url_index(store) -> UrlIndex; which_models(store, url=None, domain=None, client=None) -> [model]
"""

from lineage.audit.bom import build_mlbom
from lineage.audit.build import build_audit
from lineage.audit.cards import datasheet_markdown, model_card_markdown
from lineage.audit.chain import walk_chain
from lineage.audit.index import UrlIndex, build_url_index, which_models
from lineage.audit.report import REPORT_FILES, write_report
from lineage.audit.target import resolve_target
from lineage.audit.verify import verify_artifact, verify_chain

__all__ = [
    "REPORT_FILES",
    "UrlIndex",
    "build_audit",
    "build_mlbom",
    "build_url_index",
    "datasheet_markdown",
    "model_card_markdown",
    "resolve_target",
    "verify_artifact",
    "verify_chain",
    "walk_chain",
    "which_models",
    "write_report",
]
