"""Embeddings of a self-supervised model on a data set, as the analysis
tools read them (``frozen_encoder_collapse.py``, ``component_usage.py``,
``target_spread.py``). Both run without gradients, in 256-image batches
through the model's data preprocessor; the model should be in eval mode.
"""
from typing import Tuple

import torch
from mmengine.dataset import default_collate


@torch.no_grad()
def embed_views(model: torch.nn.Module, dataset, num_images: int,
                seed: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Student and teacher embeddings ``(N, G, D)`` of G global views.

    Args:
        model (nn.Module): A DINO-style model (``backbone``, ``neck``,
            ``teacher.module``, ``num_global_views``, ``_embed``).
        dataset: A training set whose pipeline gives the multi-crop views.
        num_images (int): ``N`` images drawn without replacement in an
            order set by ``seed`` (fewer if the data set is smaller).
        seed (int): Seed of that order (the crops follow the global
            random state).

    Returns:
        Tuple[Tensor, Tensor]: Student and teacher embeddings, float32,
        ``(N, G, D)`` with ``G = model.num_global_views`` (as the neck
        gives them).
    """
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(dataset), generator=gen)[:num_images]
    student, teacher = [], []
    teacher_net = model.teacher.module
    for start in range(0, len(order), 256):
        batch = default_collate(
            [dataset[int(i)] for i in order[start:start + 256]])
        views = model.data_preprocessor(batch, True)['inputs']
        views = views[:model.num_global_views]
        student.append(torch.stack(
            model._embed(model.backbone, model.neck, views), dim=1))
        teacher.append(torch.stack(
            model._embed(teacher_net['backbone'], teacher_net['neck'],
                         views), dim=1))
    return torch.cat(student).float(), torch.cat(teacher).float()


@torch.no_grad()
def prediction_embeddings(model: torch.nn.Module, dataset,
                          num_images: int) -> torch.Tensor:
    """Embeddings ``(N, D)`` (float32) of the first ``num_images`` images
    (``N = min(num_images, len(dataset))``) by the model's prediction
    network: the teacher unless ``predict_with`` says otherwise."""
    backbone, neck, _ = model._predict_parts()
    rows = []
    for start in range(0, min(num_images, len(dataset)), 256):
        stop = min(start + 256, num_images, len(dataset))
        batch = default_collate([dataset[i] for i in range(start, stop)])
        inputs = model.data_preprocessor(batch, False)['inputs']
        rows.append(neck(backbone(inputs))[0])
    return torch.cat(rows).float()
