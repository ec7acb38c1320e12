"""One test dataset holding the k-NN bank (train split) and the queries."""
from typing import Any, Dict, List, Optional, Union

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

    ``pipeline`` is the test pipeline of both splits, given once: it is
    also what mmpretrain's inferencers read (``FeatureExtractor`` builds
    its preprocessing from ``test_dataloader.dataset.pipeline``).

    Args:
        bank (dict | BaseDataset): The training split (the k-NN bank), with
            a test pipeline ending in ``PackInputs`` unless ``pipeline`` is
            given.
        query (dict | BaseDataset): The evaluation split, same pipeline.
        pipeline (list[dict], optional): The pipeline of both splits, for
            ``bank`` and ``query`` given as config dicts without one (or
            with this one). Defaults to None (each split's own).
    """

    def __init__(self, bank: Union[dict, BaseDataset],
                 query: Union[dict, BaseDataset],
                 pipeline: Optional[List[dict]] = None) -> None:
        if pipeline is not None:
            bank = self._with_pipeline(bank, 'bank', pipeline)
            query = self._with_pipeline(query, 'query', pipeline)
        self.bank = DATASETS.build(bank) if isinstance(bank, dict) else bank
        self.query = DATASETS.build(query) if isinstance(query,
                                                         dict) else query
        if len(self.bank) == 0 or len(self.query) == 0:
            raise ValueError('KNNDataset needs a non-empty bank and query; '
                             f'got {len(self.bank)} and {len(self.query)}')

    @classmethod
    def split_config(cls, dataset: dict, name: str) -> dict:
        """The config of one split of a ``KNNDataset`` config, with the
        pipeline the dataset gives it, to build that split alone.

        Args:
            dataset (dict): A ``KNNDataset`` config, e.g.
                ``cfg.test_dataloader.dataset``.
            name (str): ``'bank'`` or ``'query'``.

        Returns:
            dict: The split's config.
        """
        if dataset.get('pipeline') is None:
            return dataset[name]
        return cls._with_pipeline(dataset[name], name, dataset['pipeline'])

    @staticmethod
    def _with_pipeline(split: Union[dict, BaseDataset], name: str,
                       pipeline: List[dict]) -> dict:
        """``split``'s config with ``pipeline``; one pipeline for both."""
        if not isinstance(split, dict):
            raise ValueError(
                f'KNNDataset got a built {name} dataset and a pipeline: pass '
                f'the {name} as a config dict, or its pipeline to it')
        own = split.get('pipeline')
        if own is not None and list(own) != list(pipeline):
            raise ValueError(
                f'KNNDataset has a pipeline and its {name} another one; give '
                f'one: the pipeline of both splits (mmpretrain\'s '
                f'FeatureExtractor reads it), or remove the KNNDataset\'s to '
                f'keep per-split pipelines. {name}: {own}; KNNDataset: '
                f'{pipeline}')
        return dict(split, pipeline=pipeline)

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
