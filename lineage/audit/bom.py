"""The ML-BOM: a CycloneDX 1.6 bill of materials of the audited artifact, built with cyclonedx-python-lib.

The audited model is the BOM's subject (`metadata.component`, type `machine-learning-model`, with a modelCard);
every ancestor is a component (`machine-learning-model` for models, `data` with a dataset description otherwise),
each with its files as nested `file` components carrying SHA-256 hashes; `dependencies` mirror the upstream refs.
cyclonedx-python-lib 11 does not model `modelCard` or component `data` yet, so those two are added to its JSON
output, and the result is then validated with the library's strict JSON validator (CycloneDX 1.6 schema).
"""

from __future__ import annotations

import json
from typing import Any

from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from lineage.audit.cards import model_metrics, target_artifact
from lineage.audit.chain import is_model_asset

PROPERTY_PREFIX = "lmforge:"


def build_mlbom(audit: dict[str, Any]) -> str:
    """The CycloneDX 1.6 ML-BOM of an audit as JSON text, validated; RuntimeError naming the violation if not."""
    components = {_ref(a): _component(a) for a in audit["artifacts"]}
    target = target_artifact(audit)
    subject = components.pop(_ref(target))
    bom = Bom(components=components.values(), metadata=BomMetaData(component=subject))
    everything = {**components, _ref(target): subject}
    for artifact in audit["artifacts"]:
        upstream = [everything[key] for key in _upstream_refs(artifact) if key in everything]
        bom.register_dependency(everything[_ref(artifact)], upstream)
    document = json.loads(JsonV1Dot6(bom).output_as_string())
    _add_ml_sections(document, audit)
    text = json.dumps(document, indent=2, sort_keys=False)
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if error is not None:
        raise RuntimeError(f"ML-BOM violates CycloneDX 1.6: {_explain(error)}")
    return text


def _component(artifact: dict[str, Any]) -> Component:
    is_model = is_model_asset(artifact["asset"])
    files = [
        Component(
            name=entry["path"],
            type=ComponentType.FILE,
            bom_ref=f"{_ref(artifact)}#{entry['path']}",
            hashes=[HashType(alg=HashAlgorithm.SHA_256, content=entry["sha256"])],
            properties=[Property(name=f"{PROPERTY_PREFIX}size_bytes", value=str(entry["size"]))],
        )
        for entry in artifact["files"]["entries"]
    ]
    properties = {
        "asset": artifact["asset"],
        "uri": artifact["uri"],
        "partition": artifact["partition"],
        "code_version": artifact["code_version"],
        "git_commit": artifact["git_commit"],
        "created_at": artifact["created_at"],
        "dagster_run_id": artifact["dagster_run_id"],
        "mlflow_run_url": artifact["mlflow_run_url"],
        "config": json.dumps(artifact["config"], sort_keys=True, default=str),
    }
    return Component(
        name=artifact["asset"],
        version=artifact["version"],
        type=ComponentType.MACHINE_LEARNING_MODEL if is_model else ComponentType.DATA,
        bom_ref=_ref(artifact),
        description=f"lmforge artifact {_ref(artifact)}",
        properties=[Property(name=PROPERTY_PREFIX + k, value=str(v)) for k, v in properties.items() if v is not None],
        components=files,
    )


def _add_ml_sections(document: dict[str, Any], audit: dict[str, Any]) -> None:
    """modelCard on model components, `data` on data components (fields the library does not model)."""
    by_ref = {_ref(a): a for a in audit["artifacts"]}
    subject = document["metadata"]["component"]
    for component in [subject, *document.get("components", [])]:
        artifact = by_ref[component["bom-ref"]]
        if component["type"] == "data":
            component["data"] = [_component_data(artifact)]
        elif component is subject:
            component["modelCard"] = _model_card(audit, artifact)


def _component_data(artifact: dict[str, Any]) -> dict[str, Any]:
    detail = artifact["detail"]
    facts = {key: detail[key] for key in ("documents", "urls", "documents_in", "documents_kept") if key in detail}
    description = f"{artifact['asset']} {artifact['version']}" + (
        f" ({artifact['partition']})" if artifact["partition"] else ""
    )
    if facts:
        description += ": " + ", ".join(f"{key}={value}" for key, value in facts.items())
    return {
        "type": "dataset",
        "name": _ref(artifact),
        "contents": {"url": artifact["uri"]},
        "description": description,
    }


def _model_card(audit: dict[str, Any], artifact: dict[str, Any]) -> dict[str, Any]:
    architecture = _architecture(audit)
    data_refs = [
        {"ref": _ref(a)} for a in audit["artifacts"] if a["asset"] in ("training_corpus", "token_shards", "shard_set")
    ]
    parameters: dict[str, Any] = {
        "approach": {"type": "self-supervised"},
        "task": "text-generation",
        "inputs": [{"format": "text"}],
        "outputs": [{"format": "text"}],
    }
    if architecture.get("model_type"):
        parameters["architectureFamily"] = str(architecture["model_type"])
    if architecture.get("architectures"):
        parameters["modelArchitecture"] = ", ".join(architecture["architectures"])
    if data_refs:
        parameters["datasets"] = data_refs
    metrics = [
        {"type": row["metric"], "value": str(row["value"]), "slice": row["artifact"]} for row in model_metrics(audit)
    ]
    return {
        "bom-ref": f"{_ref(artifact)}#model-card",
        "modelParameters": parameters,
        "quantitativeAnalysis": {"performanceMetrics": metrics},
        "considerations": _considerations(audit),
    }


def _considerations(audit: dict[str, Any]) -> dict[str, Any]:
    summary = audit["summary"]
    verification = audit.get("verification") or {}
    ethical = [
        {"name": f"licence signals in training data: {summary.get('training_licenses') or 'not recorded'}"},
        {"name": f"opt-out directives in training data: {summary.get('training_opt_out_signals') or 'none'}"},
    ]
    filters = next(
        (a["config"].get("enabled") for a in reversed(audit["artifacts"]) if a["asset"] == "filtered_documents"), None
    )
    if filters:
        for risk in ethical:
            risk["mitigationStrategy"] = f"filter stages applied: {', '.join(filters)}"
    limitations = [f"reproducibility check {'passed' if verification.get('verified') else 'failed or not run'}"]
    limitations += [f"{w['asset']}/{w['version']}: {w['detail']}" for w in verification.get("warnings", [])]
    return {"technicalLimitations": limitations, "ethicalConsiderations": ethical}


def _architecture(audit: dict[str, Any]) -> dict[str, Any]:
    for artifact in reversed(audit["artifacts"]):
        if "architecture" in artifact["detail"]:
            return artifact["detail"]["architecture"]
    return {}


def _upstream_refs(artifact: dict[str, Any]) -> list[str]:
    return [f"{ref['asset']}/{ref['version']}" for ref in artifact["upstream"]]


def _ref(artifact: dict[str, Any]) -> str:
    return f"{artifact['asset']}/{artifact['version']}"


def _explain(error: Any) -> str:
    """The first line of a jsonschema error and where in the document it is (the full text is pages long)."""
    data = getattr(error, "data", None)
    if data is not None and hasattr(data, "message"):
        return f"{data.message} at {'/'.join(str(part) for part in data.absolute_path)}"
    return str(error).splitlines()[0]
