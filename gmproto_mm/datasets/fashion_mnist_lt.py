"""Fashion-MNIST-LT: an exponentially long-tailed subset of the training set.

The profile is CIFAR-10-LT's (Cui et al., https://arxiv.org/abs/1901.05555):
``n_c = n_max * imbalance_factor ** (-r_c / (C - 1))`` for the class of rank
``r_c``, here with the ranks drawn by a seeded permutation of the classes.
"""
from typing import List, Optional, Sequence

import numpy as np
from mmpretrain.registry import DATASETS

from .fashion_mnist import DEBIAN_DIR, LocalFashionMNIST

GROUPS = ('head', 'medium', 'tail')
TRAIN_PER_CLASS = 6000  # images per class in the Fashion-MNIST training set


def long_tail_counts(num_classes: int, n_max: int, imbalance_factor: float,
                     seed: int) -> List[int]:
    """Exponential long-tail class counts over a seeded class ranking.

    The class of rank ``r`` in ``np.random.default_rng(seed)``'s permutation
    of ``range(num_classes)`` gets
    ``round(n_max * imbalance_factor ** (-r / (num_classes - 1)))`` images,
    so rank 0 has ``n_max`` and the last rank ``n_max / imbalance_factor``.

    Args:
        num_classes (int): Number of classes ``C``.
        n_max (int): Images of the most frequent class.
        imbalance_factor (float): ``n_max / n_min``, at least 1.
        seed (int): Seed of the class ranking.

    Returns:
        list[int]: ``(C,)`` counts indexed by class, each at least 1.

    Raises:
        ValueError: ``num_classes < 1``, ``n_max < 1`` or
            ``imbalance_factor < 1``.

    Example:
        >>> counts = long_tail_counts(10, 6000, 100, seed=0)
        >>> max(counts), min(counts)
        (6000, 60)
        >>> long_tail_counts(3, 100, 1, seed=0)
        [100, 100, 100]
    """
    if num_classes < 1 or n_max < 1:
        raise ValueError('num_classes and n_max must be >= 1, got '
                         f'{num_classes} and {n_max}')
    if not imbalance_factor >= 1:  # also rejects NaN
        raise ValueError('imbalance_factor is n_max / n_min and must be >= 1 '
                         f'(1 = balanced), got {imbalance_factor}')
    ranks = np.empty(num_classes, dtype=np.int64)
    ranks[np.random.default_rng(seed).permutation(num_classes)] = np.arange(
        num_classes)  # ranks[c] = position of class c in the permutation
    exponent = ranks / max(num_classes - 1, 1)
    counts = np.floor(n_max * float(imbalance_factor)**-exponent + 0.5)
    return [max(1, int(n)) for n in counts]  # round half up


def assign_groups(counts: Sequence[int]) -> List[str]:
    """Head / medium / tail by rank of training frequency.

    Classes are sorted by count, largest first (ties: lower class index
    first). The first ``floor(0.3 * C)`` are ``'head'``, the last
    ``floor(0.3 * C)`` are ``'tail'`` and the rest ``'medium'``; for
    Fashion-MNIST's 10 classes that is 3 / 4 / 3, the split used for
    CIFAR-10-LT. Fewer than 4 classes leaves everything ``'medium'``.

    Args:
        counts (Sequence[int]): ``(C,)`` training images per class.

    Returns:
        list[str]: ``(C,)`` group name per class index.

    Example:
        >>> assign_groups([10, 1000, 1, 100, 50])
        ['medium', 'head', 'tail', 'medium', 'medium']
        >>> [assign_groups(range(10, 0, -1)).count(g) for g in GROUPS]
        [3, 4, 3]
    """
    num = len(counts)
    num_edge = (3 * num) // 10
    order = sorted(range(num), key=lambda c: (-counts[c], c))
    groups = ['medium'] * num
    for c in order[:num_edge]:
        groups[c] = 'head'
    for c in order[num - num_edge:]:
        groups[c] = 'tail'
    return groups


@DATASETS.register_module()
class FashionMNISTLT(LocalFashionMNIST):
    """Long-tailed Fashion-MNIST (Fashion-MNIST-LT).

    ``split='train'`` keeps a seeded random subset of the training set with
    the class counts of :func:`long_tail_counts` (class ranks and images both
    drawn from ``seed``; the kept images stay in their original order).
    ``split='test'`` is the untouched balanced test set (10000 images), the
    evaluation set, with the same group metadata as the training profile.

    Groups (:func:`assign_groups`): classes sorted by training count; the 3
    most frequent are ``'head'``, the 3 least frequent ``'tail'``, the other
    4 ``'medium'``. ``metainfo`` carries ``class_counts`` (training counts per
    class index, also for the test split) and ``class_groups`` (group name
    per class index); each data info carries ``gt_label``.

    Args:
        data_root (str): Folder of the un-gzipped IDX files.
        split (str): ``'train'`` (long-tailed) or ``'test'`` (balanced).
            Defaults to ``'train'``.
        imbalance_factor (float): ``n_max / n_min``, at least 1 (1 keeps
            ``max_per_class`` images of every class). Defaults to 100.
        seed (int): Seed of the class ranking and of the kept images.
            Defaults to 0.
        max_per_class (int, optional): ``n_max``, images of the most frequent
            class, at most 6000. Defaults to None (all 6000).
        source_dir (str): Folder of the gzipped Debian files.
        metainfo (dict, optional): Extra meta information.
        **kwargs: Other arguments of :class:`LocalFashionMNIST`.
    """

    def __init__(self,
                 data_root: str = 'data/fashion-mnist',
                 split: str = 'train',
                 imbalance_factor: float = 100.,
                 seed: int = 0,
                 max_per_class: Optional[int] = None,
                 source_dir: str = DEBIAN_DIR,
                 metainfo: Optional[dict] = None,
                 **kwargs) -> None:
        if split not in ('train', 'test'):
            raise ValueError(
                f"split must be 'train' or 'test', got {split!r}")
        n_max = TRAIN_PER_CLASS if max_per_class is None else max_per_class
        if not 1 <= n_max <= TRAIN_PER_CLASS:
            raise ValueError(f'max_per_class must be in [1, {TRAIN_PER_CLASS}]'
                             f' (images per training class), got {n_max}')
        num_classes = len(self.METAINFO['classes'])
        self.imbalance_factor = imbalance_factor
        self.seed = seed
        self.class_counts = long_tail_counts(num_classes, n_max,
                                             imbalance_factor, seed)
        self.class_groups = assign_groups(self.class_counts)
        metainfo = dict(
            metainfo or {},
            class_counts=list(self.class_counts),
            class_groups=list(self.class_groups))
        super().__init__(
            data_root=data_root,
            split=split,
            source_dir=source_dir,
            metainfo=metainfo,
            **kwargs)

    def load_data_list(self) -> List[dict]:
        """The full split, subsampled to the profile for ``'train'``."""
        data_list = super().load_data_list()
        if self.split == 'test':
            return data_list
        labels = np.array([int(info['gt_label']) for info in data_list])
        rng = np.random.default_rng([self.seed, 1])  # not the ranking stream
        keep = []
        for label, count in enumerate(self.class_counts):
            pool = np.flatnonzero(labels == label)
            if count > len(pool):
                raise ValueError(
                    f'class {label} has {len(pool)} training images, the '
                    f'profile asks for {count}; lower max_per_class')
            keep.append(rng.choice(pool, size=count, replace=False))
        return [data_list[i] for i in np.sort(np.concatenate(keep))]

    def extra_repr(self) -> List[str]:
        """Profile lines for ``repr``."""
        return super().extra_repr() + [
            f'Imbalance factor: \t{self.imbalance_factor}',
            f'Seed: \t{self.seed}',
            f'Class counts (train): \t{self.class_counts}',
            f'Class groups: \t{self.class_groups}',
        ]
