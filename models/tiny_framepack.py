"""A tiny random FramePack (HunyuanVideo) folder with the layout the real weights use.

Sizes follow diffusers' own FramePack pipeline test (4 latent channels, one block of each
transformer kind, 8x spatial / 4x temporal VAE), so every code path of ``models.framepack``
runs in seconds on a CPU. The folder is what ``FramePackExtender(model=DIR)`` loads:

    transformer/ vae/ text_encoder/ tokenizer/ text_encoder_2/ tokenizer_2/
    image_encoder/ feature_extractor/ scheduler/
"""

from __future__ import annotations

from pathlib import Path

from models.tiny_encoders import TINY_CORPUS, clip_tokenizer

LLAMA_SPECIALS = [
    "<unk>",
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
    "<|pad|>",
]


def llama_tokenizer(vocab_size: int = 400):
    """A sentencepiece-style BPE with HunyuanVideo's chat-template special tokens, as ``LlamaTokenizerFast``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    # Metaspace is what transformers' LlamaTokenizer rebuilds on load; a ByteLevel model would
    # be silently re-tokenised differently when loaded through that class.
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first")
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="first")
    tok.train_from_iterator(TINY_CORPUS, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=LLAMA_SPECIALS))
    return LlamaTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|begin_of_text|>",
        eos_token="<|end_of_text|>",
        pad_token="<|pad|>",
        unk_token="<unk>",
    )


def build(out_dir: str | Path) -> None:
    import torch
    from diffusers import (
        AutoencoderKLHunyuanVideo,
        FlowMatchEulerDiscreteScheduler,
        HunyuanVideoFramepackTransformer3DModel,
    )
    from transformers import (
        CLIPTextConfig,
        CLIPTextModel,
        LlamaConfig,
        LlamaModel,
        SiglipImageProcessor,
        SiglipVisionConfig,
        SiglipVisionModel,
    )

    out = Path(out_dir)
    text_dim, pooled_dim, image_dim, latent_ch = 16, 8, 32, 4  # the widths the transformer must agree on

    torch.manual_seed(0)
    HunyuanVideoFramepackTransformer3DModel(
        in_channels=latent_ch,
        out_channels=latent_ch,
        num_attention_heads=2,
        attention_head_dim=10,
        num_layers=1,
        num_single_layers=1,
        num_refiner_layers=1,
        patch_size=2,
        patch_size_t=1,
        guidance_embeds=True,
        text_embed_dim=text_dim,
        pooled_projection_dim=pooled_dim,
        rope_axes_dim=(2, 4, 4),
        image_condition_type=None,
        has_image_proj=True,
        image_proj_dim=image_dim,
        has_clean_x_embedder=True,
    ).save_pretrained(out / "transformer")

    torch.manual_seed(0)
    AutoencoderKLHunyuanVideo(
        in_channels=3,
        out_channels=3,
        latent_channels=latent_ch,
        down_block_types=("HunyuanVideoDownBlock3D",) * 4,
        up_block_types=("HunyuanVideoUpBlock3D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        layers_per_block=1,
        act_fn="silu",
        norm_num_groups=4,
        scaling_factor=0.476986,
        spatial_compression_ratio=8,
        temporal_compression_ratio=4,
        mid_block_add_attention=True,
    ).save_pretrained(out / "vae")

    # The real HunyuanVideo scheduler config: static shift 7, no dynamic shifting.
    FlowMatchEulerDiscreteScheduler(shift=7.0).save_pretrained(out / "scheduler")

    tok = llama_tokenizer()
    tok.save_pretrained(out / "tokenizer")
    torch.manual_seed(0)
    LlamaModel(
        LlamaConfig(
            vocab_size=len(tok),
            hidden_size=text_dim,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=3,  # the pipeline reads hidden_states[-3]
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
            max_position_embeddings=512,
        )
    ).save_pretrained(out / "text_encoder")

    tok2 = clip_tokenizer()
    tok2.save_pretrained(out / "tokenizer_2")
    torch.manual_seed(0)
    CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tok2),
            hidden_size=pooled_dim,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            max_position_embeddings=77,
            bos_token_id=tok2.bos_token_id,
            eos_token_id=tok2.eos_token_id,
            pad_token_id=tok2.pad_token_id,
        )
    ).save_pretrained(out / "text_encoder_2")

    torch.manual_seed(0)
    SiglipVisionModel(
        SiglipVisionConfig(
            hidden_size=image_dim,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=32,
            patch_size=8,
        )
    ).save_pretrained(out / "image_encoder")
    SiglipImageProcessor(size={"height": 32, "width": 32}).save_pretrained(out / "feature_extractor")
