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
