"""A cheap check, before any training, of which tokens the SFT loss will see.

TRL's `assistant_only_loss` supervises the tokens the chat template renders inside `{% generation %}` markers;
`max_length` then keeps each conversation's first tokens. The audit renders every conversation the same way and
reports how much is supervised, which conversations lose every supervised token to truncation (TRL drops those
silently), and whether the `<|im_end|>` closing each assistant turn is supervised (else the model never learns
to stop).
"""

from __future__ import annotations

END_OF_TURN = "<|im_end|>"


def audit_loss_mask(tokenizer, examples: list[dict], max_length: int) -> dict:
    """Loss-mask statistics of `examples` (rows with "messages", optionally "example_id") at `max_length` tokens.

    Returns: examples, tokens and supervised_tokens (after truncation), supervised_token_share, truncated (count),
    fully_masked_after_truncation (count), fully_masked_example_ids (list), end_of_turn_supervised (bool: every
    assistant turn's closing <|im_end|> is in the mask, checked before truncation).
    Raises ValueError when the template marks no assistant token (no {% generation %} markers).
    """
    end_id = tokenizer.convert_tokens_to_ids(END_OF_TURN)
    tokens = supervised = truncated = 0
    fully_masked, end_of_turn_ok, any_supervised = [], True, False
    for index, example in enumerate(examples):
        rendered = tokenizer.apply_chat_template(
            example["messages"], tokenize=True, return_dict=True, return_assistant_tokens_mask=True
        )
        ids, mask = list(rendered["input_ids"]), list(rendered["assistant_masks"])
        any_supervised |= any(mask)
        end_of_turn_ok &= _end_of_turn_supervised(ids, mask, example["messages"], end_id)
        truncated += len(ids) > max_length
        kept = mask[:max_length]
        tokens, supervised = tokens + len(kept), supervised + sum(kept)
        if any(mask) and not any(kept):
            fully_masked.append(str(example.get("example_id", index)))
    if examples and not any_supervised:
        raise ValueError("the chat template marks no assistant token: it needs {% generation %} markers")
    return {
        "examples": len(examples),
        "tokens": tokens,
        "supervised_tokens": supervised,
        "supervised_token_share": supervised / tokens if tokens else 0.0,
        "truncated": truncated,
        "fully_masked_after_truncation": len(fully_masked),
        "fully_masked_example_ids": fully_masked,
        "end_of_turn_supervised": bool(examples) and end_of_turn_ok,
    }


def _end_of_turn_supervised(ids: list[int], mask: list[int], messages: list[dict], end_id: int) -> bool:
    """True when the k-th <|im_end|> (closing the k-th message) is masked exactly when message k is the assistant's.

    A message whose content spells <|im_end|> itself shifts the count; the check then fails, which is right:
    such content would end the turn early at inference too.
    """
    ends = [position for position, token in enumerate(ids) if token == end_id]
    if len(ends) != len(messages):
        return False
    pairs = zip(ends, messages, strict=True)
    return all(bool(mask[end]) == (message["role"] == "assistant") for end, message in pairs)
