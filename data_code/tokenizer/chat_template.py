"""The ChatML chat template, with generation markers around what the assistant says.

`{% generation %}`...`{% endgeneration %}` is transformers' Jinja extension: with
`apply_chat_template(..., return_assistant_tokens_mask=True, return_dict=True)` it marks the tokens rendered inside
with 1, so SFT (TRL `assistant_only_loss`) trains on assistant turns only. The mask covers the assistant's content
and its closing `<|im_end|>` (the model must learn to stop), not the role header nor the newline after the turn.
Rendered: `<|im_start|>user\\nHi<|im_end|>\\n<|im_start|>assistant\\nHello<|im_end|>\\n`.
"""

from __future__ import annotations

from data_code.tokenizer.config import IM_END, IM_START

CHAT_TEMPLATE = r"""{%- for message in messages -%}
{{- '<|im_start|>' + message['role'] + '\n' -}}
{%- if message['role'] == 'assistant' -%}
{%- generation -%}
{{- message['content'] + '<|im_end|>' -}}
{%- endgeneration -%}
{{- '\n' -}}
{%- else -%}
{{- message['content'] + '<|im_end|>' + '\n' -}}
{%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}
{{- '<|im_start|>assistant\n' -}}
{%- endif -%}
"""

assert IM_START in CHAT_TEMPLATE and IM_END in CHAT_TEMPLATE, "the template must use the configured turn markers"
