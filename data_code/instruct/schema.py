"""Validation and normalization of chat and preference rows (TRL's conversational formats).

Chat row:        {"messages": [{"role": "system"|"user"|"assistant", "content": str}, ...]}
                 at least one user turn, the last turn the assistant's.
Preference row:  {"prompt": [messages ending with a user turn], "chosen": [assistant messages],
                  "rejected": [assistant messages]}; plain strings are accepted and wrapped as one user / assistant
                 message each. chosen must differ from rejected.

Every check raises ValueError with a message that says what is wrong; the loaders prefix it with file and line.
Keys other than the ones named here (example_id, source_doc_ids, split, ...) are carried through unchanged.
"""

from __future__ import annotations

ROLES = ("system", "user", "assistant")
MESSAGE_KEYS = {"role", "content"}
PREFERENCE_KEYS = ("prompt", "chosen", "rejected")


def check_message(message, where: str) -> dict:
    """The message as a plain {"role", "content"} dict; ValueError naming `where` when it is malformed."""
    if not isinstance(message, dict):
        raise ValueError(f"{where} must be an object with 'role' and 'content', got {type(message).__name__}")
    unknown = sorted(set(message) - MESSAGE_KEYS)
    if unknown:
        raise ValueError(f"{where} has unknown key(s) {unknown}; a message has only 'role' and 'content'")
    role = message.get("role")
    if role is None:
        raise ValueError(f"{where} is missing 'role'")
    if role not in ROLES:
        raise ValueError(f"{where} has unknown role {role!r}; expected one of {list(ROLES)}")
    if "content" not in message or message["content"] is None:
        raise ValueError(f"{where} is missing 'content'")
    if not isinstance(message["content"], str):
        raise ValueError(f"{where} has non-string content ({type(message['content']).__name__})")
    return {"role": role, "content": message["content"]}


def check_messages(messages, field: str) -> list[dict]:
    """A non-empty list of checked messages; ValueError naming `field` otherwise."""
    if not isinstance(messages, list | tuple) or not messages:
        raise ValueError(f"'{field}' must be a non-empty list of messages, got {messages!r:.80}")
    return [check_message(message, f"{field}[{index}]") for index, message in enumerate(messages)]


def check_chat_row(row) -> dict:
    """The row with its messages normalized; ValueError saying what is wrong otherwise."""
    if not isinstance(row, dict):
        raise ValueError(f"a row must be an object, got {type(row).__name__}")
    if "messages" not in row:
        raise ValueError(f"missing key 'messages' (keys: {sorted(row)})")
    messages = check_messages(row["messages"], "messages")
    if not any(message["role"] == "user" for message in messages):
        raise ValueError("'messages' has no user turn")
    if messages[-1]["role"] != "assistant":
        raise ValueError(f"'messages' must end with an assistant turn, ends with {messages[-1]['role']!r}")
    return {**row, "messages": messages}


def check_preference_row(row) -> dict:
    """The row in conversational form (strings wrapped as messages); ValueError saying what is wrong otherwise."""
    if not isinstance(row, dict):
        raise ValueError(f"a row must be an object, got {type(row).__name__}")
    missing = [key for key in PREFERENCE_KEYS if key not in row or row[key] is None]
    if missing:
        raise ValueError(f"missing key(s) {missing} (keys: {sorted(row)})")
    prompt = _as_messages(row["prompt"], "prompt", "user")
    if prompt[-1]["role"] != "user":
        raise ValueError(f"'prompt' must end with a user turn, ends with {prompt[-1]['role']!r}")
    chosen = _as_messages(row["chosen"], "chosen", "assistant")
    rejected = _as_messages(row["rejected"], "rejected", "assistant")
    for field, messages in (("chosen", chosen), ("rejected", rejected)):
        if any(message["role"] != "assistant" for message in messages):
            raise ValueError(f"'{field}' must hold assistant messages only")
    if chosen == rejected:
        raise ValueError("'chosen' and 'rejected' are identical; a preference pair must differ")
    return {**row, "prompt": prompt, "chosen": chosen, "rejected": rejected}


def _as_messages(value, field: str, role: str) -> list[dict]:
    """A plain string becomes one message of `role`; a list is checked as messages."""
    if isinstance(value, str):
        return [{"role": role, "content": value}]
    return check_messages(value, field)


def row_kind(row: dict) -> str:
    """'chat' for a row with messages, 'preference' for a prompt/chosen/rejected row."""
    return "chat" if "messages" in row else "preference"
