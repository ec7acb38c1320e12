from .fashion_mnist import LocalFashionMNIST, prepare_fashion_mnist
from .transforms import *  # noqa: F401,F403

__all__ = ['LocalFashionMNIST', 'prepare_fashion_mnist']
