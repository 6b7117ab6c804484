"""Frames and texts → embeddings → losses.

Text and frame encoders, temporal pooling and per-level heads (:mod:`.encoders`); the contrastive
losses with their cross-device gather (:mod:`.losses`); frame × word similarity (:mod:`.finegrained`);
the LightningModule that holds the science (:mod:`.module`) and its typed settings (:mod:`.config`); checkpoint
IO and loading (:mod:`.checkpoint`);
CAMMA's published SurgVLP / HecVL / PeskaVLP weights as a backbone (:mod:`.surgvlp`).
May import :mod:`hvl.core.data` and the leaves; never evaluation, search or the CLI. Encoders and
losses stay free of Lightning.
"""
from .._lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(["HFVisionEncoder", "Head", "SmallCNN", "TemporalTransformer", "TextEncoder", "VideoEncoder",
                     "build_frame_encoder", "default_text_model_path"], "encoders"),
    **dict.fromkeys(["LogitScale", "gather", "gather_keys", "hierarchical_loss", "infonce", "keyed_nce",
                     "masked_mean", "milnce", "multi_positive_nce", "text_keys"], "losses"),
    **dict.fromkeys(["FineGrainedConfig", "finegrained_infonce", "finegrained_similarity", "pad_tokens"],
                    "finegrained"),
    "HierarchicalVLM": "module",
    **dict.fromkeys(["HFVisionConfig", "LossWeights", "SmallCNNConfig", "TextEncoderConfig", "VideoEncoderConfig"],
                    "config"),
    "SurgVLPBackbone": "surgvlp",
    **dict.fromkeys(["AtomicCheckpointIO", "load_model", "read_checkpoint"], "checkpoint"),
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
