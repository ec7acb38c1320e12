"""Fashion-MNIST-LT: the exponential profile, seeding, head/medium/tail
groups, the untouched test split, registry and config builds."""
import os.path as osp
from collections import Counter

import numpy as np
import pytest
from mmengine.config import Config

import gmproto_mm.datasets.fashion_mnist_lt  # noqa: F401  (registers)
from gmproto_mm.datasets.fashion_mnist_lt import (FashionMNISTLT,
                                                  assign_groups,
                                                  long_tail_counts)
from tests.conftest import REPO_ROOT


def label_counts(dataset: FashionMNISTLT) -> list:
    counts = Counter(int(dataset.get_data_info(i)['gt_label'])
                     for i in range(len(dataset)))
    return [counts[c] for c in range(10)]


def reference_counts(n_max, factor, seed):
    """Plain loop over the ranks of the seeded permutation."""
    order = np.random.default_rng(seed).permutation(10)
    counts = [0] * 10
    for rank, cls in enumerate(order):
        counts[cls] = int(np.floor(n_max * factor**(-rank / 9) + 0.5))
    return counts


@pytest.fixture(scope='module')
def lt_train(fmnist_root):
    return FashionMNISTLT(data_root=fmnist_root, split='train')


@pytest.mark.parametrize('factor,seed', [(100, 0), (10, 3), (1, 0)])
def test_counts_follow_profile(factor, seed):
    counts = long_tail_counts(10, 6000, factor, seed)
    assert counts == reference_counts(6000, factor, seed)
    assert max(counts) == 6000 and max(counts) / min(counts) == factor
    order = np.random.default_rng(seed).permutation(10)
    along_rank = [counts[c] for c in order]
    assert along_rank == sorted(along_rank, reverse=True)  # monotone


def test_ranking_depends_on_seed():
    assert long_tail_counts(10, 6000, 100, 0) == long_tail_counts(
        10, 6000, 100, 0)
    assert long_tail_counts(10, 6000, 100, 0) != long_tail_counts(
        10, 6000, 100, 1)
    # the head is not pinned to class 0
    heads = {int(np.argmax(long_tail_counts(10, 6000, 100, s)))
             for s in range(5)}
    assert len(heads) > 1


def test_groups_rule():
    counts = long_tail_counts(10, 6000, 100, 0)
    groups = assign_groups(counts)
    assert [groups.count(g) for g in ('head', 'medium', 'tail')] == [3, 4, 3]
    by_count = sorted(range(10), key=lambda c: -counts[c])
    assert [groups[c] for c in by_count] == ['head'] * 3 + ['medium'] * 4 + [
        'tail'] * 3
    assert assign_groups([7] * 10) == ['head'] * 3 + ['medium'] * 4 + [
        'tail'] * 3  # ties: lower class index counts as more frequent


def test_train_split_is_the_profile(lt_train):
    expected = long_tail_counts(10, 6000, 100, 0)
    assert label_counts(lt_train) == expected
    assert len(lt_train) == sum(expected)
    meta = lt_train.metainfo
    assert meta['class_counts'] == expected
    assert meta['class_groups'] == assign_groups(expected)
    assert len(meta['classes']) == 10
    info = lt_train.get_data_info(0)
    assert info['img'].shape == (28, 28) and 'gt_label' in info


def test_samples_deterministic_and_seeded(fmnist_root, lt_train):
    def first_images(ds, n=50):
        return np.stack([ds.get_data_info(i)['img'] for i in range(n)])

    again = FashionMNISTLT(data_root=fmnist_root, split='train')
    assert np.array_equal(first_images(lt_train), first_images(again))
    other = FashionMNISTLT(data_root=fmnist_root, split='train', seed=1)
    assert label_counts(other) == long_tail_counts(10, 6000, 100, 1)
    assert other.metainfo['class_counts'] != lt_train.metainfo['class_counts']
    assert not np.array_equal(first_images(lt_train), first_images(other))


def test_max_per_class(fmnist_root):
    ds = FashionMNISTLT(data_root=fmnist_root, max_per_class=500,
                        imbalance_factor=10, seed=2)
    counts = label_counts(ds)
    assert max(counts) == 500 and min(counts) == 50
    with pytest.raises(ValueError, match='max_per_class'):
        FashionMNISTLT(data_root=fmnist_root, max_per_class=6001)


def test_test_split_untouched_with_train_groups(fmnist_root, lt_train):
    test = FashionMNISTLT(data_root=fmnist_root, split='test')
    assert len(test) == 10000
    assert label_counts(test) == [1000] * 10
    assert test.metainfo['class_groups'] == lt_train.metainfo['class_groups']
    assert test.metainfo['class_counts'] == lt_train.metainfo['class_counts']


@pytest.mark.parametrize('factor', [0.5, 0, -3, float('nan')])
def test_bad_imbalance_factor(fmnist_root, factor):
    with pytest.raises(ValueError, match='imbalance_factor'):
        FashionMNISTLT(data_root=fmnist_root, imbalance_factor=factor)


def test_unknown_split(fmnist_root):
    with pytest.raises(ValueError, match='split'):
        FashionMNISTLT(data_root=fmnist_root, split='val')


def test_builds_from_registry(fmnist_root):
    from mmpretrain.registry import DATASETS
    ds = DATASETS.build(
        dict(type='FashionMNISTLT', data_root=fmnist_root, split='train',
             imbalance_factor=10, seed=0,
             pipeline=[dict(type='PackInputs')]))
    assert isinstance(ds, FashionMNISTLT)
    assert label_counts(ds) == long_tail_counts(10, 6000, 10, 0)
    assert ds[0]['inputs'].shape == (1, 28, 28)


@pytest.mark.parametrize(
    'name', ['dino/dino_vit-tiny-p8_1xb64-3e_fmnist-lt.py',
             'dino/dino-gmm_vit-tiny-p8_1xb64-3e_fmnist-lt.py'])
def test_lt_configs_build_their_dataset(name, fmnist_root):
    from mmpretrain.registry import DATASETS
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', name))
    base = Config.fromfile(
        osp.join(REPO_ROOT, 'configs', name.replace('_fmnist-lt', '_fmnist')))
    dataset_cfg = cfg.train_dataloader.dataset
    assert dataset_cfg.type == 'FashionMNISTLT'
    assert dataset_cfg.imbalance_factor == 100 and dataset_cfg.seed == 0
    assert dataset_cfg.pipeline == base.train_dataloader.dataset.pipeline
    # evaluation: bank = the LT training set, queries = the balanced test
    # split carrying the training groups (per-group k-NN and diversity)
    bank, query = (cfg.test_dataloader.dataset[k] for k in ('bank', 'query'))
    assert (bank.type, bank.split, query.type, query.split) == \
        ('FashionMNISTLT', 'train', 'FashionMNISTLT', 'test')
    # one test pipeline for both splits, the balanced twin's
    assert cfg.test_dataloader.dataset.pipeline == \
        base.test_dataloader.dataset.pipeline
    assert 'pipeline' not in bank and 'pipeline' not in query
    query.data_root = fmnist_root
    assert len(DATASETS.build(query)) == 10000
    assert DATASETS.build(query).metainfo['class_groups'] == \
        assign_groups(long_tail_counts(10, 6000, 100, 0))
    dataset_cfg.data_root = fmnist_root
    ds = DATASETS.build(dataset_cfg)
    assert len(ds) == sum(long_tail_counts(10, 6000, 100, 0))
    views = ds[0]['inputs']  # MultiView: 2 global + 4 local crops
    assert [tuple(v.shape) for v in views] == [(1, 32, 32)] * 2 + [
        (1, 16, 16)] * 4
