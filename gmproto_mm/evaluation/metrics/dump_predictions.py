"""Per-sample predictions of DINO / iBOT predict mode, dumped to a file."""
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.evaluator import DumpResults
from mmpretrain.registry import METRICS

from ..functional.knn import weighted_knn_predict


@METRICS.register_module()
class DumpPredictions(DumpResults):
    """mmengine's ``DumpResults`` for prototype models: one small record per
    sample instead of the whole data sample.

    ``tools/test.py --out F.pkl`` adds it, as mmpretrain's ``--out`` adds
    ``DumpResults``. The data samples of ``DINO`` / ``IBOT`` predict mode
    hold the ``(K, D)`` prototype bank and ``(K,)`` assignment of every
    sample; dumping them would write K x D floats per image. Each record
    keeps, where the sample has them:

    - ``sample_idx`` (int), ``gt_label`` (int), ``knn_split``
      (``'bank'`` / ``'query'``, ``KNNDataset``);
    - ``prototype`` (int): the teacher's assigned prototype, the argmax of
      ``prototype_probs``; ``prototype_prob`` (float): its probability;
    - queries only: ``pred_label`` (int), the weighted k-NN prediction
      from the bank samples' ``backbone_feat`` (the protocol of
      ``KNNAccuracy``), and ``pred_score`` (Tensor ``(C,)``): its class
      votes normalised to sum to 1.

    Records are in data order (``sample_idx``); the file is a list of
    dicts (``mmengine.load``).

    Args:
        out_file_path (str): A ``.pkl`` / ``.pickle`` file.
        k (int): Neighbours of the k-NN prediction. Defaults to 20.
        temperature (float): T of its vote weights. Defaults to 0.07.
        collect_device (str): ``'cpu'`` or ``'gpu'``. Defaults to 'cpu'.
        collect_dir (str, optional): As ``DumpResults``.
    """

    def __init__(self,
                 out_file_path: str,
                 k: int = 20,
                 temperature: float = 0.07,
                 collect_device: str = 'cpu',
                 collect_dir: Optional[str] = None) -> None:
        super().__init__(out_file_path, collect_device=collect_device,
                         collect_dir=collect_dir)
        if k < 1 or temperature <= 0:
            raise ValueError(f'k must be >= 1 and temperature > 0, got {k} '
                             f'and {temperature}')
        self.k = k
        self.temperature = temperature

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        """Keep the record fields (and the feature, for the k-NN)."""
        for sample in data_samples:
            record: Dict = {}
            if 'sample_idx' in sample:
                record['sample_idx'] = int(sample['sample_idx'])
            if 'gt_label' in sample:
                record['gt_label'] = int(sample['gt_label'])
            if 'knn_split' in sample:
                record['knn_split'] = sample['knn_split']
            if 'prototype_probs' in sample:
                prob, index = sample['prototype_probs'].float().max(0)
                record['prototype'] = int(index)
                record['prototype_prob'] = float(prob)
            if 'knn_split' in sample and 'backbone_feat' in sample:
                record['_feat'] = sample['backbone_feat'].float().cpu()
            self.results.append(record)

    def compute_metrics(self, results: List[dict]) -> dict:
        """Add the queries' k-NN predictions, drop the features, dump."""
        if all('sample_idx' in r for r in results):
            results = sorted(results, key=lambda r: r['sample_idx'])
        bank = [r for r in results
                if r.get('knn_split') == 'bank' and '_feat' in r]
        query = [r for r in results
                 if r.get('knn_split') == 'query' and '_feat' in r]
        if bank and query and all('gt_label' in r for r in bank):
            labels = torch.tensor([r['gt_label'] for r in bank])
            classes = (self.dataset_meta or {}).get('classes')
            num_classes = len(classes) if classes else 1 + max(
                r['gt_label'] for r in bank + query if 'gt_label' in r)
            scores = weighted_knn_predict(
                torch.stack([r['_feat'] for r in query]),
                torch.stack([r['_feat'] for r in bank]), labels, num_classes,
                k=self.k, temperature=self.temperature)
            scores = scores / scores.sum(1, keepdim=True)
            for record, score in zip(query, scores):
                record['pred_label'] = int(score.argmax())
                record['pred_score'] = score
        for record in results:
            record.pop('_feat', None)
        os.makedirs(osp.dirname(osp.abspath(self.out_file_path)),
                    exist_ok=True)
        return super().compute_metrics(results)
