from .fashion_mnist import LocalFashionMNIST, prepare_fashion_mnist
from .fashion_mnist_lt import FashionMNISTLT, assign_groups, long_tail_counts
from .inaturalist import INaturalist2018, frequency_groups
from .knn_dataset import KNNDataset
from .transforms import *  # noqa: F401,F403

__all__ = [
    'FashionMNISTLT', 'INaturalist2018', 'KNNDataset', 'LocalFashionMNIST',
    'assign_groups', 'frequency_groups', 'long_tail_counts',
    'prepare_fashion_mnist'
]
