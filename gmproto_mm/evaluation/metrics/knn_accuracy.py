"""Weighted k-NN accuracy on backbone features (DINO's protocol)."""
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.evaluator import BaseMetric
from mmpretrain.registry import METRICS

from ..functional.knn import (per_group_accuracy, topk_accuracy,
                              weighted_knn_predict)


@METRICS.register_module()
class KNNAccuracy(BaseMetric):
    """Weighted k-NN classification of query features against a bank.

    Expects data samples with ``backbone_feat`` ``(C,)`` (``DINO`` predict
    mode), ``gt_label`` and ``knn_split`` in ``{'bank', 'query'}``
    (``KNNDataset``). Cosine similarity, the ``k`` nearest bank features
    vote with weight ``exp(sim / T)``. Reports ``top1``, ``top5`` (percent)
    and, when the dataset meta has ``class_groups``, ``top1_<group>``.

    Args:
        k (int): Neighbours. Defaults to 20.
        temperature (float): T. Defaults to 0.07.
        topk (Sequence[int]): Reported top-k accuracies. Defaults to (1, 5).
        collect_device (str): ``'cpu'`` or ``'gpu'``. Defaults to 'cpu'.
        prefix (str, optional): Defaults to ``'knn'``.
    """

    default_prefix = 'knn'

    def __init__(self,
                 k: int = 20,
                 temperature: float = 0.07,
                 topk: Sequence[int] = (1, 5),
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if k < 1 or temperature <= 0:
            raise ValueError(f'k must be >= 1 and temperature > 0, got {k} '
                             f'and {temperature}')
        self.k = k
        self.temperature = temperature
        self.topk = tuple(topk)

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            if 'backbone_feat' not in sample or 'knn_split' not in sample:
                raise ValueError(
                    'KNNAccuracy needs backbone_feat (DINO predict mode) and '
                    'knn_split (KNNDataset) in every data sample')
            self.results.append(
                dict(feat=sample['backbone_feat'].float().cpu(),
                     label=int(sample['gt_label']),
                     split=sample['knn_split']))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        bank = [r for r in results if r['split'] == 'bank']
        query = [r for r in results if r['split'] == 'query']
        if not bank or not query:
            raise ValueError(f'KNNAccuracy got {len(bank)} bank and '
                             f'{len(query)} query samples; both are needed')
        bank_labels = torch.tensor([r['label'] for r in bank])
        labels = torch.tensor([r['label'] for r in query])
        classes = (self.dataset_meta or {}).get('classes')
        num_classes = len(classes) if classes else int(
            max(bank_labels.max(), labels.max())) + 1
        scores = weighted_knn_predict(
            torch.stack([r['feat'] for r in query]),
            torch.stack([r['feat'] for r in bank]), bank_labels, num_classes,
            k=self.k, temperature=self.temperature)
        metrics = topk_accuracy(scores, labels, self.topk)
        groups = (self.dataset_meta or {}).get('class_groups')
        if groups:
            per_group = per_group_accuracy(scores.argmax(1), labels, groups)
            metrics.update({f'top1_{g}': v for g, v in per_group.items()})
        return metrics
