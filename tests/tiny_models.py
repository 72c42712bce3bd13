"""Tiny, randomly initialised models saved to a folder, so the real loading code
(``from_pretrained`` on a local folder) is exercised offline."""

from __future__ import annotations

from pathlib import Path

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", "person", "car", "face", "dog", "cat", "traffic",
         "light", "truck", "bus", "bicycle", "a", "b", "c", "d"]


def save_tiny_grounding_dino(folder: Path) -> Path:
    import torch
    from transformers import (
        BertConfig, BertTokenizerFast, GroundingDinoConfig, GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor, GroundingDinoProcessor, SwinConfig,
    )

    # transformers 5 ignores vocab_file=: the vocabulary must be given as a dict.
    tok = BertTokenizerFast(vocab={w: i for i, w in enumerate(WORDS)}, do_lower_case=True)
    cfg = GroundingDinoConfig(
        backbone_config=SwinConfig(embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1], window_size=7,
                                   out_features=["stage2", "stage3", "stage4"]),
        text_config=BertConfig(vocab_size=len(WORDS), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=37, max_position_embeddings=300),
        d_model=32, encoder_layers=1, decoder_layers=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
        encoder_attention_heads=2, decoder_attention_heads=2, num_queries=20, num_feature_levels=4,
        max_text_len=256, encoder_n_points=2, decoder_n_points=2,
    )
    torch.manual_seed(0)
    GroundingDinoForObjectDetection(cfg).eval().save_pretrained(folder)
    ip = GroundingDinoImageProcessor(size={"shortest_edge": 128, "longest_edge": 160})
    GroundingDinoProcessor(image_processor=ip, tokenizer=tok).save_pretrained(folder)
    return folder


def save_tiny_inpainting(folder: Path, controlnet_folder: Path | None = None) -> Path:
    """A tiny random Stable Diffusion inpainting pipeline (and optionally a ControlNet)."""
    import json

    import torch
    from diffusers import (
        AutoencoderKL, ControlNetModel, DDIMScheduler, StableDiffusionInpaintPipeline, UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=32, in_channels=9, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, attention_head_dim=8, norm_num_groups=8)
    vae = AutoencoderKL(block_out_channels=[32, 64], in_channels=3, out_channels=3, latent_channels=4,
                        down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
                        norm_num_groups=8)
    text = CLIPTextModel(CLIPTextConfig(bos_token_id=0, eos_token_id=2, pad_token_id=1, hidden_size=32,
                                        intermediate_size=37, num_attention_heads=4, num_hidden_layers=2,
                                        vocab_size=1000, projection_dim=32))
    tok_dir = Path(folder) / "_tok"
    tok_dir.mkdir(parents=True, exist_ok=True)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 2, "!": 1}
    for w in ("a", "photo", "of", "person", "car", "face", "natural", "detailed", ",", ";", "the"):
        vocab.setdefault(w + "</w>", len(vocab))
    (tok_dir / "vocab.json").write_text(json.dumps(vocab))
    (tok_dir / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(tok_dir / "vocab.json"), str(tok_dir / "merges.txt"), pad_token="!",
                              model_max_length=77)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionInpaintPipeline(vae=vae, text_encoder=text, tokenizer=tokenizer, unet=unet,
                                          scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                          requires_safety_checker=False)
    pipe.save_pretrained(folder)
    if controlnet_folder is not None:
        ControlNetModel(block_out_channels=(32, 64), layers_per_block=1, in_channels=4, cross_attention_dim=32,
                        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), attention_head_dim=8,
                        conditioning_embedding_out_channels=(16, 32), norm_num_groups=8).save_pretrained(controlnet_folder)
    return folder
