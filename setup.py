"""Install gmproto_mm: ``pip install -e .``"""
import os.path as osp

from setuptools import find_packages, setup


def _version() -> str:
    scope: dict = {}
    with open(osp.join('gmproto_mm', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def _mmcv_requirement() -> str:
    """mmcv-lite, unless a full mmcv is already installed (never both)."""
    try:
        from importlib.metadata import PackageNotFoundError, version
        version('mmcv')
        return 'mmcv>=2.0.0'
    except PackageNotFoundError:
        return 'mmcv-lite>=2.0.0'


setup(
    name='gmproto_mm',
    version=_version(),
    description='Decoupled Gaussian-mixture prototypes for self-supervised '
    'learning (arXiv 2510.20108) as MMPretrain components',
    long_description=open('README.md').read() if osp.exists('README.md')
    else '',
    long_description_content_type='text/markdown',
    packages=find_packages(include=['gmproto_mm', 'gmproto_mm.*']),
    python_requires='>=3.8',
    install_requires=[
        'torch>=2.0',
        'torchvision',
        'numpy',
        'matplotlib',
        'mmengine>=0.10.0,<1.0',
        _mmcv_requirement(),
        'mmpretrain>=1.2.0,<2.0',
    ],
    extras_require=dict(tests=['pytest']),
    license='Apache-2.0',
)
