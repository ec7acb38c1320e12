"""Prototype collapse and usage, for any prototype head."""
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.evaluator import BaseMetric
from mmpretrain.registry import METRICS

from ..functional.diversity import (DEFAULT_THRESHOLDS, prototype_diversity,
                                    prototype_usage)


def prototype_classes(argmax: torch.Tensor, labels: torch.Tensor,
                      num_prototypes: int) -> torch.Tensor:
    """The class each prototype is most often the argmax of (-1: unused).

    Args:
        argmax (Tensor): ``(N,)`` prototype index per sample.
        labels (Tensor): ``(N,)`` class per sample.
        num_prototypes (int): K.

    Returns:
        Tensor: ``(K,)`` class index, ``-1`` for prototypes never assigned;
        ties go to the smaller class index.
    """
    num_classes = int(labels.max()) + 1
    counts = torch.zeros(num_prototypes, num_classes, dtype=torch.long)
    counts.index_put_((argmax.long(), labels.long()),
                      torch.ones_like(argmax, dtype=torch.long),
                      accumulate=True)
    owner = counts.argmax(dim=1)
    owner[counts.sum(dim=1) == 0] = -1
    return owner


@METRICS.register_module()
class PrototypeDiversityMetric(BaseMetric):
    """Unique prototypes at several eps, components, and usage.

    Works for the joint ``DINOHead`` and ``DecoupledGMMHead`` alike: the
    ``DINO`` predict mode puts the teacher assignment ``prototype_probs``
    ``(K,)`` and the bank ``prototypes`` ``(K, D)`` in every data sample.
    Reports ``unique@<eps>`` (percent of K), ``components@<eps>``,
    ``used_prototypes`` (prototypes that are some sample's argmax),
    ``argmax_perplexity`` (of those argmax counts), ``soft_perplexity`` (of
    the mean teacher assignment), ``num_prototypes``, and,
    when the dataset meta has ``class_groups``, ``unique@<eps>_<group>``:
    diversity among the prototypes owned by each group's classes (a
    prototype belongs to the class it is most often assigned to).

    When the samples carry the ``embedding`` ``(D,)`` the prototypes score
    (``DINO`` / ``IBOT`` predict mode), also ``embedding_leaders@<eps>``:
    greedy leaders (a count) among the first ``max_embeddings`` of them, i.e.
    how many of the data's own embeddings lie mutually at least ``eps``
    apart. A scale for prototypes that sit on the data (the GMM means):
    where more of them receive data than this count, the data leaves little
    room for all of them to be unique at that ``eps`` (a greedy count, not
    a bound). ``embedding_count`` says how many embeddings were used.

    Args:
        thresholds (Sequence[float]): eps values. Defaults to
            (0.025, 0.05, 0.1, 0.25, 0.5).
        max_embeddings (int): Embeddings kept for
            ``embedding_leaders@<eps>`` (0 = skip it): the first ones each
            process sees, put back in data order by ``sample_idx`` (where
            every sample has one) and cut to this number again, so that a
            multi-process test with mmengine's strided sampler counts the
            same embeddings in the same order as one process. Defaults to
            8192.
        usage_file (str, optional): If given, also write the per-prototype
            argmax counts there as ``{"counts": [K ints]}`` (the input of
            ``tools/analysis/plot_prototypes.py --usage``). Defaults to None.
        collect_device (str): ``'cpu'`` or ``'gpu'``. Defaults to 'cpu'.
        prefix (str, optional): Defaults to ``'prototypes'``.
    """

    default_prefix = 'prototypes'

    def __init__(self,
                 thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
                 usage_file: Optional[str] = None,
                 max_embeddings: int = 8192,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if isinstance(max_embeddings, bool) or \
                not isinstance(max_embeddings, int) or max_embeddings < 0:
            raise ValueError('max_embeddings must be an int >= 0, got '
                             f'{max_embeddings!r}')
        self.thresholds = tuple(thresholds)
        self.usage_file = usage_file
        self.max_embeddings = max_embeddings
        self._bank_stored = False
        self._embeddings_kept = 0

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        """Store one result per sample, as mmengine's ``collect_results``
        expects: it cuts the gathered results to the dataset size, which
        drops the samples ``DefaultSampler`` repeats to pad the last
        process. Each sample keeps its argmax and label; the ``(K,)`` sum
        of the teacher assignments is stored twice per batch only (memory:
        K may be 65,536): the first sample holds the sum over all but the
        last, the last sample its own, since a padded sample is always a
        process's last one."""
        if not data_samples:
            return
        if 'prototype_probs' not in data_samples[0]:
            raise ValueError('PrototypeDiversityMetric needs prototype_probs '
                             'in data samples (DINO predict mode)')
        probs = torch.stack([s['prototype_probs'] for s in data_samples])
        probs = probs.float().cpu()
        argmax = probs.argmax(1).tolist()
        results = [dict(argmax=a, label=int(s.get('gt_label', -1)))
                   for a, s in zip(argmax, data_samples)]
        if len(results) > 1:
            results[0]['prob_sum'] = probs[:-1].sum(0)
        results[-1]['prob_sum'] = probs[-1].clone()
        if not self._bank_stored:  # once per rank: the bank is the same
            results[0]['prototypes'] = \
                data_samples[0]['prototypes'].float().cpu()
            self._bank_stored = True
        room = self.max_embeddings - self._embeddings_kept
        if room > 0 and 'embedding' in data_samples[0]:
            for result, sample in zip(results[:room], data_samples):
                result['embedding'] = sample['embedding'].float().cpu()
                if 'sample_idx' in sample:
                    result['embedding_idx'] = int(sample['sample_idx'])
            self._embeddings_kept += min(room, len(results))
        self.results.extend(results)

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        self._bank_stored = False  # next evaluation stores them again
        self._embeddings_kept = 0
        prototypes = next(r['prototypes'] for r in results
                          if 'prototypes' in r)
        num_prototypes = prototypes.shape[0]
        argmax = torch.tensor([r['argmax'] for r in results])
        metrics = prototype_diversity(prototypes, self.thresholds)
        metrics.update(prototype_usage(
            argmax, num_prototypes,
            probs=torch.stack([r['prob_sum'] for r in results
                               if 'prob_sum' in r]).sum(0)))
        metrics['num_prototypes'] = float(num_prototypes)
        with_embeddings = [r for r in results if 'embedding' in r]
        if with_embeddings:
            metrics.update(self._embedding_leaders(with_embeddings))
        if self.usage_file:
            self._write_usage(argmax, num_prototypes)
        groups = (self.dataset_meta or {}).get('class_groups')
        labels = torch.tensor([r['label'] for r in results])
        if groups and bool((labels >= 0).all()):
            metrics.update(self._per_group(prototypes, argmax, labels,
                                           groups))
        return metrics

    def _embedding_leaders(self, results: List[dict]) -> Dict[str, float]:
        """Greedy leaders (counts) among the results' embeddings ``(N, D)``,
        in data order where known, the first ``max_embeddings``."""
        embeddings = torch.stack([r['embedding'] for r in results])
        if all('embedding_idx' in r for r in results):
            order = torch.tensor([r['embedding_idx'] for r in results])
            embeddings = embeddings[order.argsort(stable=True)]
        embeddings = embeddings[:self.max_embeddings]
        num = embeddings.shape[0]
        try:
            diversity = prototype_diversity(embeddings, self.thresholds)
        except ValueError as err:  # its message names the rows 'prototypes'
            raise ValueError('PrototypeDiversityMetric: the evaluated '
                             f'embeddings (N, D) are unusable: {err}') from err
        metrics = {
            'embedding_leaders' + key[len('unique'):]:
            float(round(value * num / 100.0))
            for key, value in diversity.items() if key.startswith('unique')
        }
        metrics['embedding_count'] = float(num)
        return metrics

    def _write_usage(self, argmax: torch.Tensor, num_prototypes: int) -> None:
        """Per-prototype argmax counts ``(K,)`` to ``usage_file`` (JSON)."""
        counts = torch.bincount(argmax.long(), minlength=num_prototypes)
        folder = osp.dirname(osp.abspath(self.usage_file))
        os.makedirs(folder, exist_ok=True)
        with open(self.usage_file, 'w') as f:
            json.dump(dict(counts=counts.tolist()), f)

    def _per_group(self, prototypes: torch.Tensor, argmax: torch.Tensor,
                   labels: torch.Tensor,
                   groups: Sequence[str]) -> Dict[str, float]:
        owner = prototype_classes(argmax, labels, prototypes.shape[0])
        metrics: Dict[str, float] = {}
        for group in sorted(set(groups)):
            classes = [c for c, g in enumerate(groups) if g == group]
            mine = torch.isin(owner, torch.tensor(classes))
            metrics[f'owned_{group}'] = float(mine.sum())
            if int(mine.sum()) == 0:
                continue
            diversity = prototype_diversity(prototypes[mine], self.thresholds)
            metrics.update({
                f'{key}_{group}': value
                for key, value in diversity.items() if key.startswith('unique')
            })
        return metrics
