# Decoupled SwAV ResNet-50 on ImageNet-1k: mmpretrain's own SwAV config, its
# Sinkhorn codes computed against GMM means that OnlineEMHook fits to the
# assigned views' embeddings. Changed: the loss, the hooks and the
# ColorJitter type.
_base_ = [
    'mmpretrain::swav/swav_resnet50_8xb32-mcrop-coslr-200e_in1k-224px-96px.py',
    '../_base_/models/decoupled_gmm.py',
]
custom_imports = dict(imports=['gmproto_mm'], allow_failed_imports=False)
# checkpoints that torch >= 2.6's default torch.load reads, as in our runtime
default_hooks = dict(safe_checkpoint=dict(type='SafeCheckpointHook'))

model = dict(
    head=dict(
        loss=dict(
            type='DecoupledSwAVLoss',  # keeps feat_dim, epsilon, num_crops
            num_prototypes=3000,
            gmm=dict(_base_.decoupled_gmm,
                     beta_iters=1 / 200,       # one of the 200 epochs
                     # reseed_start: no lr warm-up: after beta
                     maintenance=dict(_base_.decoupled_maintenance,
                                      reseed_start=1 / 200)))))


def _numpy_safe(view):
    # the view's ColorJitter (in its RandomApply) swapped for ours (numpy 2)
    jitter, = view[1].transforms
    return [view[0], dict(view[1], transforms=[
        dict(jitter, type='NumpySafeColorJitter')]), *view[2:]]


train_dataloader = dict(
    # mmengine 0.10.7 tags every dict of a `pkg::` base config with
    # `_scope_`, which the collate function rejects
    collate_fn=dict(_delete_=True, type='default_collate'),
    dataset=dict(pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='MultiView', num_views=_base_.num_crops,
             transforms=[_numpy_safe(_base_.view_pipeline1),
                         _numpy_safe(_base_.view_pipeline2)]),
        dict(type='PackInputs'),
    ]))

custom_hooks = [
    dict(  # SwAV's own hook, as in the base config
        type='SwAVHook',
        priority='VERY_HIGH',
        batch_size=32,  # equal to train_dataloader batch_size
        epoch_queue_starts=15,
        crops_for_assign=[0, 1],
        feat_dim=128,  # equal to neck out_channels
        queue_length=3840,
        frozen_layers_cfg=dict()),  # no learned prototypes to freeze
    dict(type='OnlineEMHook'),
    dict(type='PrototypeMonitorHook', interval=500),
]
