"""DINO's self-distillation loss with centering and a teacher-temperature
warm-up (Caron et al., 2021, https://arxiv.org/abs/2104.14294)."""
from typing import List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine import dist
from mmengine.logging import MessageHub
from mmpretrain.registry import MODELS

from .sinkhorn import sinkhorn


def training_progress(by_epoch: bool) -> float:
    """Current training position read from mmengine's message hub.

    Args:
        by_epoch (bool): Return (fractional) epochs if True, else iterations.

    Returns:
        float: Epochs or iterations done; 0 outside a runner.
    """
    hub = MessageHub.get_current_instance()
    cur_iter = hub.get_info('iter') or 0
    if not by_epoch:
        return float(cur_iter)
    max_iters, max_epochs = hub.get_info('max_iters'), hub.get_info(
        'max_epochs')
    if not max_iters or not max_epochs:
        return float(hub.get_info('epoch') or 0)
    return cur_iter / (max_iters / max_epochs)


@MODELS.register_module()
class DINOLoss(nn.Module):
    """Cross-entropy between centred, sharpened teacher targets and student
    predictions over all teacher-global x student-view pairs except same view.

    Args:
        num_prototypes (int): K, the number of logits per sample.
        student_temp (float): tau_s. Defaults to 0.1.
        teacher_temp (float): tau_t after warm-up. Defaults to 0.07.
        warmup_teacher_temp (float): tau_t at the start. Defaults to 0.04.
        warmup_teacher_temp_epochs (float): Linear warm-up length, in epochs
            (or iterations if ``warmup_by_epoch=False``). Defaults to 30.
        warmup_by_epoch (bool): Unit of the warm-up length. Defaults to True.
        center_momentum (float): Momentum of the running center. Defaults
            to 0.9.
        teacher_balancing (str): How teacher targets are balanced across
            prototypes: ``'center'`` (DINO: ``softmax((t - c) / tau_t)``)
            or ``'sinkhorn'`` (an equal-partition teacher, as DINOv2's
            ``sinkhorn_knopp_teacher`` and SwAV: Sinkhorn-Knopp on
            ``exp(t / tau_t)`` over the global batch of all global views,
            every prototype the same share; the center is still tracked).
            Defaults to 'center'.
        sinkhorn_iterations (int): Sinkhorn-Knopp iterations (DINOv2: 3).
            Defaults to 3.
    """

    def __init__(self,
                 num_prototypes: int,
                 student_temp: float = 0.1,
                 teacher_temp: float = 0.07,
                 warmup_teacher_temp: float = 0.04,
                 warmup_teacher_temp_epochs: float = 30,
                 warmup_by_epoch: bool = True,
                 center_momentum: float = 0.9,
                 teacher_balancing: str = 'center',
                 sinkhorn_iterations: int = 3) -> None:
        super().__init__()
        if teacher_balancing not in ('center', 'sinkhorn'):
            raise ValueError("teacher_balancing must be 'center' or "
                             f"'sinkhorn', got {teacher_balancing!r}")
        if isinstance(sinkhorn_iterations, bool) or not isinstance(
                sinkhorn_iterations, int) or sinkhorn_iterations < 1:
            raise ValueError('sinkhorn_iterations must be an int >= 1, got '
                             f'{sinkhorn_iterations!r}')
        self.teacher_balancing = teacher_balancing
        self.sinkhorn_iterations = sinkhorn_iterations
        for name, value in (('student_temp', student_temp),
                            ('teacher_temp', teacher_temp),
                            ('warmup_teacher_temp', warmup_teacher_temp)):
            if not value > 0:
                raise ValueError(f'{name} must be > 0, got {value}')
        if not 0 <= center_momentum < 1:
            raise ValueError(
                f'center_momentum must be in [0, 1), got {center_momentum}')
        if warmup_teacher_temp_epochs < 0:
            raise ValueError('warmup_teacher_temp_epochs must be >= 0, got '
                             f'{warmup_teacher_temp_epochs}')
        self.student_temp = student_temp
        self.teacher_temp = teacher_temp
        self.warmup_teacher_temp = warmup_teacher_temp
        self.warmup_teacher_temp_epochs = warmup_teacher_temp_epochs
        self.warmup_by_epoch = warmup_by_epoch
        self.center_momentum = center_momentum
        # (1, K) running mean of teacher logits; a buffer, so it is saved.
        self.register_buffer('center', torch.zeros(1, num_prototypes))

    def current_teacher_temp(self, progress: Optional[float] = None) -> float:
        """tau_t at ``progress`` (default: now, from the message hub)."""
        if progress is None:
            progress = training_progress(self.warmup_by_epoch)
        if progress >= self.warmup_teacher_temp_epochs:
            return self.teacher_temp
        frac = progress / self.warmup_teacher_temp_epochs
        return self.warmup_teacher_temp + frac * (
            self.teacher_temp - self.warmup_teacher_temp)

    def forward(self, student_logits: Sequence[torch.Tensor],
                teacher_logits: Sequence[torch.Tensor]) -> torch.Tensor:
        """Average DINO cross-entropy; updates the center.

        Args:
            student_logits (Sequence[Tensor]): One ``(B, K)`` per view, the
                global views first, in the teacher's order.
            teacher_logits (Sequence[Tensor]): One ``(B, K)`` per global view.

        Returns:
            Tensor: Scalar loss.
        """
        if len(student_logits) < 2 and len(teacher_logits) < 2:
            raise ValueError('DINO needs at least two views, got '
                             f'{len(student_logits)}')
        with torch.autocast(
                device_type=self.center.device.type, enabled=False):
            targets = self.teacher_targets(teacher_logits)
            loss = self.cross_view_loss(student_logits, targets)
            self.update_center(teacher_logits)
        return loss

    @torch.no_grad()
    def teacher_targets(self, teacher_logits: Sequence[torch.Tensor]
                        ) -> List[torch.Tensor]:
        """One ``(B, K)`` fp32 target distribution per global view."""
        temp = self.current_teacher_temp()
        logits = [t.detach().float() for t in teacher_logits]
        if self.teacher_balancing == 'center':
            return [F.softmax((t - self.center) / temp, dim=-1)
                    for t in logits]
        # one Sinkhorn over all global views of the global batch
        codes = sinkhorn(torch.cat(logits), self.sinkhorn_iterations, temp)
        return list(codes.split([t.shape[0] for t in logits]))

    def cross_view_loss(self, student_logits: Sequence[torch.Tensor],
                        targets: Sequence[torch.Tensor]) -> torch.Tensor:
        """Mean of ``-sum_k target_k log softmax(s / tau_s)_k`` over pairs
        (teacher global view, student view) of different views.

        Args:
            student_logits (Sequence[Tensor]): One ``(B, K)`` per view, the
                global views first, in the teacher's order.
            targets (Sequence[Tensor]): One ``(B, K)`` distribution per
                global view (rows sum to 1).

        Returns:
            Tensor: Scalar loss (fp32).
        """
        log_preds = [
            F.log_softmax(s.float() / self.student_temp, dim=-1)
            for s in student_logits
        ]
        total, pairs = 0., 0
        for t_idx, target in enumerate(targets):
            for s_idx, log_pred in enumerate(log_preds):
                if s_idx == t_idx:
                    continue  # same view: no loss
                total = total + torch.sum(-target * log_pred, dim=-1).mean()
                pairs += 1
        return total / pairs

    @torch.no_grad()
    def update_center(self, teacher_logits: Sequence[torch.Tensor]) -> None:
        """EMA of the mean teacher logit over the global batch (all ranks).
        A batch with a NaN/Inf logit (an fp16 overflow, whose step AMP's
        loss scaler skips) leaves the center as it was, on every rank (the
        reduced sum decides), instead of poisoning it for good."""
        logits = torch.cat([t.detach().float() for t in teacher_logits])
        batch_sum = logits.sum(dim=0, keepdim=True)
        count = torch.tensor([float(logits.shape[0])], device=logits.device)
        # collectives run unconditionally (no-ops in one process)
        dist.all_reduce(batch_sum, op='sum')
        dist.all_reduce(count, op='sum')
        updated = torch.add(self.center * self.center_momentum,
                            batch_sum / count, alpha=1 - self.center_momentum)
        # no host sync: where() keeps the old center for a bad batch
        self.center.copy_(torch.where(torch.isfinite(batch_sum).all(),
                                      updated, self.center))
