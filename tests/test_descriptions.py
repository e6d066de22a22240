"""Every asset and every check says what it is in its own words (the UI shows these one-liners)."""

from __future__ import annotations

from pipelines.definitions import defs


def test_every_asset_has_its_own_description():
    graph = defs.resolve_asset_graph()
    descriptions = {key.to_user_string(): graph.get(key).description for key in graph.get_all_asset_keys()}
    assert all(text and text.strip() for text in descriptions.values()), descriptions
    shared = {text for text in descriptions.values() if list(descriptions.values()).count(text) > 1}
    assert not shared, [name for name, text in descriptions.items() if text in shared]


def test_every_check_has_a_description():
    graph = defs.resolve_asset_graph()
    missing = [
        f"{key.asset_key.to_user_string()}:{key.name}"
        for key in graph.asset_check_keys
        if not (graph.get_check_spec(key).description or "").strip()
    ]
    assert not missing
