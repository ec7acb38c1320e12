"""Distributed runs on CPU-only machines (gloo), used by ``tools/``."""
import torch
import torch.distributed as torch_dist
from mmengine.config import Config


def prepare_cpu_distributed(cfg: Config) -> Config:
    """Let mmengine's Runner run distributed without CUDA.

    Why: mmengine 0.10.7's ``init_dist('pytorch')`` calls
    ``torch.cuda.set_device`` unconditionally, and its default DDP wrapper
    passes ``device_ids=[LOCAL_RANK]``, which DDP rejects for CPU modules.
    When CUDA is absent and a launcher is set, we start the gloo process
    group ourselves (the Runner then skips ``init_dist``) and wrap with
    ``MMDistributedDataParallel`` without ``device_ids``. With CUDA, or
    without a launcher, nothing changes.

    Args:
        cfg (Config): The full config; ``cfg.launcher`` must be set.

    Returns:
        Config: The same config, possibly with ``model_wrapper_cfg`` set.
    """
    if cfg.get('launcher', 'none') != 'pytorch' or torch.cuda.is_available():
        return cfg
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(backend='gloo')
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel',
            device_ids=None,  # overrides the Runner's [LOCAL_RANK]
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    return cfg
