"""Opt-out and licence policy: which documents a model may be trained on, read from a YAML/JSON policy file.

Opt-outs follow the robots meta / X-Robots-Tag directives the crawler records (`noai`, the DeviantArt/Spawning
proposal; `noindex`, `none` ...) and robots.txt decisions; licences are matched by short id (`cc-by-4.0`,
`cc-by-nc-sa-3.0`, `cc0-1.0`, else the lower-cased licence URL) against shell-style patterns (`cc-by-*`, `*-nc-*`).

    drop_if_robots_meta: [noai]        # default: honour the explicit AI opt-out
    drop_if_robots: [disallowed]       # robots.txt decisions that drop a document
    allowed_licenses: [cc-by-*, cc0-*] # default: any; applies to documents that carry a licence signal
    blocked_licenses: ["*-nd-*"]       # checked before allowed_licenses
    require_license: false             # true: documents without a licence signal are dropped

Reasons: `opt_out:<directive>`, `robots_txt:<decision>`, `license_missing`, `license_blocked:<id>`,
`license_not_allowed:<id>`. A malformed file raises ValueError naming the file (and line, where known).
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass, fields
from pathlib import Path

import yaml

from data_code.filters.base import Decision, DocumentFilter

_CC = re.compile(r"creativecommons\.org/(licenses|publicdomain)/([a-z-]+)(?:/(\d+(?:\.\d+)?))?", re.IGNORECASE)


@dataclass(frozen=True)
class Policy:
    drop_if_robots_meta: tuple[str, ...] = ("noai",)  # robots meta directives that drop a document
    drop_if_robots: tuple[str, ...] = ("disallowed",)  # robots.txt decisions that drop a document
    allowed_licenses: tuple[str, ...] | None = None  # licence-id patterns; None allows any licence
    blocked_licenses: tuple[str, ...] = ()  # licence-id patterns that drop a document
    require_license: bool = False  # drop documents that carry no licence signal


def license_id(license: str | None) -> str | None:
    """Short id of a licence signal: Creative Commons URLs become cc-by-sa-4.0 / cc0-1.0; others lower-cased."""
    if not license or not license.strip():
        return None
    match = _CC.search(license)
    if not match:
        return license.strip().lower()
    kind, name, version = match.group(1).lower(), match.group(2).lower(), match.group(3)
    if kind == "publicdomain":
        return {"zero": f"cc0-{version or '1.0'}", "mark": "public-domain-mark"}.get(name, f"publicdomain-{name}")
    return f"cc-{name}-{version}" if version else f"cc-{name}"


def load_policy(source: str | Path | dict | None) -> Policy:
    """A Policy from a YAML/JSON file, a dict, or None (the default policy)."""
    if source is None:
        return Policy()
    if isinstance(source, dict):
        return _policy_from_mapping(source, "<policy>", lambda key: None)
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"policy file not found: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}:{error.lineno}: invalid JSON: {error.msg}") from error
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ValueError(f"{where}: invalid YAML: {getattr(error, 'problem', None) or error}") from error
    return _policy_from_mapping({} if data is None else data, str(path), lambda key: _line_of(text, key))


def _line_of(text: str, key: str) -> int | None:
    pattern = re.compile(rf"^[ \t]*[\"']?{re.escape(str(key))}[\"']?\s*:", re.MULTILINE)
    match = pattern.search(text)
    return text.count("\n", 0, match.start()) + 1 if match else None


def _policy_from_mapping(data, source: str, line_of) -> Policy:
    def fail(key, message):
        line = line_of(key) if key is not None else None
        raise ValueError(f"{source}{f':{line}' if line else ''}: {message}")

    if not isinstance(data, dict):
        fail(None, f"a policy must be a mapping of settings, got {type(data).__name__}")
    known = {each.name for each in fields(Policy)}
    values = {}
    for key, value in data.items():
        if key not in known:
            fail(key, f"unknown policy key {key!r} (known: {', '.join(sorted(known))})")
        if key == "require_license":
            if not isinstance(value, bool):
                fail(key, f"require_license must be true or false, got {value!r}")
            values[key] = value
        elif value is None and key == "allowed_licenses":
            values[key] = None
        elif not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            fail(key, f"{key} must be a list of strings, got {value!r}")
        else:
            values[key] = tuple(item.strip().lower() for item in value)
    return Policy(**values)


class PolicyFilter(DocumentFilter):
    """Drops documents that opted out of AI training or whose licence the policy does not allow."""

    name = "policy"

    def __init__(self, policy: Policy | str | Path | dict | None = None):
        super().__init__()
        self.policy = policy if isinstance(policy, Policy) else load_policy(policy)

    def filter(self, doc: dict) -> Decision:
        policy = self.policy
        directives = {part.strip().lower() for part in (doc.get("robots_meta") or "").split(",")}
        for directive in policy.drop_if_robots_meta:
            if directive in directives:
                return False, f"opt_out:{directive}"
        if (robots := (doc.get("robots") or "").lower()) in policy.drop_if_robots:
            return False, f"robots_txt:{robots}"
        licence = license_id(doc.get("license"))
        if licence is None:
            return (False, "license_missing") if policy.require_license else True
        if any(fnmatch.fnmatchcase(licence, pattern) for pattern in policy.blocked_licenses):
            return False, f"license_blocked:{licence}", None, doc.get("license")
        allowed = policy.allowed_licenses
        if allowed is not None and not any(fnmatch.fnmatchcase(licence, pattern) for pattern in allowed):
            return False, f"license_not_allowed:{licence}", None, doc.get("license")
        return True
