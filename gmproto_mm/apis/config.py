"""Read a config file, naming the fix when an ``mmpretrain::`` base needs
``pkg_resources``."""
from mmengine.config import Config

PKG_RESOURCES_HINT = (
    'mmengine <= 0.10.7 resolves `mmpretrain::` base configs with '
    'pkg_resources, which setuptools 82 removed. Install it with '
    '`pip install "setuptools<82"` (only such configs need it; ours: '
    'configs/swav/swav-gmm_resnet50_8xb32-mcrop-coslr-200e_in1k-224px-96px'
    '.py, mmpretrain\'s own SwAV config)')


def load_config(filename: str) -> Config:
    """``Config.fromfile(filename)``, with an actionable error when it
    inherits an ``mmpretrain::`` config and ``pkg_resources`` is missing.

    Args:
        filename (str): The config file.

    Returns:
        Config: The resolved config (``custom_imports`` imported).

    Raises:
        RuntimeError: If resolving a ``pkg::`` base needs ``pkg_resources``
            and it cannot be imported; the message gives the pip command.
    """
    try:
        return Config.fromfile(filename)
    except ModuleNotFoundError as err:
        if err.name != 'pkg_resources':
            raise
        raise RuntimeError(f'{filename} cannot be read: {err}. '
                           f'{PKG_RESOURCES_HINT}') from err
