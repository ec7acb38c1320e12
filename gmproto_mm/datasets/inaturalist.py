"""iNaturalist 2018 from its official JSON annotation files, with long-tail
class groups (mmpretrain 1.2.0 has no iNaturalist dataset)."""
import json
import os.path as osp
from collections import Counter
from typing import Dict, List, Optional

from mmengine.dataset import BaseDataset
from mmpretrain.registry import DATASETS


def frequency_groups(counts: List[int], many: int = 100,
                     few: int = 20) -> List[str]:
    """Head / medium / tail by training images per class.

    The usual long-tail rule (many-shot > ``many``, few-shot < ``few``).

    Args:
        counts (list[int]): Training images of each class.
        many (int): Head classes have more than this. Defaults to 100.
        few (int): Tail classes have fewer than this. Defaults to 20.

    Returns:
        list[str]: ``'head'``, ``'medium'`` or ``'tail'`` per class.

    Example:
        >>> frequency_groups([500, 50, 5])
        ['head', 'medium', 'tail']
    """
    if few > many:
        raise ValueError(f'few ({few}) must be <= many ({many})')
    return ['head' if n > many else 'tail' if n < few else 'medium'
            for n in counts]


def _read_annotations(path: str) -> dict:
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'iNaturalist annotation file {path!r} not found: put the '
            'official train2018.json / val2018.json under data_root, or '
            'point the config at them: --cfg-options '
            'train_dataloader.dataset.data_root=PATH (training) and '
            'test_dataloader.dataset.bank.data_root=PATH '
            'test_dataloader.dataset.query.data_root=PATH (k-NN evaluation)')
    with open(path) as f:
        return json.load(f)


@DATASETS.register_module()
class INaturalist2018(BaseDataset):
    """iNaturalist 2018 (8,142 classes, long-tailed).

    Reads ``ann_file`` (``train2018.json`` or ``val2018.json``: ``images``
    with ``id`` and ``file_name``, ``annotations`` with ``image_id`` and
    ``category_id``, ``categories``). ``metainfo`` carries ``classes``,
    ``class_counts`` (training images per class, from ``train_ann_file``) and
    ``class_groups`` (:func:`frequency_groups`), so validation groups equal
    training groups.

    Args:
        data_root (str): Root holding the images and annotation files.
        ann_file (str): Annotation file of this split, relative to
            ``data_root``. Defaults to ``'train2018.json'``.
        train_ann_file (str): Annotation file that defines the class counts.
            Defaults to ``'train2018.json'``.
        many (int): Head threshold of :func:`frequency_groups`.
        few (int): Tail threshold of :func:`frequency_groups`.
        **kwargs: Other arguments of :class:`mmengine.dataset.BaseDataset`.
    """

    def __init__(self,
                 data_root: str,
                 ann_file: str = 'train2018.json',
                 train_ann_file: str = 'train2018.json',
                 many: int = 100,
                 few: int = 20,
                 metainfo: Optional[dict] = None,
                 **kwargs) -> None:
        train = _read_annotations(osp.join(data_root, train_ann_file))
        category_ids = sorted(c['id'] for c in train['categories'])
        self._class_index = {cid: i for i, cid in enumerate(category_ids)}
        names = {c['id']: c.get('name', str(c['id']))
                 for c in train['categories']}
        per_class = Counter(a['category_id'] for a in train['annotations'])
        counts = [per_class.get(cid, 0) for cid in category_ids]
        meta = dict(classes=[names[cid] for cid in category_ids],
                    class_counts=counts,
                    class_groups=frequency_groups(counts, many, few))
        meta.update(metainfo or {})
        super().__init__(data_root=data_root, ann_file=ann_file,
                         metainfo=meta, **kwargs)

    def load_data_list(self) -> List[Dict]:
        ann = _read_annotations(self.ann_file)
        label_of = {a['image_id']: a['category_id'] for a in ann['annotations']}
        data = []
        for image in ann['images']:
            cid = label_of.get(image['id'])
            if cid not in self._class_index:
                raise ValueError(f'image {image["id"]} of {self.ann_file} has '
                                 f'category {cid}, unknown to the train set')
            data.append(dict(
                img_path=osp.join(self.data_root, image['file_name']),
                gt_label=self._class_index[cid]))
        return data
