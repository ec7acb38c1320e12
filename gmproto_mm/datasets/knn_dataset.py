"""One test dataset holding the k-NN bank (train split) and the queries."""
from typing import Any, Dict, Union

from mmengine.dataset import BaseDataset
from mmpretrain.registry import DATASETS


@DATASETS.register_module()
class KNNDataset:
    """Concatenate a bank split and a query split for k-NN evaluation.

    Items ``0 .. len(bank)-1`` come from ``bank`` and are tagged
    ``knn_split='bank'`` in their data sample's metainfo; the rest come from
    ``query`` tagged ``'query'``. So mmengine's standard test loop (sampler,
    distributed collection, progress bar) extracts all features in one pass
    and ``KNNAccuracy`` splits them again. ``sample_idx`` is set to the
    index in this dataset (the bank's and the query's own would collide),
    so metrics can restore the data order after a multi-process test.
    ``metainfo`` is the query's (classes, and ``class_groups`` for
    long-tailed sets).

    Args:
        bank (dict | BaseDataset): The training split (the k-NN bank), with
            a test pipeline ending in ``PackInputs``.
        query (dict | BaseDataset): The evaluation split, same pipeline.
    """

    def __init__(self, bank: Union[dict, BaseDataset],
                 query: Union[dict, BaseDataset]) -> None:
        self.bank = DATASETS.build(bank) if isinstance(bank, dict) else bank
        self.query = DATASETS.build(query) if isinstance(query,
                                                         dict) else query
        if len(self.bank) == 0 or len(self.query) == 0:
            raise ValueError('KNNDataset needs a non-empty bank and query; '
                             f'got {len(self.bank)} and {len(self.query)}')

    @property
    def metainfo(self) -> Dict[str, Any]:
        return dict(self.query.metainfo)

    def __len__(self) -> int:
        return len(self.bank) + len(self.query)

    def __getitem__(self, index: int) -> dict:
        if index < 0:
            index += len(self)
        if index < len(self.bank):
            item, split = self.bank[index], 'bank'
        else:
            item, split = self.query[index - len(self.bank)], 'query'
        if 'data_samples' not in item:
            raise ValueError('KNNDataset pipelines must end in PackInputs')
        item['data_samples'].set_metainfo(
            dict(knn_split=split, sample_idx=index))
        return item
