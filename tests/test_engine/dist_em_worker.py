"""Run under torchrun by test_online_em_hook.py (not collected by pytest).

Each rank: (1) gathers unequal-size rows with ``all_gather_rows`` and runs
one EM update on them; (2) trains ``gm_dino_vitt_fmnist`` briefly; then saves
everything to ``OUT/rank{r}.pth`` for the test to compare.
"""
import os
import sys

import torch
from mmengine.config import Config
from mmengine.runner import Runner

import gmproto_mm  # noqa: F401
from gmproto_mm.engine import prepare_cpu_distributed
from gmproto_mm.engine.hooks import all_gather_rows
from gmproto_mm.models import OnlineGaussianMixture


def main(config: str, out_dir: str, data_root: str) -> None:
    cfg = Config.fromfile(config)
    cfg.launcher = 'pytorch'
    cfg.work_dir = out_dir
    cfg.train_dataloader.update(batch_size=8, num_workers=0,
                                persistent_workers=False)
    cfg.train_dataloader.dataset.update(indices=48, data_root=data_root)
    cfg.train_cfg.max_epochs = 1
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=100)
    cfg.model.head.gmm.init_samples = 1  # EM from the first step on
    cfg.custom_hooks = [dict(type='OnlineEMHook', sync_check_interval=1)]
    runner = Runner.from_cfg(prepare_cpu_distributed(cfg))

    rank = torch.distributed.get_rank()
    rows = torch.arange((rank + 1) * 3 * 4, dtype=torch.float32).reshape(
        -1, 4) + 100 * rank  # rank 0: 3 rows, rank 1: 6 rows
    gathered = all_gather_rows(rows)
    gmm = OnlineGaussianMixture(5, 4, seed=3)
    gmm.update(torch.nn.functional.normalize(gathered.sin(), dim=1))

    runner.train()
    head = runner.model.module.head
    torch.save(
        dict(gathered=gathered, gmm=gmm.state_dict(),
             bank=head.gmm.state_dict(),
             updates=int(head.gmm.num_updates)),
        os.path.join(out_dir, f'rank{rank}.pth'))


if __name__ == '__main__':
    main(*sys.argv[1:4])
