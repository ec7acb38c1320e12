# Runtime of the gmproto_mm configs: mmpretrain 1.2's default_runtime.py
# written out (no `mmpretrain::` base: no `_scope_` tags, no pkg_resources)
# with our components (registered on import) and defaults.
custom_imports = dict(imports=['gmproto_mm'], allow_failed_imports=False)
default_scope = 'mmpretrain'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='VisualizationHook', enable=False),
    # checkpoints that torch >= 2.6's default torch.load reads (mmpretrain's
    # get_model, tools/test.py, tools/train.py --resume)
    safe_checkpoint=dict(type='SafeCheckpointHook'))

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='UniversalVisualizer', vis_backends=vis_backends)

log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, deterministic=False)
