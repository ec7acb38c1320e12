"""Install gmproto_mm on top of an installed torch (any CUDA build).

    pip install -e ".[lite]"   # with mmcv-lite (what the tests use)
    pip install -e ".[full]"   # with a full mmcv (CUDA ops), e.g. from mim

As mmpretrain's, the requirements name no mmcv flavour: pip cannot tell
which one is installed under build isolation, and installing both breaks
both. The extras pick one; importing ``gmproto_mm`` without either raises
an ImportError with these two commands.
"""
import os.path as osp

from setuptools import find_packages, setup


def _version() -> str:
    scope: dict = {}
    with open(osp.join('gmproto_mm', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


setup(
    name='gmproto_mm',
    version=_version(),
    description='Decoupled Gaussian-mixture prototypes for self-supervised '
    'learning (arXiv 2510.20108) as MMPretrain components',
    long_description=open('README.md').read() if osp.exists('README.md')
    else '',
    long_description_content_type='text/markdown',
    packages=find_packages(include=['gmproto_mm', 'gmproto_mm.*']),
    python_requires='>=3.10',  # torch 2.14, the tested version, needs 3.10
    install_requires=[
        'torch>=2.0',
        'torchvision',
        'numpy',
        'matplotlib',
        'mmengine>=0.10.0,<1.0',
        'mmpretrain>=1.2.0,<2.0',
        # no setuptools pin: only a config with an `mmpretrain::` base needs
        # pkg_resources (gone in setuptools 82); tools/train.py names the fix
    ],
    extras_require=dict(
        # one mmcv flavour, never both; mmpretrain 1.2 takes 2.0 - 2.3
        lite=['mmcv-lite>=2.0.0,<2.4.0'],  # pure Python: enough here
        full=['mmcv>=2.0.0,<2.4.0'],  # compiled ops for your torch / CUDA
        tensorboard=['tensorboard'],  # for TensorboardVisBackend
        tests=['pytest', 'pytest-xdist', 'scikit-learn'],
    ),
    license='Apache-2.0',
)
