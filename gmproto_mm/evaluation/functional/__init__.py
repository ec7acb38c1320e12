"""Pure functions behind the metrics (torch / numpy in, numbers out), as
mmpretrain's ``evaluation/functional``: usable without a Runner.

Example:
    >>> import torch
    >>> from gmproto_mm.evaluation import prototype_diversity
    >>> prototype_diversity(torch.eye(3).repeat(2, 1), [0.1])['unique@0.1']
    50.0
"""
from .diversity import (DEFAULT_THRESHOLDS, diversity_tiles,
                        nearest_neighbour_cosine, prototype_diversity,
                        prototype_diversity_steps, prototype_usage,
                        usage_perplexity)
from .knn import per_group_accuracy, topk_accuracy, weighted_knn_predict
from .prototype_io import load_prototypes, prototypes_from_state_dict

__all__ = [
    'DEFAULT_THRESHOLDS', 'diversity_tiles', 'load_prototypes',
    'nearest_neighbour_cosine', 'per_group_accuracy', 'prototype_diversity',
    'prototype_diversity_steps', 'prototype_usage',
    'prototypes_from_state_dict', 'topk_accuracy', 'usage_perplexity',
    'weighted_knn_predict'
]
