from dataclasses import dataclass, field

import pytest

from lineage.identity import compute_version, versioned_fields


@dataclass(frozen=True)
class StageConfig:
    threshold: float = 0.5
    languages: tuple[str, ...] = ("en",)
    workers: int = field(default=2, metadata={"versioned": False})


def version_of(config, upstream=None, code_version="1"):
    return compute_version("stage", code_version, versioned_fields(config), upstream or {"up": "abc"})


def test_same_inputs_same_version():
    assert version_of(StageConfig()) == version_of(StageConfig())
    assert len(version_of(StageConfig())) == 16


@pytest.mark.parametrize(
    ("name", "value", "changes"),
    [("threshold", 0.7, True), ("languages", ("en", "de"), True), ("workers", 8, False)],
)
def test_each_field_changes_version_only_if_it_changes_output(name, value, changes):
    changed = StageConfig(**{name: value})
    assert (version_of(changed) != version_of(StageConfig())) is changes


def test_upstream_and_code_version_change_version():
    base = version_of(StageConfig())
    assert version_of(StageConfig(), upstream={"up": "abd"}) != base
    assert version_of(StageConfig(), code_version="2") != base
    assert compute_version("other", "1", versioned_fields(StageConfig()), {"up": "abc"}) != base


def test_tuple_and_list_config_are_the_same_identity():
    assert compute_version("a", "1", {"x": (1, 2)}) == compute_version("a", "1", {"x": [1, 2]})
    assert compute_version("a", "1", {"x": 1, "y": 2}) == compute_version("a", "1", {"y": 2, "x": 1})
