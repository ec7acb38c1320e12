from .knn_accuracy import KNNAccuracy
from .prototype_diversity import PrototypeDiversityMetric, prototype_classes

__all__ = ['KNNAccuracy', 'PrototypeDiversityMetric', 'prototype_classes']
