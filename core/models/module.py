"""The LightningModule: one shared video/text backbone, a separate embedding space per level."""
from __future__ import annotations

import json
import math
import warnings
from functools import partial
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from ..data.levels import LEVELS
from ..data.transforms import normalize_batch
from ..errors import HVLInputError
from .backbones import BackboneOptions
from .config import (
    LossWeights,
    PoseStreamConfig,
    TemporalLossConfig,
    TextEncoderConfig,
    VideoEncoderConfig,
    as_config,
    as_plain,
)
from .encoders import BackboneFrames, BackboneText, Head, ResidualHead, TextEncoder, VideoEncoder
from .finegrained import FineGrainedConfig, finegrained_infonce, finegrained_similarity, pad_tokens
from .losses import (
    LogitBias,
    LogitScale,
    hierarchical_loss,
    infonce,
    masked_mean,
    milnce,
    sigmoid_milnce,
    sigmoid_pairs,
    temporal_nce,
    text_keys,
)
from .pose import Streams, build_video_encoder


class HierarchicalVLM(pl.LightningModule):
    """HecVL-style hierarchical video-text pretraining.

    clip: video window ↔ its narrations (MIL-NCE over several positives);
    phase: segment ↔ summary, ↔ mean of its narrations, summary ↔ narrations;
    video: whole video ↔ abstract, ↔ mean of phase summaries, abstract ↔ summaries.
    Each level has its own video head, text head and temperature (the paper's
    "separate embedding spaces"); which levels a step trains comes from the data schedule,
    how they are weighed from ``loss_weights``.

    ``finegrained`` (e.g. ``{video: {}}``) switches a phase/video level's segment↔parent term
    from pooled cosine to frame×word similarity (:mod:`hvl.core.models.finegrained`, CiCo); the
    other two hierarchical terms stay global. Levels not named keep the default behaviour.

    ``same_text_positives``: rows of a batch that carry the same text are positives of each
    other, not negatives (:mod:`hvl.core.models.losses`); small label vocabularies need it.

    ``backbone`` (``{path, text_path, image_unlocked, text_unlocked, gradient_checkpointing}``): start from a
    pretrained image-text model (:mod:`hvl.core.models.backbones`) instead of ``text_encoder`` and the frame
    encoder. Every level's heads then start at identity and its temperature at the model's logit scale, so
    at step 0 each level scores exactly as the pretrained model does; its towers train at ``backbone_lr``
    (CLIP4Clip: pretrained layers 1e-7 - 1e-5, new layers 1e-4), all but the last ``image_unlocked`` /
    ``text_unlocked`` blocks locked (0: the tower frozen; None: all trainable).

    ``loss``: ``infonce`` (softmax over the batch, CLIP / HecVL) or ``sigmoid`` (SigLIP: every pair a binary
    match, with a learnable bias per level that starts at the backbone's ``logit_bias``, else ``init_bias``).
    Continue a SigLIP model with the loss it was trained with.

    ``loss_weights.temporal`` > 0 adds LF-VILA's temporal contrastive term to video-level steps
    (:func:`~hvl.core.models.losses.temporal_nce`, settings in ``temporal_loss``): chunks of the video encoder's
    per-frame output (with its temporal context) against the video's clip sentences, in the clip level's space.
    """

    def __init__(self, text_encoder: TextEncoderConfig | None = None, video_encoder: VideoEncoderConfig | None = None,
                 embed_dim: int = 256, levels: list[str] | None = None, loss_weights: LossWeights | None = None,
                 hier_weights: tuple[float, float, float] = (1.0, 1.0, 1.0), temperature: float = 0.07,
                 learn_temperature: bool = True, head_hidden: int | None = None, lr: float = 1e-3,
                 text_lr: float = 1e-5, weight_decay: float = 0.05, warmup_steps: int = 50,
                 min_lr_ratio: float = 0.05, finegrained: dict[str, FineGrainedConfig] | None = None,
                 same_text_positives: bool = True, backbone: BackboneOptions | None = None,
                 backbone_lr: float = 1e-5, loss: str = "infonce", init_bias: float = -10.0,
                 temporal_loss: TemporalLossConfig | None = None, pose: PoseStreamConfig | None = None,
                 prebuilt_backbone: nn.Module | None = None):
        """``prebuilt_backbone``: an already built backbone for ``backbone`` (loading a checkpoint rebuilds it from
        what the checkpoint stored, so the original model directory need not exist).

        The nested settings are typed (:mod:`hvl.core.models.config`) so that LightningCLI validates them; plain
        dicts (a checkpoint's hyperparameters, Python callers) are accepted too, and the hyperparameters keep
        plain values either way."""
        super().__init__()
        text_cfg = as_config(TextEncoderConfig, text_encoder)
        video_cfg = as_config(VideoEncoderConfig, video_encoder)
        weights = as_config(LossWeights, loss_weights)
        fg_cfgs = None if finegrained is None else {lv: as_config(FineGrainedConfig, cfg) or FineGrainedConfig()
                                                    for lv, cfg in finegrained.items()}
        bb_opts = as_config(BackboneOptions, backbone)
        temporal_cfg = as_config(TemporalLossConfig, temporal_loss)
        self.pose_cfg = as_config(PoseStreamConfig, pose)
        # save_hyperparameters stores these arguments as they are now: plain values (dicts, lists, numbers), as
        # checkpoints have always held them (torch.load(weights_only=True) reads nothing else)
        text_encoder, video_encoder, loss_weights = as_plain(text_cfg), as_plain(video_cfg), as_plain(weights)
        finegrained, backbone, temporal_loss = as_plain(fg_cfgs), as_plain(bb_opts), as_plain(temporal_cfg)
        pose = as_plain(self.pose_cfg)
        self.save_hyperparameters(ignore=["prebuilt_backbone"])
        video_cfg = video_cfg or VideoEncoderConfig()
        self.levels = list(levels or LEVELS)
        bad = set(self.levels) - set(LEVELS)
        if bad:
            raise HVLInputError(f"model.levels: unknown {sorted(bad)}; use a subset of {list(LEVELS)}")
        if loss not in ("infonce", "sigmoid"):
            raise HVLInputError(f"model.loss: unknown '{loss}'; use 'infonce' (CLIP, HecVL) or 'sigmoid' (SigLIP)")
        if bb_opts is not None and self.pose_cfg is not None:
            raise HVLInputError("model.pose fuses keypoints with a frame encoder trained from scratch; it does not "
                                "combine with model.backbone yet (drop one of them)")
        if bb_opts is not None:
            if text_cfg is not None or video_cfg.frame_encoder is not None:
                raise HVLInputError("model.backbone replaces model.text_encoder and video_encoder.frame_encoder: "
                                 "set one or the other")
            self.backbone = prebuilt_backbone if prebuilt_backbone is not None else bb_opts.load()
            bb_opts.configure(self.backbone)
            self.text = BackboneText(self.backbone, frozen=bb_opts.text_unlocked == 0)
            self.video = VideoEncoder(frames=BackboneFrames(self.backbone),
                                      **{k: v for k, v in video_cfg.encoder_kwargs().items() if k != "frame_encoder"})
            dim = self.backbone.embed_dim
            self.video_heads = nn.ModuleDict({lv: ResidualHead(dim, head_hidden) for lv in self.levels})
            self.text_heads = nn.ModuleDict({lv: ResidualHead(dim, head_hidden) for lv in self.levels})
            temperature = 1.0 / self.backbone.init_logit_scale
            if self.backbone.init_logit_bias is not None:
                init_bias = self.backbone.init_logit_bias
        else:
            self.backbone = None
            self.text = TextEncoder(**as_plain(text_cfg or TextEncoderConfig()))
            self.video = build_video_encoder(video_cfg, self.pose_cfg)
            self.video_heads = nn.ModuleDict({lv: Head(self.video.dim, embed_dim, head_hidden) for lv in self.levels})
            self.text_heads = nn.ModuleDict({lv: Head(self.text.dim, embed_dim, head_hidden) for lv in self.levels})
        self.scales = nn.ModuleDict({lv: LogitScale(temperature, learnable=learn_temperature) for lv in self.levels})
        if loss == "sigmoid":  # only then: checkpoints of InfoNCE models keep their exact parameter set
            self.biases = nn.ModuleDict({lv: LogitBias(init_bias, learnable=learn_temperature) for lv in self.levels})
        self.loss_weights = {lv: getattr(weights or LossWeights(), lv) for lv in self.levels}
        self.temporal_weight = (weights or LossWeights()).temporal
        self.temporal_cfg = temporal_cfg or TemporalLossConfig()
        if self.temporal_weight and not {"clip", "video"} <= set(self.levels):
            raise HVLInputError(f"model.loss_weights.temporal ({self.temporal_weight}) pairs video-level chunks with "
                                f"clip sentences in the clip level's space: model.levels {self.levels} needs both "
                                "'clip' and 'video' (or set loss_weights.temporal: 0)")
        self.finegrained: dict[str, FineGrainedConfig] = {}
        for lv, cfg in (fg_cfgs or {}).items():
            if loss == "sigmoid":
                raise HVLInputError("model.finegrained scores frames against words with InfoNCE; it does not combine "
                                 "with model.loss: sigmoid (drop one of them)")
            if lv not in self.levels or lv == "clip":
                raise HVLInputError(f"model.finegrained: level '{lv}' must be 'phase' or 'video' and in model.levels "
                                 f"{self.levels} (the clip level has several texts per sample: MIL-NCE)")
            self.finegrained[lv] = cfg
        # transformers' from_pretrained leaves a model in eval mode and Lightning keeps each module's mode: a
        # trainable pretrained encoder would fine-tune without its dropout. Frozen parts return to eval themselves.
        self.train()

    @property
    def preprocess(self):
        """The frame preprocessing a pretrained part asks for, or None (from scratch: the data module's squares)."""
        if self.backbone is not None:
            return self.backbone.preprocess
        return getattr(self.video.frames, "preprocess", None)  # a pretrained HF vision encoder's own

    def frozen_frame_encoder(self):
        """``(fingerprint, module)`` of the frame encoder when none of it trains (its features can be cached),
        else None; the fingerprint hashes its weights, so a cache of another model is never read."""
        if self.backbone is None:
            return None
        frames = self.video.frames
        bb = self.backbone
        vision = [p for n, p in bb.named_parameters() if n.startswith(("vision", "resnet", "global_embedder"))]
        if not vision or any(p.requires_grad for p in vision):
            return None
        import hashlib

        h = hashlib.sha256(json.dumps(bb.spec().get("configs", bb.kind), sort_keys=True, default=str).encode())
        for p in vision:
            h.update(p.detach().cpu().numpy().tobytes())
        return h.hexdigest(), frames

    @property
    def keypoint_reader(self):
        """The reader of the keypoints a pose-aware model reads beside its frames (None: RGB only)."""
        if self.pose_cfg is None:
            return None
        from ..data.keypoints import keypoint_reader

        reader = keypoint_reader(self.pose_cfg.reader)
        if (reader.points, reader.channels) != (self.pose_cfg.points, self.pose_cfg.channels):
            raise HVLInputError(f"model.pose: points {self.pose_cfg.points} × channels {self.pose_cfg.channels}, but "
                                f"'{self.pose_cfg.reader}' keypoints have {reader.points} × {reader.channels}; set "
                                "model.pose.points / channels to match")
        return reader

    def video_input(self, batch: dict[str, Any]) -> Tensor | Streams:
        """A level batch's model input: its frames (:func:`normalize_batch`), with its keypoints when the model has
        a pose stream."""
        frames = normalize_batch(batch)
        if self.pose_cfg is None:
            return frames
        if "keypoints" not in batch:
            raise HVLInputError(f"model.pose: this model reads keypoints ('{self.pose_cfg.reader}' poses) but the "
                                "batch carries none; train it with hvl's data module, which loads the poses each "
                                "manifest row names")
        rgb = frames if self.pose_cfg.streams == "fused" else None
        return Streams(rgb, batch["keypoints"], batch["keypoint_mask"])

    @property
    def embed_dim(self) -> int:
        return self.backbone.embed_dim if self.backbone is not None else int(self.hparams.embed_dim)

    # ------------------------------------------------------------ embeddings
    def embed_video(self, frames: Tensor, level: str) -> Tensor:
        """``[B, T, C, H, W]`` → ``[B, E]`` in ``level``'s space."""
        return self.video_heads[level](self.video(frames))

    def embed_frames(self, frames: Tensor, level: str, keypoints: Tensor | None = None,
                     keypoint_mask: Tensor | None = None) -> Tensor:
        """``[N, C, H, W]`` single frames → ``[N, E]``: each frame as a one-frame video; a pose-aware model also
        reads each frame's keypoints ``[N, P*C]`` and mask ``[N, P]`` (none given: nothing seen, as a frame whose
        signer was not detected; a pose-only model then has nothing to read)."""
        if self.pose_cfg is None:
            return self.embed_video(frames.unsqueeze(1), level)
        if keypoints is None:
            if self.pose_cfg.streams == "pose":
                raise HVLInputError("this model reads keypoints only (model.pose.streams: pose): it embeds no image "
                                    "or frame without the signer's keypoints; use a fused or an RGB model")
            n, cfg = frames.shape[0], self.pose_cfg
            keypoints = frames.new_zeros(n, cfg.points * cfg.channels)
            keypoint_mask = torch.zeros(n, cfg.points, dtype=torch.bool, device=frames.device)
        rgb = frames.unsqueeze(1) if self.pose_cfg.streams == "fused" else None
        return self.embed_video(Streams(rgb, keypoints.unsqueeze(1), keypoint_mask.unsqueeze(1)), level)

    def embed_text(self, texts: list[str], level: str) -> Tensor:
        uniq = list(dict.fromkeys(texts))
        feats = self.text(uniq).to(self.device)
        emb = self.text_heads[level](feats)
        index = {t: i for i, t in enumerate(uniq)}
        return emb[torch.tensor([index[t] for t in texts], device=emb.device)]

    def embed_frame_sequence(self, frames: Tensor, level: str) -> tuple[Tensor, Tensor]:
        """``[B, T, C, H, W]`` → per-frame ``[B, T, E]`` and pooled ``[B, E]`` embeddings, one encoder pass."""
        feats = self.video.frame_features(frames)
        head = self.video_heads[level]
        return head(feats), head(feats.mean(1))

    def embed_tokens(self, texts: list[str], level: str) -> tuple[Tensor, Tensor]:
        """Per-token ``[N, L, E]`` embeddings in ``level``'s space and their mask, ``L`` fixed by ``max_words``."""
        cfg = self.finegrained.get(level, FineGrainedConfig())
        tok, mask = self.text.token_features(texts)
        tok, mask = pad_tokens(tok.to(self.device), mask.to(self.device), cfg.max_words)
        return self.text_heads[level](tok), mask

    def pair_scores(self, level: str, frames: Tensor, video_global: Tensor, tokens: Tensor, token_mask: Tensor,
                    text_global: Tensor, kind: str = "model") -> Tensor:
        """``[videos, texts]`` scores as the model ranks them (``kind``: model / global / finegrained)."""
        if kind == "model":
            kind = "finegrained" if level in self.finegrained else "global"
        if kind == "global":
            return video_global @ text_global.T
        if kind != "finegrained":
            raise ValueError(f"similarity '{kind}' is unknown; use model, global or finegrained")
        mask = torch.ones(frames.shape[:2], dtype=torch.bool, device=frames.device)
        return finegrained_similarity(frames, mask, tokens, token_mask, self.finegrained.get(level, FineGrainedConfig()),
                                      video_global, text_global)

    def _embed_padded(self, rows: list[list[str]], level: str) -> Tensor:
        b, k = len(rows), len(rows[0])
        return self.embed_text([t for r in rows for t in r], level).view(b, k, -1)

    # ------------------------------------------------------------ losses
    def _keys(self, batch: dict[str, Any]) -> dict[str, Tensor | None]:
        """Text identity per row (parent, children as a whole, clip texts) for same-text positives."""
        if not self.hparams.same_text_positives:
            return {"parent": None, "children": None, "texts": None}
        if "texts" in batch:
            rows = batch["texts"]
            return {"texts": text_keys([t for r in rows for t in r], self.device).view(len(rows), -1)}
        kids = ["\x1f".join(t for t, m in zip(r, mr) if m) for r, mr in zip(batch["children"], batch["child_mask"].tolist())]
        return {"parent": text_keys(batch["parent"], self.device), "children": text_keys(kids, self.device)}

    def level_loss(self, level: str, batch: dict[str, Any], frame_features: Tensor | None = None) -> Tensor:
        """``frame_features``: the batch's per-frame features when already computed (shared with the temporal term)."""
        if level in self.finegrained:
            return self._finegrained_loss(level, batch, frame_features)
        if frame_features is not None:
            v = self.video_heads[level](frame_features.mean(1))
        else:
            v = self.embed_video(self.video_input(batch), level)
        scale, keys = self.scales[level](), self._keys(batch)
        sigmoid = self.hparams.loss == "sigmoid"
        if level == "clip":
            texts = self._embed_padded(batch["texts"], level)
            if sigmoid:
                return sigmoid_milnce(v, texts, batch["text_mask"], scale, keys["texts"], bias=self.biases[level]())
            return milnce(v, texts, batch["text_mask"], scale, keys["texts"])
        parent = self.embed_text(batch["parent"], level)
        children = self._embed_padded(batch["children"], level)
        pair = partial(sigmoid_pairs, bias=self.biases[level]()) if sigmoid else infonce
        return hierarchical_loss(v, parent, children, batch["child_mask"], scale, tuple(self.hparams.hier_weights),
                                 keys["parent"], keys["children"], pair=pair)

    def _finegrained_loss(self, level: str, batch: dict[str, Any], frame_features: Tensor | None = None) -> Tensor:
        """Hierarchical loss whose segment↔parent term scores frames against the parent's words."""
        cfg, scale, keys = self.finegrained[level], self.scales[level](), self._keys(batch)
        if frame_features is not None:
            head = self.video_heads[level]
            frames, v = head(frame_features), head(frame_features.mean(1))
        else:
            frames, v = self.embed_frame_sequence(self.video_input(batch), level)
        tokens, tmask = self.embed_tokens(batch["parent"], level)
        parent = self.embed_text(batch["parent"], level)
        child = masked_mean(self._embed_padded(batch["children"], level), batch["child_mask"])
        fmask = torch.ones(frames.shape[:2], dtype=torch.bool, device=frames.device)
        terms = (finegrained_infonce(frames, fmask, tokens, tmask, scale, cfg, v, parent, keys["parent"]),
                 infonce(v, child, scale, keys["children"]), infonce(parent, child, scale, keys["parent"]))
        w = tuple(self.hparams.hier_weights)
        return sum(wi * t for wi, t in zip(w, terms)) / sum(w)

    def temporal_term(self, batch: dict[str, Any], frame_features: Tensor) -> Tensor | None:
        """The temporal contrastive loss of a video-level batch (:func:`temporal_nce`): its per-frame features in
        chunks of ``temporal_loss.chunk_frames``, each chunk's time the mean of its frames' times, against the
        sentences of the video's clips at the centres of their spans; None when the batch has no sentence."""
        if not batch.get("sentences") or not batch["sentences"][0]:
            return None
        n = self.temporal_cfg.chunk_frames
        chunks = torch.stack([f.mean(1) for f in frame_features.split(n, dim=1)], dim=1)          # [B, C, D]
        times = batch["frame_times"].to(self.device)
        chunk_times = torch.stack([t.mean(1) for t in times.split(n, dim=1)], dim=1)               # [B, C]
        sentences = self._embed_padded(batch["sentences"], "clip")
        centres = batch["sentence_spans"].to(self.device).mean(-1)
        return temporal_nce(self.video_heads["clip"](chunks), chunk_times, sentences, centres,
                            batch["sentence_mask"].to(self.device), self.temporal_cfg.temperature)

    def _step(self, batch: dict[str, dict[str, Any]], stage: str) -> Tensor:
        total, weight = 0.0, 0.0
        for lv in self.levels:
            if lv not in batch:
                continue
            feats, temporal, streams = None, None, None
            if self.pose_cfg is not None and self.pose_cfg.stream_loss:
                streams = self.video.stream_features(self.video_input(batch[lv]))
                feats = streams["fused"]
            if lv == "video" and self.temporal_weight and batch[lv].get("sentences"):
                if feats is None:  # one encoder pass for both terms
                    feats = self.video.frame_features(self.video_input(batch[lv]))
                temporal = self.temporal_term(batch[lv], feats)
            loss = self.level_loss(lv, batch[lv], feats)
            if streams is not None:  # SEDS: the pose-only and RGB-only embeddings trained beside the fused one
                w = self.pose_cfg.stream_loss
                extra = self.level_loss(lv, batch[lv], streams["pose"]) + self.level_loss(lv, batch[lv], streams["rgb"])
                loss = (loss + w * extra) / (1 + 2 * w)
            bs = batch[lv]["frames"].shape[0]
            self.log(f"{stage}/loss_{lv}", loss, batch_size=bs, sync_dist=True,
                     on_step=stage == "train", on_epoch=True)
            total = total + self.loss_weights[lv] * loss
            weight += self.loss_weights[lv]
            if temporal is not None:
                self.log(f"{stage}/loss_temporal", temporal, batch_size=bs, sync_dist=True,
                         on_step=stage == "train", on_epoch=True)
                total = total + self.temporal_weight * temporal
                weight += self.temporal_weight
        if weight == 0:
            raise RuntimeError(f"batch has none of the model's levels {self.levels}: got {list(batch)}")
        loss = total / weight
        self.log(f"{stage}/loss", loss, prog_bar=True, sync_dist=True, on_step=stage == "train",
                 on_epoch=True, batch_size=1)
        return loss

    def training_step(self, batch: dict[str, dict[str, Any]], batch_idx: int) -> Tensor:
        loss = self._step(batch, "train")
        for lv in self.levels:
            self.log(f"temperature/{lv}", 1.0 / self.scales[lv]().detach(), on_step=True, on_epoch=False)
            if self.hparams.loss == "sigmoid":
                self.log(f"bias/{lv}", self.biases[lv]().detach(), on_step=True, on_epoch=False)
        return loss

    def validation_step(self, batch: dict[str, dict[str, Any]], batch_idx: int) -> Tensor:
        return self._step(batch, "val")

    def test_step(self, batch: dict[str, dict[str, Any]], batch_idx: int) -> Tensor:
        """``hvl test``: the losses of ``validate`` on the config's ``data.test`` manifest, logged as ``test/…``."""
        return self._step(batch, "test")

    def on_fit_start(self) -> None:
        # Frozen encoders stay in eval mode on purpose (no dropout: cached and fresh embeddings agree; no batch-norm
        # drift). Lightning warns about eval-mode modules at the start of training; silence exactly that count when
        # every one of them trains nothing, so an eval-mode module that does train still gets its warning.
        evals = [n for n, m in self.named_modules() if not m.training]
        frozen = [n for n, m in self.named_modules()
                  if n and (ps := list(m.parameters())) and not any(p.requires_grad for p in ps)]
        if evals and all(any(n == f or n.startswith(f + ".") for f in frozen) for n in evals):
            warnings.filterwarnings("ignore", message=f"Found {len(evals)} module\\(s\\) in eval mode at the start")

    # ------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        meta = {"class_path": f"{type(self).__module__}.{type(self).__qualname__}"}
        for logger in self.trainer.loggers if self._trainer else []:
            if hasattr(logger, "run_id") and type(logger).__name__.endswith("MLFlowLogger"):
                meta["mlflow_run_id"] = logger.run_id
        checkpoint["hvl"] = meta
        if self.backbone is not None:  # everything needed to rebuild it without the original directory
            meta["backbone_spec"] = self.backbone.spec()
        if self.preprocess is not None:
            meta["preprocess"] = self.preprocess.model_dump(mode="json")
        if self.text.frozen and self.backbone is None:  # frozen weights come back from text_encoder.path: keep checkpoints small
            checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items()
                                        if not k.startswith("text.model.")}
            meta["frozen_text_dropped"] = True

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if checkpoint.get("hvl", {}).get("frozen_text_dropped") and self.backbone is None:
            sd = checkpoint["state_dict"]
            for k, v in self.text.model.state_dict().items():
                sd.setdefault(f"text.model.{k}", v)

    # ------------------------------------------------------------ optimisation
    def configure_optimizers(self):
        h = self.hparams
        decay, no_decay, text, pretrained = [], [], [], []
        for name, p in self.named_parameters():
            if not p.requires_grad:
                continue
            if name.startswith("text.model."):
                text.append(p)
            elif name.startswith("backbone."):
                pretrained.append(p)
            elif p.ndim < 2 or name.startswith(("scales.", "biases.")):
                no_decay.append(p)
            else:
                decay.append(p)
        groups = [{"params": decay, "weight_decay": h.weight_decay, "lr": h.lr},
                  {"params": no_decay, "weight_decay": 0.0, "lr": h.lr}]
        if text:
            groups.append({"params": text, "weight_decay": h.weight_decay, "lr": h.text_lr})
        if pretrained:
            groups.append({"params": pretrained, "weight_decay": h.weight_decay, "lr": h.backbone_lr})
        opt = torch.optim.AdamW(groups)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warm = min(h.warmup_steps, total // 2)

        def factor(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            progress = min(1.0, (step - warm) / max(1, total - warm))
            return h.min_lr_ratio + (1 - h.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
