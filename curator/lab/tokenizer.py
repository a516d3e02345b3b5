"""The lab's character-level tokenizer, in Hugging Face format.

One token per character of the arithmetic alphabet, plus `\\boxed{` as a
single token (the answer marker costs one step of generation, not seven) and
four specials. Saved with `save_pretrained`, it loads back with
`AutoTokenizer.from_pretrained` like any Hub tokenizer; padding is on the left
so that batched generation lines prompts up at their last token.
"""

from __future__ import annotations

SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
ALPHABET = tuple("0123456789+-*()=;") + ("\\boxed{", "}")


def vocabulary() -> dict[str, int]:
    return {tok: i for i, tok in enumerate(SPECIALS + ALPHABET)}


def build_tokenizer():
    """A `PreTrainedTokenizerFast` over `vocabulary()`; prompts get a leading <bos>."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = vocabulary()
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"\\boxed\{|."), behavior="isolated")
    core.decoder = decoders.Fuse()
    core.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", vocab["<bos>"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        padding_side="left",
        model_max_length=128,
    )
