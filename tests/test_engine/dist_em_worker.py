"""Run under torchrun by test_online_em_hook.py (not collected by pytest).

Each rank: (1) gathers unequal-size rows with ``all_gather_rows`` and runs
one EM update on them; (2) trains the decoupled tiny-ViT config briefly
with the drift check off, recording its own cached embeddings and the rows each EM
update received; (3) plants drift on rank 1 and calls ``check_sync``; then
saves everything to ``OUT/rank{r}.pth`` for the test to compare.
"""
import os
import sys

import torch
from mmengine.config import Config
from mmengine.runner import Runner

import gmproto_mm  # noqa: F401
from gmproto_mm.engine import prepare_cpu_distributed
from gmproto_mm.engine.hooks import OnlineEMHook, all_gather_rows
from gmproto_mm.models import OnlineGaussianMixture

# EM from the first step on, means started on the first batch's rows (K
# exceeds the batch: near-duplicates, so merge_within merges) and
# re-seeding from update 0, plus the stale-count decay: every EM mechanism
# of ours runs on both ranks
GMM_OPTIONS = dict(init_samples=1, init='sample', reseed_start=0,
                   stale_decay=0.05)


def _swap_rows(gmm) -> None:
    gmm.mu[[0, 1]] = gmm.mu[[1, 0]]


def _cancelling(gmm) -> None:
    # one entry up and another down by the same amount, exactly: the two
    # exchange values (``+= d`` and ``-= d`` in fp32 may round apart)
    gmm.acc_sum[[0, 1], [0, 1]] = gmm.acc_sum[[1, 0], [1, 0]]


# drift planted on rank 1; all but the first keep every tensor's sum
DRIFTS = dict(
    value=lambda gmm: gmm.mu[0, 0].add_(1e-3),
    swapped_rows=_swap_rows,
    cancelling=_cancelling,
    num_updates=lambda gmm: gmm.num_updates.add_(1),
    initialized=lambda gmm: gmm.initialized.fill_(False))


def record_bank(bank, local, received, moves) -> None:
    """Wrap the bank's contract so each call is recorded."""
    pop, update = bank.pop_cached_embeddings, bank.gmm.update

    def recorded_pop():
        rows = pop()
        local.append(rows.clone())
        return rows

    def recorded_update(x):
        received.append(x.shape[0])
        out = update(x)
        moves.append((out.get('reseeded', 0.0), out.get('merged', 0.0)))
        return out

    bank.pop_cached_embeddings = recorded_pop
    bank.gmm.update = recorded_update


def main(config: str, out_dir: str, data_root: str) -> None:
    cfg = Config.fromfile(config)
    cfg.launcher = 'pytorch'
    cfg.work_dir = out_dir
    cfg.train_dataloader.update(batch_size=8, num_workers=0,
                                persistent_workers=False)
    cfg.train_dataloader.dataset.update(indices=48, data_root=data_root)
    cfg.train_cfg.max_epochs = 1
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=100)
    cfg.model.head.gmm.update(GMM_OPTIONS)
    # no drift check: equal banks must come from the gathered update alone
    cfg.custom_hooks = [dict(type='OnlineEMHook', sync_check_interval=0)]
    runner = Runner.from_cfg(prepare_cpu_distributed(cfg))

    rank = torch.distributed.get_rank()
    rows = torch.arange((rank + 1) * 3 * 4, dtype=torch.float32).reshape(
        -1, 4) + 100 * rank  # rank 0: 3 rows, rank 1: 6 rows
    gathered = all_gather_rows(rows)
    gmm = OnlineGaussianMixture(5, 4, seed=3)
    gmm.update(torch.nn.functional.normalize(gathered.sin(), dim=1))

    head = runner.model.module.head
    start = {k: v.clone() for k, v in head.gmm.state_dict().items()}
    local, received, moves = [], [], []
    record_bank(head.em_bank, local, received, moves)
    runner.train()
    bank = {k: v.clone() for k, v in head.gmm.state_dict().items()}

    # the repair path: rank 1's bank drifts; check_sync must see it, warn
    # and re-broadcast rank 0; a second check finds them equal. Every kind
    # of drift, also those that keep each tensor's sum.
    hook = next(h for h in runner.hooks if isinstance(h, OnlineEMHook))
    warnings = []
    runner.logger.warning = warnings.append
    checks = {}
    for kind, plant in DRIFTS.items():
        if rank == 1:
            plant(head.gmm)
        checks[kind] = (hook.check_sync(runner), hook.check_sync(runner))
    drifted, repaired = checks['value']
    torch.save(
        dict(gathered=gathered, gmm=gmm.state_dict(), start=start,
             bank=bank, local=local, received=received, moves=moves,
             updates=int(head.gmm.num_updates), drifted=drifted,
             repaired=repaired, checks=checks, warnings=warnings,
             after_repair=head.gmm.state_dict()),
        os.path.join(out_dir, f'rank{rank}.pth'))


if __name__ == '__main__':
    main(*sys.argv[1:4])
