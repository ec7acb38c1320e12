"""configs/_base_/datasets/fmnist_knn-val.py: online k-NN validation
through mmengine's ValLoop, its scalars in the message hub and in the vis
backends' log."""
import json
import os.path as osp

from mmengine.runner import Runner

from tests.conftest import DECOUPLED_FMNIST, FMNIST_ROOT, REPO_ROOT, small_cfg


def test_knn_val_logs_top1_beside_the_training_scalars(tmp_path, fmnist_root):
    config = tmp_path / 'gm_dino_knn_val.py'  # what docs/components.md shows
    config.write_text(
        f"_base_ = ['{REPO_ROOT}/configs/{DECOUPLED_FMNIST}',\n"
        f"          '{REPO_ROOT}/configs/_base_/datasets/fmnist_knn-val.py']\n"
        'train_cfg = dict(val_interval=1)\n')
    work = tmp_path / 'work'
    val = 'val_dataloader.dataset.'
    cfg = small_cfg(
        str(config), str(work), num_images=16, batch_size=8, **{
            'val_dataloader.num_workers': 0,
            'val_dataloader.batch_size': 16,
            val + 'bank.indices': 32, val + 'query.indices': 16,
            val + 'bank.data_root': FMNIST_ROOT,
            val + 'query.data_root': FMNIST_ROOT,
            'custom_hooks.1.interval': 1,  # PrototypeMonitorHook
        })
    runner = Runner.from_cfg(cfg)
    runner.train()  # 1 epoch of 2 iterations, then one val round
    scalars = runner.message_hub.log_scalars
    assert 'val/knn/top1' in scalars and 'val/knn/top5' in scalars
    top1 = scalars['val/knn/top1'].current()
    assert 0 <= top1 <= 100
    assert any(k.startswith('train/proto_unique@') for k in scalars)
    # what every vis backend (Local, TensorBoard, W&B) is given
    records = [json.loads(line) for line in open(osp.join(
        str(work), runner.timestamp, 'vis_data', 'scalars.json'))]
    val_records = [r for r in records if 'knn/top1' in r]
    assert len(val_records) == 1 and val_records[0]['step'] == 1
    assert val_records[0]['knn/top1'] == top1
    assert any('proto_unique@0.1' in r for r in records)
