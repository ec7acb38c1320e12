"""The pure functions are importable from ``gmproto_mm.evaluation`` (and
``.functional``), as mmpretrain's ``evaluation/functional/__init__.py``."""
import doctest
import inspect

import torch

import gmproto_mm.evaluation as evaluation
import gmproto_mm.evaluation.functional as functional
from gmproto_mm.evaluation.functional import diversity, knn, prototype_io


def test_every_public_function_is_exported_from_both_levels():
    public = {
        name
        for module in (diversity, knn, prototype_io)
        for name, obj in vars(module).items()
        if inspect.isfunction(obj) and not name.startswith('_')
        and obj.__module__ == module.__name__
    }
    assert {'prototype_diversity', 'nearest_neighbour_cosine',
            'prototype_usage', 'usage_perplexity', 'weighted_knn_predict',
            'load_prototypes'} <= public
    assert public <= set(functional.__all__)
    for name in functional.__all__:
        assert getattr(evaluation, name) is getattr(functional, name)


def test_top_level_import_computes():
    from gmproto_mm.evaluation import prototype_diversity, prototype_usage
    protos = torch.eye(4).repeat(2, 1)  # 8 rows, 4 distinct
    assert prototype_diversity(protos, [0.1])['unique@0.1'] == 50.0
    usage = prototype_usage(torch.tensor([0, 0, 1, 1]), 8,
                            torch.full((4, 8), 1 / 8))
    assert set(usage) == {'used_prototypes', 'argmax_perplexity',
                          'soft_perplexity'}


def test_package_docstring_example_runs():
    result = doctest.testmod(functional, verbose=False)
    assert result.attempted > 0 and result.failed == 0
