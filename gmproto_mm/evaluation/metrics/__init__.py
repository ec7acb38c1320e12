from .dump_predictions import DumpPredictions
from .knn_accuracy import KNNAccuracy
from .prototype_diversity import PrototypeDiversityMetric, prototype_classes

__all__ = [
    'DumpPredictions', 'KNNAccuracy', 'PrototypeDiversityMetric',
    'prototype_classes'
]
