"""Tiny random image/text encoders (DINOv2, CLIP) and the tokenizer trainers the tiny families share.

Every folder written here loads through the same ``from_pretrained(dir)`` calls as the real
weights (``facebook/dinov2-base``, ``openai/clip-vit-base-patch32``), so descriptor and metric
code runs offline unchanged. Tokenizers are trained in code with the ``tokenizers`` library;
nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

# Text the tiny tokenizers learn their merges from: the words our prompts and instructions
# use, so tokenised prompts are short rather than one token per byte.
TINY_CORPUS = [
    "a red car drives down a quiet street at night",
    "replace the dog with a cat; change the sky to sunset; remove the person on the left",
    "a person walks through a park, the camera follows slowly from behind",
    "describe the video by detailing the following aspects: the main content and theme of the video",
    "the color, shape, size, texture, quantity, text, and spatial relationships of the objects",
    "actions, events, behaviors temporal relationships, physical movement changes of the objects",
    "background environment, light, style and atmosphere; camera angles, movements, and transitions",
    "system user assistant video image frame shot scene subject story caption instruction edit",
]
TINY_IMAGE_SIZE = 32


def clip_tokenizer(vocab_size: int = 400):
    """A CLIP-style BPE (lowercase, ``</w>`` word ends, byte-level) as ``CLIPTokenizerFast``."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import CLIPTokenizerFast

    bos, eos = "<|startoftext|>", "<|endoftext|>"
    tok = Tokenizer(models.BPE(unk_token=eos, end_of_word_suffix="</w>"))
    tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()])
    words = Regex(r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""")
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(words, behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[bos, eos],
        end_of_word_suffix="</w>",
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(TINY_CORPUS, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", special_tokens=[(bos, tok.token_to_id(bos)), (eos, tok.token_to_id(eos))]
    )
    return CLIPTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token=eos, pad_token=eos, unk_token=eos)


def build_dinov2(out_dir: str | Path) -> None:
    """Tiny ``Dinov2Model`` + its ``BitImageProcessor`` (resize + centre crop + ImageNet norm)."""
    import torch
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model

    out = Path(out_dir)
    torch.manual_seed(0)
    cfg = Dinov2Config(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        mlp_ratio=2,
        image_size=TINY_IMAGE_SIZE,
        patch_size=8,
    )
    Dinov2Model(cfg).eval().save_pretrained(out)
    BitImageProcessor(
        size={"shortest_edge": TINY_IMAGE_SIZE},
        crop_size={"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE},
        do_center_crop=True,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
        do_convert_rgb=True,
    ).save_pretrained(out)


def build_clip(out_dir: str | Path) -> None:
    """Tiny ``CLIPModel`` + ``CLIPProcessor`` (image processor and a BPE tokenizer trained in code)."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    out = Path(out_dir)
    tokenizer = clip_tokenizer()
    torch.manual_seed(0)
    cfg = CLIPConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "max_position_embeddings": 77,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "image_size": TINY_IMAGE_SIZE,
            "patch_size": 8,
        },
        projection_dim=16,
    )
    CLIPModel(cfg).eval().save_pretrained(out)
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": TINY_IMAGE_SIZE}, crop_size={"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE}
    )
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(out)
