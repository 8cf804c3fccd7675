"""A training chat template for models whose own template TRL cannot patch for assistant-only loss.

TRL 1.16's SFTTrainer masks the loss to assistant tokens with ``{% generation %}`` markers in the chat
template. It ships patched templates for the model families it knows (Qwen, Llama 3, Phi, ...) and
refuses every other one ("The chat template is not training-compatible ... patching is not supported").
SmolLM2's template is plain ChatML (``<|im_start|>role\\ncontent<|im_end|>\\n``), which TRL has no patch
for, so ``toolgym train sft`` on the real model stopped there.

:func:`training_template` writes the markers into a ChatML template, and only when it renders exactly
as the model's own on the conversations SFT trains on (system first, then user/assistant turns, with
and without the generation prompt): the model learns the very strings it is prompted with, and
``<|im_end|>`` sits inside the marked span, so it is also trained to stop. Anything else is an error
that says what to do instead.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CHATML_TRAINING_TEMPLATE", "training_template"]

CHATML_TRAINING_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\n' }}"
    "{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_PROBES: tuple[tuple[list[dict[str, str]], bool], ...] = (
    ([{"role": "system", "content": "Tools: f(x)."}, {"role": "user", "content": "Call f with 1."}], True),
    ([{"role": "system", "content": "S"}, {"role": "user", "content": "U"}, {"role": "assistant", "content": "<tool_call>{}</tool_call>"}], False),
    ([{"role": "system", "content": "S"}, {"role": "user", "content": "U1"}, {"role": "assistant", "content": "A1"},
      {"role": "user", "content": "<tool_response>\nr\n</tool_response>"}, {"role": "assistant", "content": "A2"}], False),
)


def training_template(tokenizer: Any) -> str | None:
    """A template to train with, or None when the tokenizer's own works (it has ``{% generation %}``
    markers, or TRL can patch it). ValueError, saying what to change, when neither holds."""
    from trl.chat_template_utils import get_training_chat_template, has_generation_markers

    own = getattr(tokenizer, "chat_template", None)
    if not own:
        raise ValueError("the tokenizer has no chat template, so assistant-only SFT loss cannot find the assistant turns; "
                         "give the model a chat template or set sft.assistant_only_loss: false")
    if has_generation_markers(own):
        return None
    try:
        get_training_chat_template(tokenizer)
        return None  # a family TRL knows: SFTTrainer swaps in its own patched template
    except ValueError:
        pass
    for messages, gen in _PROBES:
        theirs = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen)
        ours = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen,
                                             chat_template=CHATML_TRAINING_TEMPLATE)
        if theirs != ours:
            raise ValueError(
                "the model's chat template has no {% generation %} markers, TRL has no patch for it, and it is not plain "
                f"ChatML (it renders {theirs[:120]!r}); set sft.assistant_only_loss: false (loss on every token) or give "
                "the tokenizer a template with {% generation %} / {% endgeneration %} around the assistant turns")
    return CHATML_TRAINING_TEMPLATE
