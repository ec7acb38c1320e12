from .fashion_mnist import LocalFashionMNIST, prepare_fashion_mnist
from .knn_dataset import KNNDataset
from .transforms import *  # noqa: F401,F403

__all__ = ['KNNDataset', 'LocalFashionMNIST', 'prepare_fashion_mnist']
