from .fashion_mnist import LocalFashionMNIST, prepare_fashion_mnist
from .inaturalist import INaturalist2018, frequency_groups
from .knn_dataset import KNNDataset
from .transforms import *  # noqa: F401,F403

__all__ = [
    'INaturalist2018', 'KNNDataset', 'LocalFashionMNIST', 'frequency_groups',
    'prepare_fashion_mnist'
]
