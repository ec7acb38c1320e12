# Runtime shared by every gmproto_mm config: mmpretrain's defaults plus our
# components (registered into mmpretrain's registries on import).
_base_ = ['mmpretrain::_base_/default_runtime.py']

custom_imports = dict(imports=['gmproto_mm'], allow_failed_imports=False)
default_scope = 'mmpretrain'

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3))

# DINO freezes the learned prototypes (last layer) during the first epoch.
custom_hooks = [dict(type='FreezePrototypesHook', epochs=1)]

randomness = dict(seed=0, deterministic=False)
