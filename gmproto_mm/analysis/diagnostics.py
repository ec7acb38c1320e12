"""What separates heads over training: a hook that logs, every few
iterations, the teacher targets' entropy, student--teacher agreement,
assignment churn on a fixed probe set, alignment and uniformity of the
teacher's embeddings (Wang & Isola, https://arxiv.org/abs/2005.10242) and
an online k-NN (``seed_study.py --diagnostics`` adds it to a run).

Importing this module registers :class:`TrainingDiagnosticsHook`; ``import
gmproto_mm`` does not. The hook leaves training bit for bit as it is: it
measures under ``torch.no_grad()`` in eval mode (no drop path) and
restores every random generator it could touch.
"""
import os.path as osp
import random
from typing import Dict, Optional

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.dataset import default_collate
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmpretrain.registry import DATASETS, HOOKS
from mmpretrain.utils import get_ori_model

from ..datasets import KNNDataset
from ..evaluation.functional import usage_perplexity, weighted_knn_predict
from ..models.necks.dino_neck import pool_features


@HOOKS.register_module()
class TrainingDiagnosticsHook(Hook):
    """Every ``interval`` iterations (and at the last), on the main process,
    log ``diag_<name>`` to the message hub:

    * on a fixed probe set (the first ``probe_images`` queries of the
      config's k-NN test set, its test pipeline): ``target_entropy`` (nats)
      and ``target_top1`` (mean largest probability) of the teacher
      targets the loss trains on (the mixture posterior for a head with
      ``teacher_targets='responsibilities'``, else the loss's
      ``teacher_targets``: centred or Sinkhorn, at the current
      temperature); ``agreement``, the share of images whose student
      prediction (``softmax(logits / student_temp)``) has the targets'
      argmax; ``cross_entropy`` of the targets against it; ``churn``, the
      share whose target argmax changed since the last measurement;
      ``used`` and ``perplexity`` of the target argmaxes;
    * on the training batch's first two (global) views, the teacher's
      unit-norm embeddings ``z1``, ``z2``: ``alignment`` = mean ``||z1 -
      z2||^2`` and ``uniformity`` = ``log`` mean over pairs of images of
      ``exp(-2 ||z1_i - z1_j||^2)``;
    * every ``knn_interval`` iterations: ``knn_top1``, the weighted k-NN
      (k = 20, T = 0.07) of the probe against the first ``bank_images``
      of the k-NN bank, on the features ``predict()`` uses.

    Cost per measurement: two forward passes over the probe and the
    batch's global views; the k-NN one over the bank.

    Args:
        interval (int): Iterations between measurements. Defaults to 100.
        knn_interval (int): Iterations between k-NN measurements (0: never).
            Defaults to 1500.
        probe_images (int): Probe images. Defaults to 1000.
        bank_images (int): k-NN bank images. Defaults to 5000.
    """

    priority = 'NORMAL'  # after OnlineEMHook, before LoggerHook logs it

    def __init__(self, interval: int = 100, knn_interval: int = 1500,
                 probe_images: int = 1000, bank_images: int = 5000) -> None:
        if interval < 1 or knn_interval < 0 or probe_images < 2 or \
                bank_images < 1:
            raise ValueError(
                'interval >= 1, knn_interval >= 0, probe_images >= 2 and '
                f'bank_images >= 1, got {interval}, {knn_interval}, '
                f'{probe_images}, {bank_images}')
        self.interval = interval
        self.knn_interval = knn_interval
        self.probe_images = probe_images
        self.bank_images = bank_images
        self._probe: Optional[dict] = None
        self._bank: Optional[dict] = None
        self._last_argmax: Optional[torch.Tensor] = None

    def before_train(self, runner) -> None:
        if not is_main_process():
            return
        knn = runner.cfg.test_dataloader.dataset
        self._probe = _images(KNNDataset.split_config(knn, 'query'),
                              self.probe_images)
        if self.knn_interval:
            self._bank = _images(KNNDataset.split_config(knn, 'bank'),
                                 self.bank_images)
        self._last_argmax = None

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        last = self.is_last_train_iter(runner)
        if not is_main_process() or not (
                self.every_n_train_iters(runner, self.interval) or last):
            return
        knn = bool(self.knn_interval) and (
            self.every_n_train_iters(runner, self.knn_interval) or last)
        model = get_ori_model(runner.model)
        states = (torch.get_rng_state(), np.random.get_state(),
                  random.getstate())
        training = model.training
        model.train(False)
        try:
            with torch.no_grad():
                stats = self._measure(model, data_batch, knn)
        finally:
            model.train(training)
            torch.set_rng_state(states[0])
            np.random.set_state(states[1])
            random.setstate(states[2])
        for key, value in stats.items():
            runner.message_hub.update_scalar(f'train/diag_{key}', value)

    def _measure(self, model, data_batch: Optional[dict],
                 knn: bool) -> Dict[str, float]:
        head, teacher = model.head, model.teacher.module
        probe = _preprocess(model, self._probe['inputs'])
        t_embeds = teacher['neck'](teacher['backbone'](probe))[0]
        s_embeds = model.neck(model.backbone(probe))[0]
        targets = training_targets(head, t_embeds, model._teacher_head())
        temp = getattr(head.loss_module, 'student_temp', 1.0)
        log_pred = F.log_softmax(head.logits(s_embeds).float() / temp, dim=1)
        argmax = targets.argmax(dim=1)
        stats = dict(
            target_entropy=float(torch.special.entr(targets).sum(1).mean()),
            target_top1=float(targets.max(dim=1).values.mean()),
            agreement=float((log_pred.argmax(dim=1) == argmax).float()
                            .mean()),
            cross_entropy=float(-(targets * log_pred).sum(1).mean()),
            used=float(argmax.unique().numel()),
            perplexity=usage_perplexity(torch.bincount(
                argmax, minlength=targets.shape[1])))
        if self._last_argmax is not None:
            stats['churn'] = float((argmax != self._last_argmax).float()
                                   .mean())
        self._last_argmax = argmax
        if data_batch is not None:
            views = model.data_preprocessor(data_batch, False)['inputs']
            z1, z2 = (F.normalize(teacher['neck'](teacher['backbone'](v))[0]
                                  .float(), dim=1) for v in views[:2])
            stats['alignment'] = float((z1 - z2).pow(2).sum(1).mean())
            stats['uniformity'] = float(
                torch.pdist(z1).pow(2).mul(-2).exp().mean().log())
        if knn:
            stats['knn_top1'] = self._knn_top1(model, probe)
        return stats

    def _knn_top1(self, model, probe: torch.Tensor) -> float:
        feats = []
        for start in range(0, len(self._bank['inputs']), 256):
            inputs = _preprocess(model,
                                 self._bank['inputs'][start:start + 256])
            feats.append(pool_features(model.extract_feat(inputs)))
        labels, truth = self._bank['labels'], self._probe['labels']
        classes = int(max(labels.max(), truth.max())) + 1
        query = pool_features(model.extract_feat(probe))
        scores = weighted_knn_predict(query, torch.cat(feats), labels,
                                      classes)
        hits = scores.argmax(dim=1) == truth
        return 100.0 * float(hits.float().mean())


def training_targets(head, teacher_embeds: torch.Tensor,
                     teacher_head=None) -> torch.Tensor:
    """``(B, K)`` targets the head's loss trains on for these teacher
    embeddings, as now (no state changes): the mixture posterior of a
    decoupled head with posterior targets, else the loss's
    ``teacher_targets`` (DINO: centred or Sinkhorn at the current
    temperature), else the head's evaluation assignment."""
    use_posterior = getattr(head, '_use_responsibilities', None)
    if use_posterior is not None and use_posterior():
        return head.gmm.responsibilities(teacher_embeds)
    loss = head.loss_module
    if callable(getattr(loss, 'teacher_targets', None)):
        logits = head.logits(teacher_embeds, teacher_head)
        return loss.teacher_targets([logits])[0]
    return head.assign(teacher_embeds, teacher_head)


def _preprocess(model, images: torch.Tensor) -> torch.Tensor:
    """Collated images as the model's data preprocessor gives them."""
    batch = dict(inputs=images, data_samples=None)
    return model.data_preprocessor(batch, False)['inputs']


def _images(split: dict, count: int) -> dict:
    """The first ``count`` items of a data set config, collated:
    ``inputs`` (as the data preprocessor takes them) and ``labels``."""
    dataset = DATASETS.build(split)
    items = [dataset[i] for i in range(min(count, len(dataset)))]
    batch = default_collate(items)
    labels = torch.tensor([int(s.gt_label) for s in batch['data_samples']])
    return dict(inputs=batch['inputs'], labels=labels)


def diagnostics_config(config: str) -> str:
    """The text of a config that inherits ``config`` and adds
    :class:`TrainingDiagnosticsHook` (nothing else changes)."""
    return '\n'.join([
        '# Written by tools/analysis/seed_study.py --diagnostics: the config',
        '# below with TrainingDiagnosticsHook added.',
        f'_base_ = [{osp.abspath(config)!r}]',
        "custom_imports = dict(imports=['gmproto_mm', "
        "'gmproto_mm.analysis.diagnostics'], allow_failed_imports=False)",
        'custom_hooks = _base_.custom_hooks + [',
        "    dict(type='TrainingDiagnosticsHook')]",
    ]) + '\n'
