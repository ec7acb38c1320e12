"""iBOT: image BERT pre-training with an online tokenizer
(https://arxiv.org/abs/2111.07832), with pluggable prototype heads."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.dist import get_rank
from mmpretrain.models.utils import CosineEMA
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ..utils.block_mask import block_masks, check_block_mask_args
from .dino import DINO, group_same_shape


@MODELS.register_module()
class IBOT(DINO):
    """DINO's [CLS] self-distillation plus masked-patch self-distillation.

    The student sees the global views with blockwise-masked patches (and the
    local views unmasked); the teacher sees the global views unmasked. The
    shared neck (``DINONeck``, iBOT's shared head MLP) projects [CLS] and
    patch tokens; ``head`` scores [CLS] embeddings against its prototypes
    (DINO's loss, ``loss``) and ``patch_head`` scores the patch embeddings at
    the masked positions against its own prototypes (``loss_patch``, an
    ``IBOTPatchLoss``). Both heads may be joint (``DINOHead``: the teacher
    keeps EMA copies of both last layers) or decoupled (``DecoupledGMMHead``:
    the patch bank caches the teacher's masked-patch embeddings, the [CLS]
    bank the teacher's global [CLS] embeddings, for ``OnlineEMHook``).

    Args:
        backbone (dict): A backbone that takes ``(x, mask)`` and returns all
            tokens ``(B, 1 + N, C)``: ``MaskedVisionTransformer`` with
            ``out_type='raw'``.
        neck (dict): ``DINONeck`` config, shared by [CLS] and patch tokens.
        head (dict): [CLS] prototype head (``DINOHead``,
            ``DecoupledGMMHead``) with ``DINOLoss``.
        patch_head (dict): Patch prototype head with
            ``loss=dict(type='IBOTPatchLoss', ...)``.
        mask_ratio (tuple[float, float]): Masked share range of a masked
            view. Defaults to (0.1, 0.5) (iBOT: 0.3 +- 0.2).
        mask_prob (float): Probability that a global view of an image is
            masked at all. Defaults to 0.5 (iBOT).
        mask_min_patches (int): Smallest mask rectangle, in patches
            (BEiT/iBOT: ``(min(H, W) // 3) ** 2``). Defaults to 4.
        patch_loss_weight (float): iBOT's lambda2. Defaults to 1.
        **kwargs: ``base_momentum``, ``end_momentum``, ``num_global_views``,
            ``predict_with``, ``pretrained``, ``data_preprocessor``,
            ``init_cfg`` of :class:`DINO`.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 patch_head: dict,
                 mask_ratio: Tuple[float, float] = (0.1, 0.5),
                 mask_prob: float = 0.5,
                 mask_min_patches: int = 4,
                 patch_loss_weight: float = 1.,
                 base_momentum: float = 0.004,
                 end_momentum: float = 0.,
                 **kwargs) -> None:
        super().__init__(backbone, neck, head, base_momentum=base_momentum,
                         end_momentum=end_momentum, **kwargs)
        if not callable(getattr(self.backbone, 'patch_grid', None)) or \
                getattr(self.backbone, 'out_type', 'raw') != 'raw':
            raise ValueError(
                'IBOT needs a backbone that takes a patch mask and returns '
                'all tokens: dict(type="MaskedVisionTransformer", '
                "out_type='raw', ...)")
        check_block_mask_args((1, 1), mask_ratio, mask_prob,
                              mask_min_patches, (0.3, 1 / 0.3))
        if patch_loss_weight < 0:
            raise ValueError(
                f'patch_loss_weight must be >= 0, got {patch_loss_weight}')
        if isinstance(patch_head, dict) and \
                patch_head.get('type') == 'DecoupledGMMHead':
            # its errors name the patch head's config key
            patch_head = dict(patch_head, config_key='model.patch_head')
        self.patch_head = MODELS.build(patch_head)
        self._check_channels(self.patch_head, 'patch_head')
        self.mask_ratio = tuple(mask_ratio)
        self.mask_prob = mask_prob
        self.mask_min_patches = mask_min_patches
        self.patch_loss_weight = patch_loss_weight
        # DINO built the teacher before the patch head existed: rebuild it
        # with the patch head's EMA part (same momentum convention: mmengine's
        # momentum weighs the *student*).
        self.teacher = CosineEMA(
            self._ema_source(),
            momentum=base_momentum,
            end_momentum=end_momentum)

    def _ema_source(self) -> nn.ModuleDict:
        parts = super()._ema_source()
        patch_head = getattr(self, 'patch_head', None)  # None inside DINO
        if patch_head is not None and patch_head.teacher_module() is not None:
            parts['patch_head'] = patch_head.teacher_module()
        return parts

    def _teacher_patch_head(self) -> Optional[nn.Module]:
        teacher = self.teacher.module
        return teacher['patch_head'] if 'patch_head' in teacher else None

    def _sample_masks(self, views: Sequence[torch.Tensor]
                      ) -> List[torch.Tensor]:
        """Bool ``(B, N)`` block mask per view, on the view's device.

        Seeded from torch's global RNG (the Runner's seed) plus the rank:
        ranks share that seed by default and would mask alike otherwise.
        """
        seed = int(torch.randint(2**62, ())) + 1_000_003 * get_rank()
        generator = torch.Generator().manual_seed(seed)
        return [
            block_masks(view.shape[0],
                        self.backbone.patch_grid(view.shape[-2:]),
                        self.mask_ratio, self.mask_prob,
                        self.mask_min_patches, generator=generator).to(
                            view.device) for view in views
        ]

    @staticmethod
    def _tokens(backbone: nn.Module, views: Sequence[torch.Tensor],
                masks: Sequence[Optional[torch.Tensor]]
                ) -> List[torch.Tensor]:
        """All tokens ``(B, 1 + N, C)`` per view; same-size views share a
        forward (unmasked views of a masked group get an all-False mask)."""
        tokens: List[torch.Tensor] = [None] * len(views)  # type: ignore
        for group in group_same_shape(views):
            x = torch.cat([views[i] for i in group])
            group_masks = [masks[i] for i in group]
            mask = None
            if any(m is not None for m in group_masks):
                ref = next(m for m in group_masks if m is not None)
                mask = torch.cat([
                    torch.zeros_like(ref) if m is None else m
                    for m in group_masks
                ])
            out = backbone(x, mask)[-1]
            if out.dim() != 3:
                raise ValueError(
                    'IBOT needs all tokens (B, 1 + N, C) from the backbone '
                    f"(out_type='raw'), got {tuple(out.shape)}")
            for i, chunk in zip(group, out.chunk(len(group))):
                tokens[i] = chunk
        return tokens

    def loss(self, inputs: List[torch.Tensor],
             data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        """[CLS] loss of all views and masked-patch loss of global views.

        Args:
            inputs (list[Tensor]): Views ``(B, C, H_v, W_v)``, the
                ``num_global_views`` global views first.
            data_samples (list[DataSample]): Unused.

        Returns:
            dict[str, Tensor]: The [CLS] head's loss dict (``loss``, ...)
            plus ``loss_patch``.
        """
        self._check_inputs(inputs)
        num_global = self.num_global_views
        global_views = inputs[:num_global]
        masks = self._sample_masks(global_views)
        with torch.no_grad():
            self.teacher.update_parameters(self._ema_source())
            teacher = self.teacher.module
            t_tokens = self._tokens(teacher['backbone'], global_views,
                                    [None] * num_global)
            t_cls = [teacher['neck']((t[:, 0], ))[0] for t in t_tokens]
            t_patch = [
                teacher['neck']((t[:, 1:][m], ))[0]
                for t, m in zip(t_tokens, masks)
            ]
        s_tokens = self._tokens(self.backbone, inputs, masks + [None] *
                                (len(inputs) - num_global))
        s_cls = [self.neck((t[:, 0], ))[0] for t in s_tokens]
        s_patch = [
            self.neck((t[:, 1:][m], ))[0]
            for t, m in zip(s_tokens[:num_global], masks)
        ]
        losses = self.head.loss(s_cls, t_cls, self._teacher_head(),
                                iteration=self.training_iteration())

        # masked tokens of all global views at once, image index v * B + b
        batch = global_views[0].shape[0]
        image_index = torch.cat([
            m.nonzero()[:, 0] + v * batch for v, m in enumerate(masks)
        ])
        s_logits = self.patch_head.logits(torch.cat(s_patch))
        with torch.no_grad():
            t_logits = self.patch_head.logits(
                torch.cat(t_patch), self._teacher_patch_head())
        self.patch_head.observe_teacher(t_patch)
        loss_patch = self.patch_head.loss_module(s_logits, t_logits,
                                                 image_index,
                                                 num_global * batch)
        losses['loss_patch'] = self.patch_loss_weight * loss_patch
        return losses

    @torch.no_grad()
    def predict(self,
                inputs: Union[torch.Tensor, List[torch.Tensor]],
                data_samples: Optional[List[DataSample]] = None
                ) -> List[DataSample]:
        """As :meth:`DINO.predict`: ``backbone_feat`` ``(C,)`` is the [CLS]
        token after the final norm, ``embedding`` ``(D,)`` its neck output,
        ``prototype_probs`` ``(K,)`` the [CLS] head's teacher assignment,
        ``prototypes`` ``(K, D)`` its bank."""
        _, neck, head_part = self._predict_parts()
        feats = self.extract_feat(inputs)[-1][:, 0]
        return self._pack_predictions(feats, neck((feats, ))[0], head_part,
                                      data_samples)
