"""Summed log-probabilities of completions under a causal LM, and the preference accuracy they give."""

from __future__ import annotations

import torch


@torch.no_grad()
def completion_logprob(model, tokenizer, prompt: list[dict], completion: list[dict], max_length: int) -> float:
    """Sum of log p(token) over the completion's supervised tokens (content and <|im_end|>), given the prompt.

    Both are rendered with the chat template as one conversation; the completion's tokens are those after the
    rendered prompt (with its generation prompt) that the template marks as the assistant's. Cut at max_length.
    """
    prompt_ids = tokenizer.apply_chat_template(prompt, tokenize=True, add_generation_prompt=True, return_dict=True)
    rendered = tokenizer.apply_chat_template(
        prompt + completion, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    start = len(prompt_ids["input_ids"])
    ids = list(rendered["input_ids"])[:max_length]
    prefix = list(prompt_ids["input_ids"])[: len(ids)]
    assert ids[: len(prefix)] == prefix, "the prompt must render as a prefix of the conversation"
    mask = torch.tensor(rendered["assistant_masks"][: len(ids)], dtype=torch.bool)
    mask[:start] = False
    device = next(model.parameters()).device
    input_ids = torch.tensor([ids], device=device)
    logits = model(input_ids=input_ids).logits[0, :-1].float()  # (T-1, V): position t predicts token t+1
    token_logprobs = torch.log_softmax(logits, dim=-1).gather(-1, input_ids[0, 1:, None])[:, 0]  # (T-1,)
    return float(token_logprobs[mask[1:].to(device)].sum())


def preference_accuracy(model, tokenizer, rows: list[dict], max_length: int) -> dict:
    """Share of pairs whose chosen completion has the higher summed log-prob, and the mean log-prob margin.

    Returns: pairs, preference_accuracy (None without pairs), mean_logprob_margin (chosen - rejected, nats),
    logprobs ([(chosen, rejected)] per pair, for implicit rewards against a reference model).
    """
    was_training = model.training
    model.eval()
    logprobs = []
    for row in rows:
        chosen = completion_logprob(model, tokenizer, row["prompt"], row["chosen"], max_length)
        rejected = completion_logprob(model, tokenizer, row["prompt"], row["rejected"], max_length)
        logprobs.append((chosen, rejected))
    model.train(was_training)
    margins = [chosen - rejected for chosen, rejected in logprobs]
    return {
        "pairs": len(margins),
        "preference_accuracy": sum(margin > 0 for margin in margins) / len(margins) if margins else None,
        "mean_logprob_margin": sum(margins) / len(margins) if margins else None,
        "logprobs": logprobs,
    }


def implicit_reward_accuracy(policy: list[tuple[float, float]], reference: list[tuple[float, float]]) -> float | None:
    """Share of pairs the DPO implicit reward ranks right: (policy - reference) log-prob gain larger for chosen.

    Summed log-probs favour short completions (a truncated rejected answer often "wins"); the reward compares
    each completion with itself under the reference model, so length cancels. None without pairs.
    """
    if not policy:
        return None
    assert len(policy) == len(reference), "policy and reference must score the same pairs"
    wins = [(pc - rc) > (pr - rr) for (pc, pr), (rc, rr) in zip(policy, reference, strict=True)]
    return sum(wins) / len(wins)
