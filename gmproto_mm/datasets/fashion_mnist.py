"""Fashion-MNIST from the Debian package, through mmpretrain's own reader."""
import gzip
import os
import os.path as osp
import shutil
from typing import List

import numpy as np
from mmengine.logging import print_log
from mmpretrain.datasets import FashionMNIST
from mmpretrain.datasets.mnist import read_image_file, read_label_file
from mmpretrain.datasets.utils import rm_suffix
from mmpretrain.registry import DATASETS

DEBIAN_PACKAGE = 'dataset-fashion-mnist'
DEBIAN_DIR = '/usr/share/datasets/fashion-mnist'
IDX_FILES = ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte',
             't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte')


#: Where a config sets the folder, named by the missing-data errors.
DATA_ROOT_KEYS = ('--cfg-options train_dataloader.dataset.data_root=PATH '
                  '(training) and test_dataloader.dataset.bank.data_root=PATH '
                  'test_dataloader.dataset.query.data_root=PATH (k-NN '
                  'evaluation)')


def missing_files(data_root: str) -> List[str]:
    """The IDX files (un-gzipped) that ``data_root`` lacks."""
    return [f for f in IDX_FILES if not osp.exists(osp.join(data_root, f))]


def prepare_fashion_mnist(data_root: str, source_dir: str = DEBIAN_DIR) -> str:
    """Un-gzip the Debian package's IDX files into ``data_root`` if missing.

    The explicit preparation step (``tools/setup_env.sh`` runs it for
    ``data/fashion-mnist``): it creates ``data_root`` and writes ~55 MB
    there, with a log line; :class:`LocalFashionMNIST` only reads.

    Args:
        data_root (str): Folder mmpretrain's ``FashionMNIST`` reads.
        source_dir (str): Where ``apt-get install dataset-fashion-mnist``
            puts the gzipped files.

    Returns:
        str: ``data_root``.

    Raises:
        FileNotFoundError: Neither ``data_root`` nor ``source_dir`` has the
            files; the message names the Debian package and both folders.
    """
    missing = missing_files(data_root)
    if not missing:
        return data_root
    absent = [
        f for f in missing if not osp.exists(osp.join(source_dir, f + '.gz'))
    ]
    if absent:
        raise FileNotFoundError(
            f'Fashion-MNIST not found: {data_root!r} lacks {missing} and '
            f'{source_dir!r} lacks {[f + ".gz" for f in absent]}. Install the '
            f'Debian package with `apt-get install -y {DEBIAN_PACKAGE}` '
            '(or run `bash tools/run_tests.sh`, which does), put the '
            f'un-gzipped IDX files in {data_root!r}, or point the config at '
            f'them: {DATA_ROOT_KEYS}.')
    print_log(f'un-gzipping Fashion-MNIST ({len(missing)} files, ~55 MB in '
              f'all) from {source_dir!r} into {data_root!r}',
              logger='current')
    os.makedirs(data_root, exist_ok=True)
    for name in missing:
        tmp = osp.join(data_root, f'.{name}.{os.getpid()}.tmp')
        with gzip.open(osp.join(source_dir, name + '.gz'), 'rb') as src, \
                open(tmp, 'wb') as dst:
            shutil.copyfileobj(src, dst)
        os.replace(tmp, osp.join(data_root, name))  # atomic: no torn files
    return data_root


def require_fashion_mnist(data_root: str,
                          source_dir: str = DEBIAN_DIR) -> None:
    """Raise if ``data_root`` does not hold the un-gzipped IDX files.

    Args:
        data_root (str): Folder a config names.
        source_dir (str): Where the preparation command named in the
            message reads the gzipped files.

    Raises:
        FileNotFoundError: The message names ``data_root``, the files it
            lacks, the command that prepares it (and where that command
            finds the data, or the Debian package to install first) and the
            config keys that point elsewhere.
    """
    missing = missing_files(data_root)
    if not missing:
        return
    prepare = ('python -c "from gmproto_mm.datasets import '
               f'prepare_fashion_mnist; prepare_fashion_mnist({data_root!r}' +
               ('' if source_dir == DEBIAN_DIR else f', {source_dir!r}') +
               ')"')
    if all(osp.exists(osp.join(source_dir, f + '.gz')) for f in missing):
        source = f'un-gzips them from {source_dir!r}'
    else:
        source = (f'un-gzips them from {source_dir!r}, which lacks them too: '
                  f'first `apt-get install -y {DEBIAN_PACKAGE}` (into '
                  f'{DEBIAN_DIR!r}), or give a folder with the four '
                  '*-ubyte.gz files as the second argument')
    raise FileNotFoundError(
        f'Fashion-MNIST not found: data_root {data_root!r} lacks {missing} '
        '(LocalFashionMNIST only reads that folder, it never creates or '
        f'fills it). Prepare it once with `{prepare}` ({source}; `bash '
        'tools/setup_env.sh` does all of it for data/fashion-mnist), or '
        f'point the config at a folder that holds them: {DATA_ROOT_KEYS}.')


@DATASETS.register_module()
class LocalFashionMNIST(FashionMNIST):
    """mmpretrain's ``FashionMNIST`` that never downloads, and never writes.

    It reads the un-gzipped IDX files in ``data_root``; a folder without
    them raises an error naming it and the command that prepares it
    (:func:`prepare_fashion_mnist`, from the Debian package
    ``dataset-fashion-mnist``). Arguments are those of
    :class:`mmpretrain.datasets.FashionMNIST` plus ``source_dir``.

    Args:
        data_root (str): Folder of the un-gzipped IDX files.
        split (str): ``'train'`` or ``'test'``.
        source_dir (str): Folder of the gzipped Debian files, which the
            error's preparation command reads.
    """

    def __init__(self,
                 data_root: str = 'data/fashion-mnist',
                 split: str = 'train',
                 source_dir: str = DEBIAN_DIR,
                 **kwargs) -> None:
        if kwargs.pop('download', False):
            raise ValueError('LocalFashionMNIST never downloads (no network '
                             f'at run time); install {DEBIAN_PACKAGE}.')
        self.source_dir = source_dir
        super().__init__(
            data_root=data_root, split=split, download=False, **kwargs)

    def load_data_list(self):
        root = self.data_prefix['root']
        require_fashion_mnist(root, self.source_dir)  # on every rank
        # mmpretrain 1.2.0 picks the files by ``test_mode``, not ``split``
        # (``split='test'`` silently reads the training set); we use split.
        images, labels = (self.test_list if self.split == 'test' else
                          self.train_list)
        imgs = read_image_file(osp.join(root, rm_suffix(images[0])))
        gt_labels = read_label_file(osp.join(root, rm_suffix(labels[0])))
        return [{
            'img': img.numpy(),
            'gt_label': np.array(label, dtype=np.int64)
        } for img, label in zip(imgs, gt_labels)]
