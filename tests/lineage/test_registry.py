"""Model Registry conventions on a real MLflow SQLite store: register, promote, roll back, unknown aliases."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from lineage.registry import CHALLENGER, Registry


@pytest.fixture()
def registry(tmp_path):
    return Registry(MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}"))


def _register(registry, version: str) -> str:
    return registry.register(
        asset="serving_model", version=version, uri=f"/lake/serving_model/{version}", run_id=None, tags={}
    )


def test_register_sets_challenger_and_is_idempotent(registry):
    first = _register(registry, "aaaa")
    assert registry.aliases() == {CHALLENGER: first}
    assert _register(registry, "aaaa") == first  # the same artifact is not registered twice
    second = _register(registry, "bbbb")
    assert second != first and registry.aliases()[CHALLENGER] == second
    found = registry.find("serving_model", "aaaa")
    assert found.version == first and found.uri == "/lake/serving_model/aaaa"


def test_promote_keeps_previous_champion_and_rollback_returns_to_it(registry):
    first, second = _register(registry, "aaaa"), _register(registry, "bbbb")
    assert registry.promote(first, "first champion") is None
    assert registry.promote(second, "gate passed") == first
    assert registry.champion().version == second
    moved_from, moved_to = registry.rollback("regression reported by users")
    assert (moved_from, moved_to) == (second, first)
    assert registry.champion().version == first
    assert registry.get(second).tags["lmforge.rollback_reason"] == "regression reported by users"
    assert "rollback from v" in registry.get(first).tags["lmforge.promotion_reason"]


def test_unknown_alias_lists_existing_ones(registry):
    version = _register(registry, "aaaa")
    registry.promote(version, "first")
    with pytest.raises(ValueError, match=rf"no alias 'staging'.*champion -> v{version}"):
        registry.by_alias("staging")


def test_rollback_without_history_or_reason_is_refused(registry):
    with pytest.raises(ValueError, match="no champion"):
        registry.rollback("why not")
    registry.promote(_register(registry, "aaaa"), "first")
    with pytest.raises(ValueError, match="no earlier champion"):
        registry.rollback("why not")
    with pytest.raises(ValueError, match="needs a reason"):
        registry.rollback("  ")


def test_gate_decision_is_recorded_on_the_version(registry):
    version = _register(registry, "aaaa")
    registry.record_gate(version, False, "perplexity +5% (allowed +2%)")
    assert registry.get(version).gate == "failed"
    assert registry.get(version).tags["lmforge.gate_reason"].startswith("perplexity")
