"""iBOT's masked-patch self-distillation loss
(Zhou et al., 2021, https://arxiv.org/abs/2111.07832)."""
from typing import Sequence, Union

import torch
import torch.nn.functional as F
from mmengine import dist
from mmpretrain.registry import MODELS

from .dino_loss import DINOLoss


@MODELS.register_module()
class IBOTPatchLoss(DINOLoss):
    """Cross-entropy between the teacher's centred, sharpened distribution of
    each masked patch (teacher input unmasked) and the student's prediction
    at that patch (student input masked).

    Normalisation as iBOT's ``iBOTLoss``: mean over the masked tokens of each
    image, then sum over images divided by ``num_images`` (an image without
    masked tokens contributes 0, as in iBOT's ``loss2.mean()``); pass all
    global views at once with ``num_images = views x B`` to get iBOT's mean
    over views. Own running center (``center``, ``(1, K)``) from the teacher
    logits of the masked tokens of the global batch (iBOT centres over all
    patch tokens; the teacher here only scores the masked ones), and the
    teacher-temperature warm-up of :class:`DINOLoss` (same arguments;
    iBOT's ``warmup_teacher_patch_temp`` / ``teacher_patch_temp``).

    Args:
        num_prototypes (int): K, the number of logits per token.
        student_temp (float): tau_s. Defaults to 0.1.
        teacher_temp (float): tau_t after warm-up. Defaults to 0.07.
        warmup_teacher_temp (float): tau_t at the start. Defaults to 0.04.
        warmup_teacher_temp_epochs (float): Linear warm-up length, in epochs
            (or iterations if ``warmup_by_epoch=False``). Defaults to 30.
        warmup_by_epoch (bool): Unit of the warm-up length. Defaults to True.
        center_momentum (float): Momentum of the running center. Defaults
            to 0.9.
    """

    def forward(self, student_logits: torch.Tensor,
                teacher_logits: torch.Tensor, image_index: torch.Tensor,
                num_images: int) -> torch.Tensor:
        """Masked-patch loss; updates the center.

        Args:
            student_logits (Tensor): ``(M, K)`` at the M masked tokens.
            teacher_logits (Tensor): ``(M, K)`` at the same tokens.
            image_index (Tensor): ``(M,)`` long, the image of each token in
                ``[0, num_images)``.
            num_images (int): Images (x views) the tokens come from.

        Returns:
            Tensor: Scalar loss; 0 (still in the graph) when M == 0.
        """
        K = self.center.shape[1]
        if student_logits.dim() != 2 or student_logits.shape[1] != K or \
                teacher_logits.shape != student_logits.shape:
            raise ValueError(
                f'student and teacher logits must both be (M, {K}) (K = '
                'num_prototypes of the patch head), got '
                f'{tuple(student_logits.shape)} and '
                f'{tuple(teacher_logits.shape)}')
        M = student_logits.shape[0]
        if image_index.shape != (M, ) or image_index.is_floating_point():
            raise ValueError('image_index must be an integer (M,) tensor '
                             f'with M = {M}, got {image_index.dtype} '
                             f'{tuple(image_index.shape)}')
        if num_images < 1:
            raise ValueError(f'num_images must be >= 1, got {num_images}')
        if M > 0 and not 0 <= int(image_index.min()) <= int(
                image_index.max()) < num_images:
            raise ValueError(
                f'image_index must lie in [0, num_images={num_images})')
        with torch.autocast(
                device_type=self.center.device.type, enabled=False):
            temp = self.current_teacher_temp()
            target = F.softmax(
                (teacher_logits.detach().float() - self.center) / temp, dim=-1)
            log_pred = F.log_softmax(
                student_logits.float() / self.student_temp, dim=-1)
            token_loss = torch.sum(-target * log_pred, dim=-1)  # (M,)
            index = image_index.long()
            per_image = token_loss.new_zeros(num_images).index_add(
                0, index, token_loss)
            counts = torch.bincount(index, minlength=num_images)
            per_image = per_image / counts.clamp(min=1).to(per_image.dtype)
            # the `* 0` term keeps an empty batch connected to the graph
            loss = per_image.sum() / num_images + student_logits.sum() * 0
            self.update_center(teacher_logits)
        return loss

    @torch.no_grad()
    def update_center(
        self, teacher_logits: Union[torch.Tensor, Sequence[torch.Tensor]]
    ) -> None:
        """EMA of the mean teacher logit of the masked tokens of all ranks;
        kept as is when no rank has a masked token."""
        if isinstance(teacher_logits, torch.Tensor):
            teacher_logits = [teacher_logits]
        logits = torch.cat([t.detach().float() for t in teacher_logits])
        batch_sum = logits.sum(dim=0, keepdim=True)
        count = torch.tensor([float(logits.shape[0])], device=logits.device)
        # collectives run unconditionally, also on ranks with M == 0
        dist.all_reduce(batch_sum, op='sum')
        dist.all_reduce(count, op='sum')
        updated = self.center * self.center_momentum + batch_sum / \
            count.clamp(min=1) * (1 - self.center_momentum)
        self.center.copy_(torch.where(count > 0, updated, self.center))
