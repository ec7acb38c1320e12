"""Pure-math k-NN evaluation and accuracies (no MMEngine dependency).

:func:`weighted_knn_predict` is DINO's weighted k-NN classifier
(Caron et al., https://arxiv.org/abs/2104.14294, ``eval_knn.py``): cosine
similarity between L2-normalised features, the ``k`` most similar bank
samples vote for their label with weight ``exp(sim / T)``.
:func:`topk_accuracy` and :func:`per_group_accuracy` turn scores into
percentages, e.g. per head / medium / tail class group.
"""
from typing import Dict, Mapping, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

ArrayLike = Union[Tensor, np.ndarray]
ClassGroups = Union[Mapping[int, str], Sequence[str]]


def _as_tensor(x: ArrayLike, name: str) -> Tensor:
    if isinstance(x, Tensor):
        return x.detach()
    try:
        return torch.as_tensor(np.asarray(x))
    except (TypeError, ValueError) as err:
        raise ValueError(f'{name} must be a tensor or array, got '
                         f'{type(x).__name__} ({err})') from err


def _check_features(x: Tensor, name: str) -> Tensor:
    if x.dim() != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f'{name} must be a non-empty 2-D (N, D) matrix, got '
                         f'shape {tuple(x.shape)}')
    if not x.is_floating_point():
        x = x.float()
    bad = ~torch.isfinite(x).all(dim=1)
    if bad.any():
        raise ValueError(
            f'{name} contain {int(bad.sum())} rows with non-finite values '
            f'(NaN/Inf), e.g. rows {bad.nonzero().flatten()[:5].tolist()}')
    return x


def _check_labels(labels: ArrayLike, num: int, num_classes: int,
                  name: str) -> Tensor:
    y = _as_tensor(labels, name)
    if y.dim() != 1 or y.numel() != num:
        raise ValueError(f'{name} must be 1-D with {num} entries, got shape '
                         f'{tuple(y.shape)}')
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise ValueError(f'{name} must hold integer class indices, got dtype '
                         f'{y.dtype}')
    y = y.to(torch.int64)
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ValueError(
            f'{name} must lie in [0, {num_classes}), got range '
            f'[{int(y.min())}, {int(y.max())}]; check num_classes')
    return y


def weighted_knn_predict(query_feats: ArrayLike,
                         bank_feats: ArrayLike,
                         bank_labels: ArrayLike,
                         num_classes: int,
                         k: int = 20,
                         temperature: float = 0.07,
                         block_size: int = 1024,
                         bank_block_size: int = 65536) -> Tensor:
    """DINO's weighted k-NN class scores.

    Both feature sets are L2-normalised (``F.normalize``; an all-zero row has
    similarity 0 to everything). For each query the ``k`` bank samples with
    the highest cosine similarity ``s`` vote for their label with weight
    ``exp(s / temperature)``; a class's score is the sum of its votes.
    Queries are processed ``block_size`` at a time and the bank
    ``bank_block_size`` at a time (running top-k), so at most a
    ``(block_size, bank_block_size)`` similarity tile exists at once.

    If ``k`` exceeds the bank size ``M``, all ``M`` bank samples vote
    (``k`` is clamped to ``M``). Ties at the k-th similarity are broken by
    ``torch.topk`` and may differ between block sizes.

    Args:
        query_feats (Tensor | np.ndarray): ``(Q, D)`` query features.
        bank_feats (Tensor | np.ndarray): ``(M, D)`` bank (train) features.
        bank_labels (Tensor | np.ndarray): ``(M,)`` integer labels in
            ``[0, num_classes)``.
        num_classes (int): Number of classes ``C``.
        k (int): Neighbours. Defaults to 20.
        temperature (float): ``T`` of the vote weights. Defaults to 0.07.
        block_size (int): Queries per block. Defaults to 1024.
        bank_block_size (int): Bank rows per block. Defaults to 65536.

    Returns:
        Tensor: ``(Q, C)`` float32 class scores on the queries' device.

    Raises:
        ValueError: On mismatched shapes, empty or non-finite features,
            out-of-range labels, ``k < 1`` or ``temperature <= 0``.

    Example:
        >>> import torch
        >>> from gmproto_mm.evaluation.functional.knn import (
        ...     weighted_knn_predict)
        >>> bank = torch.tensor([[1., 0.], [0., 1.], [1., .1]])
        >>> scores = weighted_knn_predict(torch.tensor([[1., 0.]]), bank,
        ...                               torch.tensor([0, 1, 0]), 2, k=2,
        ...                               temperature=1.0)
        >>> scores.argmax(dim=1)
        tensor([0])
        >>> scores[0, 1].item()  # class 1 is not among the 2 nearest
        0.0
    """
    if int(num_classes) != num_classes or num_classes < 1:
        raise ValueError(
            f'num_classes must be a positive integer, got {num_classes}')
    if int(k) != k or k < 1:
        raise ValueError(f'k must be a positive integer, got {k}')
    if not temperature > 0:
        raise ValueError(f'temperature must be > 0, got {temperature}')
    for name, value in (('block_size', block_size),
                        ('bank_block_size', bank_block_size)):
        if int(value) != value or value < 1:
            raise ValueError(f'{name} must be a positive integer, got {value}')
    query = _check_features(_as_tensor(query_feats, 'query_feats'),
                            'query_feats')
    bank = _check_features(_as_tensor(bank_feats, 'bank_feats'),
                           'bank_feats')
    if query.shape[1] != bank.shape[1]:
        raise ValueError(
            f'query_feats have dimension {query.shape[1]} but bank_feats '
            f'have {bank.shape[1]}')
    labels = _check_labels(bank_labels, bank.shape[0], int(num_classes),
                           'bank_labels')
    device = query.device
    bank = F.normalize(bank.to(device=device, dtype=torch.float32), dim=1)
    labels = labels.to(device)
    num_bank = bank.shape[0]
    k = min(int(k), num_bank)
    scores = torch.zeros(query.shape[0], int(num_classes),
                         dtype=torch.float32, device=device)
    for q0 in range(0, query.shape[0], int(block_size)):
        q = F.normalize(query[q0:q0 + int(block_size)].float(), dim=1)
        best_sim = q.new_empty(q.shape[0], 0)
        best_idx = torch.empty(q.shape[0], 0, dtype=torch.int64,
                               device=device)
        for m0 in range(0, num_bank, int(bank_block_size)):
            sim = q @ bank[m0:m0 + int(bank_block_size)].T
            sim, idx = sim.topk(min(k, sim.shape[1]), dim=1)
            best_sim = torch.cat([best_sim, sim], dim=1)
            best_idx = torch.cat([best_idx, idx + m0], dim=1)
            if best_sim.shape[1] > k:
                best_sim, pos = best_sim.topk(k, dim=1)
                best_idx = best_idx.gather(1, pos)
        weights = (best_sim / temperature).exp()
        scores[q0:q0 + q.shape[0]].scatter_add_(1, labels[best_idx], weights)
    return scores


def topk_accuracy(scores: ArrayLike,
                  labels: ArrayLike,
                  topk: Sequence[int] = (1, 5)) -> Dict[str, float]:
    """Top-k accuracy in percent.

    Args:
        scores (Tensor | np.ndarray): ``(N, C)`` class scores.
        labels (Tensor | np.ndarray): ``(N,)`` integer labels.
        topk (Sequence[int]): Values of ``k``. A ``k`` larger than ``C`` is
            clamped to ``C`` (the key keeps the requested ``k``, e.g.
            ``top5`` is 100.0 with 3 classes). Defaults to (1, 5).

    Returns:
        Dict[str, float]: ``top{k}`` -> percent of samples whose label is
        among the ``k`` highest scores.

    Raises:
        ValueError: On empty or mismatched inputs, non-finite scores,
            out-of-range labels or ``k < 1``.

    Example:
        >>> import torch
        >>> from gmproto_mm.evaluation.functional.knn import topk_accuracy
        >>> scores = torch.tensor([[.1, .9, .0], [.8, .0, .2]])
        >>> topk_accuracy(scores, torch.tensor([1, 2]), topk=(1, 2, 5))
        {'top1': 50.0, 'top2': 100.0, 'top5': 100.0}
    """
    s = _as_tensor(scores, 'scores')
    if s.dim() != 2 or s.shape[0] == 0 or s.shape[1] == 0:
        raise ValueError(f'scores must be a non-empty 2-D (N, C) matrix, got '
                         f'shape {tuple(s.shape)}')
    if s.is_floating_point() and not bool(torch.isfinite(s).all()):
        raise ValueError('scores contain non-finite values (NaN/Inf)')
    y = _check_labels(labels, s.shape[0], s.shape[1], 'labels').to(s.device)
    ks = [int(k) for k in ((topk, ) if isinstance(topk, int) else topk)]
    if not ks or min(ks) < 1:
        raise ValueError(f'topk must be positive integers, got {topk}')
    top = s.topk(min(max(ks), s.shape[1]), dim=1).indices
    hit = top == y[:, None]
    return {
        f'top{k}': 100.0 * float(hit[:, :min(k, s.shape[1])].any(dim=1).sum())
        / s.shape[0]
        for k in ks
    }


def per_group_accuracy(pred_top1: ArrayLike, labels: ArrayLike,
                       class_to_group: ClassGroups) -> Dict[str, float]:
    """Top-1 accuracy in percent for each group of classes.

    Args:
        pred_top1 (Tensor | np.ndarray): ``(N,)`` predicted classes.
        labels (Tensor | np.ndarray): ``(N,)`` true classes.
        class_to_group (Mapping[int, str] | Sequence[str]): Group name of
            each class, e.g. ``['head', 'head', 'tail']`` or
            ``{0: 'head', 2: 'tail'}`` (integer-like string keys accepted).

    Returns:
        Dict[str, float]: Group name -> percent of that group's samples
        predicted correctly, in order of first appearance in
        ``class_to_group``. Groups without samples are omitted.

    Raises:
        ValueError: On mismatched shapes or a label with no group.

    Example:
        >>> import torch
        >>> from gmproto_mm.evaluation.functional.knn import (
        ...     per_group_accuracy)
        >>> per_group_accuracy(torch.tensor([0, 1, 1, 2]),
        ...                    torch.tensor([0, 1, 2, 2]),
        ...                    ['head', 'head', 'tail'])
        {'head': 100.0, 'tail': 50.0}
    """
    pred = _as_tensor(pred_top1, 'pred_top1')
    y = _as_tensor(labels, 'labels')
    if pred.dim() != 1 or y.dim() != 1 or pred.shape != y.shape:
        raise ValueError(
            f'pred_top1 and labels must be 1-D of equal length, got shapes '
            f'{tuple(pred.shape)} and {tuple(y.shape)}')
    if isinstance(class_to_group, Mapping):
        mapping = {int(c): str(g) for c, g in class_to_group.items()}
    elif isinstance(class_to_group, str):
        raise ValueError('class_to_group must be a sequence of group names '
                         'or a {class: group} mapping, not a string')
    else:
        mapping = {c: str(g) for c, g in enumerate(class_to_group)}
    y = y.to(torch.int64).cpu()
    correct = pred.to(torch.int64).cpu() == y
    missing = sorted(set(y.unique().tolist()) - set(mapping))
    if missing:
        raise ValueError(
            f'labels {missing[:10]} have no group in class_to_group; every '
            'label needs a group name')
    groups = list(dict.fromkeys(mapping.values()))
    out: Dict[str, float] = {}
    for group in groups:
        classes = torch.tensor(
            [c for c, g in mapping.items() if g == group], dtype=torch.int64)
        mask = torch.isin(y, classes)
        if mask.any():
            out[group] = 100.0 * float(correct[mask].sum()) / int(mask.sum())
    return out
