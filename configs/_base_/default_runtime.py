# Runtime of the gmproto_mm configs: mmpretrain's defaults and our
# components (registered on import).
_base_ = ['mmpretrain::_base_/default_runtime.py']

custom_imports = dict(imports=['gmproto_mm'], allow_failed_imports=False)
default_scope = 'mmpretrain'

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3))
randomness = dict(seed=0, deterministic=False)

