"""Own images, as docs/custom_data.md describes: a folder per class
(mmpretrain's CustomDataset, gray and colour PNGs mixed) trains a few steps
with tools/train.py, and tools/test.py evaluates k-NN and prototype metrics
with KNNDataset bank/query on CustomDataset."""
import json
import pytest
import os
import os.path as osp
import sys

import numpy as np
from PIL import Image

from gmproto_mm.datasets import LocalFashionMNIST
from tests.conftest import run_tool

CONFIG = 'configs/examples/dino-gmm_vit-tiny-p8_1xb64-3e_custom-folder.py'
CLASSES = {0: 'tshirt', 1: 'trouser', 9: 'boot'}


def _image_folder(root, fmnist_root, per_class):
    """``root/<class>/<i>.png`` from real Fashion-MNIST images; every
    other image is saved as a tinted colour PNG, the rest gray."""
    data = LocalFashionMNIST(data_root=fmnist_root, split='test',
                             pipeline=[])
    counts = dict.fromkeys(CLASSES, 0)
    for i in range(len(data)):
        info = data.get_data_info(i)
        label = int(info['gt_label'])
        if counts.get(label, per_class) >= per_class:
            continue
        img = info['img']  # (28, 28) uint8
        if counts[label] % 2:
            img = np.stack([img, img // 2, 255 - img], axis=-1)
        folder = osp.join(root, CLASSES[label])
        os.makedirs(folder, exist_ok=True)
        Image.fromarray(img).save(osp.join(folder, f'{counts[label]}.png'))
        counts[label] += 1
        if min(counts.values()) == per_class:
            return


@pytest.mark.slow
def test_train_and_test_on_an_image_folder(tmp_path, fmnist_root):
    train_root, val_root = str(tmp_path / 'train'), str(tmp_path / 'val')
    _image_folder(train_root, fmnist_root, per_class=8)
    _image_folder(val_root, fmnist_root, per_class=4)
    work = str(tmp_path / 'work')
    data = [f'test_dataloader.dataset.bank.data_root={train_root}',
            f'test_dataloader.dataset.query.data_root={val_root}',
            'test_dataloader.num_workers=0', 'test_dataloader.batch_size=16']
    run_tool([sys.executable, 'tools/train.py', CONFIG, '--work-dir', work,
              '--cfg-options', f'train_dataloader.dataset.data_root='
              f'{train_root}', 'train_dataloader.batch_size=8',
              'train_dataloader.num_workers=0',
              'train_dataloader.persistent_workers=False',
              'train_cfg.max_epochs=1', 'default_hooks.logger.interval=1'] +
             data)  # 24 images: 3 iterations
    ckpt = osp.join(work, 'epoch_1.pth')
    assert osp.isfile(ckpt)
    out = str(tmp_path / 'metrics.json')
    run_tool([sys.executable, 'tools/test.py', CONFIG, ckpt, '--work-dir',
              work, '--out', out, '--out-item', 'metrics', '--cfg-options'] +
             data)
    with open(out) as f:
        metrics = json.load(f)
    assert metrics['prototypes/embedding_count'] == 3 * 8 + 3 * 4
    assert metrics['prototypes/num_prototypes'] == 256  # the example's K
    assert 0 <= metrics['knn/top1'] <= 100
    assert 'prototypes/used_prototypes' in metrics
