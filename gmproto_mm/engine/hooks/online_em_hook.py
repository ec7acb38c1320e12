"""Online EM on the prototype banks after every optimizer step."""
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
from mmengine import dist
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS
from mmpretrain.utils import get_ori_model

from ...models.utils.em_bank import (  # find_em_banks: re-exported
    attach_em_updater, find_em_banks)


def all_gather_rows(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``(n_r, D)`` tensors of every rank in rank order.

    Ranks may hold different ``n_r`` (including 0): rows are padded to the
    largest count for ``all_gather`` and trimmed after. Every rank gets the
    identical ``(sum n_r, D)`` result. A no-op in one process.
    """
    if dist.get_world_size() == 1:
        return x
    count = torch.tensor([x.shape[0]], device=x.device)
    counts = [int(c) for c in dist.all_gather(count)]
    padded = x.new_zeros((max(counts), x.shape[1]))
    padded[:x.shape[0]] = x
    gathered = dist.all_gather(padded)
    return torch.cat([g[:n] for g, n in zip(gathered, counts)])


@HOOKS.register_module()
class OnlineEMHook(Hook):
    """Update every Gaussian-mixture prototype bank by one EM step per
    optimizer step, on the teacher embeddings gathered from all ranks.

    Every rank runs the identical update on the identical gathered batch, so
    the banks stay identical without a broadcast; every
    ``sync_check_interval`` updates a checksum comparison guards against
    drift and, if any, re-broadcasts rank 0's state with a warning.

    A gathered batch with a NaN or Inf (an fp16 overflow under AMP, where
    the optimizer wrapper skips the step) is skipped: the mixture is left
    untouched and ``em_skipped`` (the skips so far) is logged; only
    ``max_skips_in_a_row`` skips in a row raise. The decision is the same
    on every rank (the same gathered rows). ``O(N D)`` for the check.

    Args:
        interval (int): Update every ``interval`` optimizer steps; batches in
            between are discarded. Defaults to 1.
        start_iter (int): First iteration to update at. Defaults to 0.
        sync_check_interval (int): Updates between drift checks (0: never).
            Defaults to 100.
        log_prefix (str): Prefix of the logged statistics. Defaults to 'em'.
        max_skips_in_a_row (int): Non-finite batches in a row after which
            training stops with an error (>= 1). Defaults to 10.
    """

    priority = 'NORMAL'  # before LoggerHook (BELOW_NORMAL) logs the stats

    def __init__(self,
                 interval: int = 1,
                 start_iter: int = 0,
                 sync_check_interval: int = 100,
                 log_prefix: str = 'em',
                 max_skips_in_a_row: int = 10) -> None:
        if interval < 1 or start_iter < 0 or sync_check_interval < 0 or \
                max_skips_in_a_row < 1:
            raise ValueError('interval and max_skips_in_a_row must be >= 1, '
                             'start_iter and sync_check_interval >= 0; got '
                             f'{interval}, {max_skips_in_a_row}, '
                             f'{start_iter}, {sync_check_interval}')
        self.interval = interval
        self.start_iter = start_iter
        self.sync_check_interval = sync_check_interval
        self.log_prefix = log_prefix
        self.max_skips_in_a_row = max_skips_in_a_row
        self._skipped: Dict[str, int] = {}  # bank -> skips so far
        self._in_a_row: Dict[str, int] = {}  # bank -> current run of skips
        self._banks: List[Tuple[str, nn.Module]] = []
        self._num_updates = 0
        self._pool_checked: set = set()

    def before_train(self, runner) -> None:
        # every bank it finds refuses embeddings until now (no hook, no run)
        self._banks = attach_em_updater(get_ori_model(runner.model),
                                        'OnlineEMHook',
                                        self.training_updates(runner))
        if not self._banks:
            raise ValueError(
                'OnlineEMHook found no prototype bank: the model needs a head '
                'such as DecoupledGMMHead (a GMMPrototypeBank: a module with '
                '`gmm` and `pop_cached_embeddings()`)')

    def training_updates(self, runner) -> int:
        """EM updates in the whole training: one per ``interval`` optimizer
        steps from ``start_iter`` (an optimizer step every
        ``accumulative_counts`` iterations)."""
        counts = getattr(runner.optim_wrapper, '_accumulative_counts', 1)
        steps = (runner.max_iters - self.start_iter) // counts
        return max(1, -(-steps // self.interval))

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        should_update = getattr(runner.optim_wrapper, 'should_update', None)
        if should_update is not None and not should_update():
            return  # gradient accumulation: keep the cache until the step
        due = runner.iter >= self.start_iter and \
            (runner.iter - self.start_iter) % self.interval == 0
        for name, bank in self._banks:
            embeds = bank.pop_cached_embeddings()  # always: bounded memory
            if not due:
                continue
            embeds = all_gather_rows(embeds)
            if embeds.shape[0] == 0:
                continue  # identical decision on every rank
            if not bool(torch.isfinite(embeds).all()):
                self._skip(runner, name, embeds)
                continue
            self._in_a_row[name] = 0
            self._warn_if_pool_cannot_fill(runner, name, bank.gmm,
                                           embeds.shape[0])
            stats = bank.gmm.update(embeds)
            stats['skipped'] = float(self._skipped.get(name, 0))
            self._log(runner, name, stats)
        if due:
            self._num_updates += 1
            if self.sync_check_interval and \
                    self._num_updates % self.sync_check_interval == 0:
                self.check_sync(runner)

    def _skip(self, runner, name: str, embeds: torch.Tensor) -> None:
        """Leave the mixture untouched for a batch with NaN/Inf rows; raise
        after ``max_skips_in_a_row`` such batches in a row."""
        self._skipped[name] = self._skipped.get(name, 0) + 1
        self._in_a_row[name] = self._in_a_row.get(name, 0) + 1
        self._log(runner, name, dict(skipped=float(self._skipped[name])))
        bad = int((~torch.isfinite(embeds)).any(dim=1).sum())
        if self._in_a_row[name] >= self.max_skips_in_a_row:
            raise RuntimeError(
                f'prototype bank {name!r}: the teacher embeddings held NaN/'
                f'Inf in {self._in_a_row[name]} EM updates in a row (the '
                f'last: {bad} of {embeds.shape[0]} rows); each was skipped '
                'and the prototypes are unchanged, but training does not '
                'recover. Under fp16 AMP this is an overflow: train in '
                "bf16 (optim_wrapper.dtype='bfloat16'), lower the lr, or "
                'resume from an earlier checkpoint; a longer tolerance is '
                "dict(type='OnlineEMHook', max_skips_in_a_row=...)")
        runner.logger.warning(
            f'prototype bank {name!r}: {bad} of {embeds.shape[0]} teacher '
            f'embeddings are NaN/Inf at iteration {runner.iter + 1}; the EM '
            'update is skipped (the prototypes are unchanged)')

    def _warn_if_pool_cannot_fill(self, runner, name: str, gmm,
                                  rows: int) -> None:
        """Once per bank, at its first update: warn when the rows still to
        come cannot fill the initialisation pool (``init_samples``, by
        default K) before training ends -- the run would train against the
        placeholder means and never fit them."""
        if name in self._pool_checked or bool(gmm.initialized) or \
                getattr(gmm, 'init', 'uniform') == 'uniform':
            return
        self._pool_checked.add(name)
        updates_left = -(-(runner.max_iters - runner.iter) // self.interval)
        reachable = gmm.pooled_rows + rows * updates_left
        if reachable < gmm.init_samples:
            runner.logger.warning(
                f'prototype bank {name!r}: init_samples = '
                f'{gmm.init_samples} rows must be pooled before EM starts, '
                f'but at {rows} rows per update only {reachable} arrive '
                'before training ends: the mixture would never be fitted. '
                'Lower init_samples (e.g. model.head.gmm.init_samples='
                f'{max(1, rows)}), use init=\'uniform\', lower K or train '
                'longer')

    def _log(self, runner, bank_name: str, stats: Dict[str, float]) -> None:
        prefix = self.log_prefix if len(self._banks) == 1 else \
            f'{self.log_prefix}_{bank_name.replace(".", "_")}'
        for key, value in stats.items():
            runner.message_hub.update_scalar(f'train/{prefix}_{key}', value)

    def check_sync(self, runner) -> bool:
        """Compare bank checksums across ranks; re-broadcast if they differ.

        Every state tensor (floating point and integer: ``num_updates``,
        ``initialized``) enters :func:`state_checksum`, which sees drift
        that keeps a tensor's sum (swapped rows, +d here and -d there).
        ``O(K D)`` per bank, two all-reduces of a few numbers per tensor.

        Returns:
            bool: True when every bank was identical on every rank.
        """
        in_sync = True
        for name, bank in self._banks:
            state = list(bank.gmm.state_dict().values())
            checksum = state_checksum(state)
            low, high = checksum.clone(), checksum.clone()
            dist.all_reduce(low, op='min')
            dist.all_reduce(high, op='max')
            if torch.equal(low, high):
                continue
            in_sync = False
            runner.logger.warning(f'prototype bank {name!r} drifted across '
                                  'ranks; re-broadcasting rank 0')
            for tensor in state:
                dist.broadcast(tensor, src=0)
        return in_sync


_GOLDEN = (5 ** 0.5 - 1) / 2
_CHECKSUM_ROWS = 4096  # rows per float64 block (bounded temporaries)


def _position_weights(n: int, device: torch.device) -> torch.Tensor:
    """``(n,)`` float64 weights in [1, 2), distinct per position."""
    idx = torch.arange(n, dtype=torch.float64, device=device)
    return idx.mul_(_GOLDEN).frac_().add_(1.0)


def state_checksum(tensors: List[torch.Tensor]) -> torch.Tensor:
    """Four float64 numbers per tensor: its sum, its row sums weighted by
    row position, its column sums weighted by column position, and the
    bilinear form ``w_rows^T X w_cols``, so that swapped rows or columns and
    changes that cancel in the sum still change the checksum.

    Args:
        tensors (list[Tensor]): Any shapes and dtypes (viewed as
            ``(rows, -1)``; scalars as ``(1, 1)``).

    Returns:
        Tensor: ``(4 * len(tensors),)`` float64 on the first tensor's
        device. ``O(total numel)``, in float64 blocks of at most 4,096 rows.
    """
    parts = []
    for tensor in tensors:
        x = tensor.detach().reshape(tensor.shape[0] if tensor.dim() else 1,
                                    -1)
        rows, cols = x.shape
        w_col = _position_weights(cols, x.device)
        w_rows = _position_weights(rows, x.device)
        total = x.new_zeros((4, ), dtype=torch.float64)
        for start in range(0, rows, _CHECKSUM_ROWS):
            block = x[start:start + _CHECKSUM_ROWS].double()
            w_row = w_rows[start:start + block.shape[0]]
            row_sums = block.sum(dim=1)
            weighted = block @ w_col
            total += torch.stack([row_sums.sum(), row_sums @ w_row,
                                  (block.sum(dim=0) @ w_col), weighted @ w_row])
        parts.append(total)
    return torch.cat(parts)
