"""DINO: self-distillation with no labels (https://arxiv.org/abs/2104.14294).

mmpretrain 1.2.0 ships no DINO (its ``projects/dino`` never updates the
teacher), so this is ours. The prototype head is pluggable: see
:mod:`gmproto_mm.models.heads.base_prototype_head`.
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.logging import MessageHub
from mmpretrain.models import BaseSelfSupervisor
from mmpretrain.models.utils import CosineEMA
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch.nn.modules.batchnorm import _BatchNorm

from ..necks.dino_neck import pool_features


def group_same_shape(views: Sequence[torch.Tensor]) -> List[List[int]]:
    """Indices of consecutive views that share a shape (one forward each)."""
    groups: List[List[int]] = []
    for i, view in enumerate(views):
        if groups and views[groups[-1][-1]].shape == view.shape:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def check_input_channels(backbone: nn.Module, inputs: torch.Tensor) -> None:
    """Raise ``ValueError`` if ``inputs`` ``(B, C, H, W)`` has another ``C``
    than ``backbone``'s first convolution takes (no check without one)."""
    conv = next((m for m in backbone.modules() if isinstance(m, nn.Conv2d)),
                None)
    if conv is None or inputs.dim() != 4 or \
            inputs.shape[1] == conv.in_channels:
        return
    raise ValueError(
        f'the backbone takes {conv.in_channels}-channel images (the '
        f"config's backbone.in_channels), got inputs of shape "
        f'{tuple(int(side) for side in inputs.shape)}. mmpretrain\'s '
        'tools/analysis_tools/get_flops.py always feeds 3 channels; count '
        'this model with `python tools/analysis/get_flops.py CONFIG`, which '
        'takes the channels and the image size from the config. Elsewhere, '
        f'pass {conv.in_channels}-channel images (ToGray first in a test '
        'pipeline makes them from colour files)')


@MODELS.register_module()
class DINO(BaseSelfSupervisor):
    """DINO with a pluggable prototype head; also CARP's student-teacher.

    Student = backbone + neck + head; teacher = EMA of backbone + neck (+ the
    head's :meth:`teacher_module`, unless the head shares one bank). CARP
    (Silva & Ramirez Rivera, NeurIPS 2023) is the same algorithm with
    ``CARPLoss``: EMA teacher on the global crops, multi-crop student.

    Args:
        backbone (dict): Backbone config: a ViT with
            ``out_type='cls_token'``, or a CNN such as ``ResNet`` (its last
            feature map is average-pooled).
        neck (dict): ``DINONeck`` config.
        head (dict): A prototype head config (``DINOHead``,
            ``DecoupledGMMHead``), with DINO's loss (``DINOLoss``) or
            CARP's (``CARPLoss``, behind ``DINONeck(normalize=False)``).
        base_momentum (float): Teacher EMA start momentum in mmengine's
            convention, where the momentum weighs the *student*:
            ``teacher = (1 - m) * teacher + m * student``. DINO's 0.996 is
            ``m = 1 - 0.996 = 0.004``. Defaults to 0.004.
        end_momentum (float): Momentum at the end of training (cosine
            schedule over ``max_iters``); DINO's 1.0 is 0. Defaults to 0.
        num_global_views (int): The first views are global (the teacher sees
            only these). Defaults to 2.
        predict_with (str): ``'teacher'`` (DINO's evaluation) or
            ``'student'`` weights in ``predict`` mode and
            :meth:`extract_feat`. Defaults to ``'teacher'``.
        pretrained (str, optional): Checkpoint to load.
        data_preprocessor (dict, optional): Defaults to
            ``SelfSupDataPreprocessor``.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 base_momentum: float = 0.004,
                 end_momentum: float = 0.,
                 num_global_views: int = 2,
                 predict_with: str = 'teacher',
                 pretrained: Optional[str] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(
            backbone=backbone,
            neck=neck,
            head=head,
            pretrained=pretrained,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        if num_global_views < 1:
            raise ValueError(
                f'num_global_views must be >= 1, got {num_global_views}')
        if predict_with not in ('teacher', 'student'):
            raise ValueError("predict_with must be 'teacher' or 'student', "
                             f'got {predict_with!r}')
        self._check_channels(self.head, 'head')
        self.num_global_views = num_global_views
        self.predict_with = predict_with
        self.teacher = CosineEMA(
            self._ema_source(),
            momentum=base_momentum,
            end_momentum=end_momentum)

    def _check_channels(self, head: nn.Module, name: str) -> None:
        """The neck's output size must be the head's ``in_channels``."""
        neck_out = getattr(self.neck, 'out_channels', None)
        if neck_out is not None and neck_out != head.in_channels:
            raise ValueError(
                f'neck out_channels ({neck_out}) must equal {name} '
                f'in_channels ({head.in_channels})')

    def _ema_source(self) -> nn.ModuleDict:
        """The student parts the teacher averages (not registered twice)."""
        parts = dict(backbone=self.backbone, neck=self.neck)
        head_part = self.head.teacher_module()
        if head_part is not None:
            parts['head'] = head_part
        return nn.ModuleDict(parts)

    def _teacher_head(self) -> Optional[nn.Module]:
        teacher = self.teacher.module
        return teacher['head'] if 'head' in teacher else None

    def train(self, mode: bool = True) -> 'DINO':
        """Keep the teacher in eval mode: like DINO's, it has no drop path.

        Its BatchNorm layers (CNN backbones, a BN neck) follow ``mode``, as
        in DINO, whose teacher is never put in eval mode: a training teacher
        normalises with the statistics of its batch (the running ones it
        keeps are the student's, copied by the EMA)."""
        super().train(mode)
        self.teacher.train(False)
        for module in self.teacher.modules():
            if isinstance(module, _BatchNorm):
                module.train(mode)
        return self

    @staticmethod
    def _embed(backbone: nn.Module, neck: nn.Module,
               views: Sequence[torch.Tensor]) -> List[torch.Tensor]:
        """``(B, D)`` embeddings per view; same-size views share a forward."""
        embeds: List[torch.Tensor] = [None] * len(views)  # type: ignore
        for group in group_same_shape(views):
            z = neck(backbone(torch.cat([views[i] for i in group])))[0]
            for i, chunk in zip(group, z.chunk(len(group))):
                embeds[i] = chunk
        return embeds

    def _check_inputs(self, inputs: List[torch.Tensor]) -> None:
        """Multi-crop views present, and the Runner's ``max_iters`` known."""
        name = type(self).__name__
        if not isinstance(inputs, (list, tuple)) or \
                len(inputs) <= self.num_global_views:
            got = len(inputs) if isinstance(inputs, (list, tuple)) else 1
            raise ValueError(
                f'{name} needs more than num_global_views='
                f'{self.num_global_views} views per image (use MultiView), '
                f'got {got}')
        if MessageHub.get_current_instance().get_info('max_iters') is None:
            raise ValueError(
                f"{name}'s teacher momentum follows a cosine over "
                "'max_iters', which the Runner puts in the message hub; "
                'outside a Runner call MessageHub.get_current_instance()'
                ".update_info('max_iters', N) first")

    def loss(self, inputs: List[torch.Tensor],
             data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        """Multi-crop self-distillation loss.

        Args:
            inputs (list[Tensor]): Views ``(B, C, H_v, W_v)``, the
                ``num_global_views`` global views first.
            data_samples (list[DataSample]): Unused.

        Returns:
            dict[str, Tensor]: Loss dict of the head.
        """
        self._check_inputs(inputs)
        global_views = inputs[:self.num_global_views]
        with torch.no_grad():
            self.teacher.update_parameters(self._ema_source())
            teacher = self.teacher.module
            teacher_embeds = self._embed(teacher['backbone'],
                                         teacher['neck'], global_views)
        student_embeds = self._embed(self.backbone, self.neck, inputs)
        return self.head.loss(student_embeds, teacher_embeds,
                              self._teacher_head(),
                              iteration=self.training_iteration())

    def training_iteration(self) -> int:
        """0-based index of the training step in progress, from the
        teacher EMA's update count (a buffer: checkpointed, so a resumed
        run continues the count; equal on every rank). Valid after the
        step's teacher update; heads pass it to losses that schedule by
        iteration (``CARPLoss``'s partitions)."""
        return int(self.teacher.steps) - 1

    def forward(self,
                inputs: Union[torch.Tensor, List[torch.Tensor]],
                data_samples: Optional[List[DataSample]] = None,
                mode: str = 'tensor'):
        """``'tensor'``, ``'loss'`` or ``'predict'`` (features for eval)."""
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        return super().forward(inputs, data_samples, mode)

    @torch.no_grad()
    def predict(self,
                inputs: Union[torch.Tensor, List[torch.Tensor]],
                data_samples: Optional[List[DataSample]] = None
                ) -> List[DataSample]:
        """Backbone [CLS] features and prototype assignments.

        Args:
            inputs (Tensor | list[Tensor]): ``(B, C, H, W)`` (first view if a
                list).
            data_samples (list[DataSample], optional): Filled in place.

        Returns:
            list[DataSample]: Each with ``backbone_feat`` ``(C,)`` (CNN
            feature maps average-pooled),
            ``embedding`` ``(D,)`` (the neck output the prototypes score),
            ``prototype_probs`` ``(K,)`` (teacher assignment) and
            ``prototypes`` ``(K, D)``, the bank they refer to (one shared
            tensor, not a copy per sample).
        """
        _, neck, head_part = self._predict_parts()
        feats = pool_features(self.extract_feat(inputs))
        return self._pack_predictions(feats, neck((feats, ))[0], head_part,
                                      data_samples)

    def extract_feat(self, inputs: Union[torch.Tensor, List[torch.Tensor]]
                     ) -> Tuple[torch.Tensor, ...]:
        """Backbone outputs of the network that :meth:`predict` uses.

        mmpretrain's ``FeatureExtractor``, ``get_model(...).extract_feat``,
        ``vis_tsne.py``, ``get_flops.py`` and ``forward(mode='tensor')``
        call this; like the k-NN evaluation and the linear probe, it
        follows ``predict_with``: the EMA teacher's backbone by default
        (mmpretrain's base class would give the student's).

        Args:
            inputs (Tensor | list[Tensor]): ``(B, C, H, W)`` (first view if
                a list).

        Returns:
            tuple[Tensor]: The backbone's outputs, e.g. ``(B, C)`` for a
            ViT with ``out_type='cls_token'``, ``(B, 1 + N, C)`` with
            ``'raw'``, ``(B, C, H', W')`` for a ResNet stage.

        Raises:
            ValueError: If the images have another number of channels than
                the backbone takes, e.g. the 3 that mmpretrain's
                ``get_flops.py`` feeds to a gray (1-channel) config; the
                message names the tool that counts such a model.
        """
        if isinstance(inputs, (list, tuple)):
            inputs = inputs[0]
        backbone, _, _ = self._predict_parts()
        check_input_channels(backbone, inputs)
        return backbone(inputs)

    def _predict_parts(self) -> Tuple[nn.Module, nn.Module,
                                      Optional[nn.Module]]:
        """Backbone, neck and head part ``predict`` uses (``predict_with``)."""
        if self.predict_with == 'teacher':
            net = self.teacher.module
            return net['backbone'], net['neck'], self._teacher_head()
        return self.backbone, self.neck, None

    def _pack_predictions(self, feats: torch.Tensor, embeds: torch.Tensor,
                          head_part: Optional[nn.Module],
                          data_samples: Optional[List[DataSample]]
                          ) -> List[DataSample]:
        """Fill one sample per row of ``feats`` ``(B, C)`` and ``embeds``
        ``(B, D)`` with the fields :meth:`predict` documents."""
        probs = self.head.assign(embeds, head_part)
        bank = self.head.bank(head_part)
        if data_samples is None:
            data_samples = [DataSample() for _ in range(feats.shape[0])]
        for sample, feat, embed, prob in zip(data_samples, feats, embeds,
                                             probs):
            sample.set_field(feat.float(), 'backbone_feat')
            sample.set_field(embed.float(), 'embedding')
            sample.set_field(prob, 'prototype_probs')
            sample.set_field(bank, 'prototypes')
        return data_samples
