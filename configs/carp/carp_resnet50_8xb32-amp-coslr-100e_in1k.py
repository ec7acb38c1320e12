# CARP (joint prototypes) ResNet-50 on ImageNet-1k, 8 GPUs x 32 images: the
# recipe of CARP's reference code (sthalles/carp, main_carp.py defaults) on
# DINO's ResNet-50 config; "CARP:" marks its values.
_base_ = ['../dino/dino_resnet50_8xb64-coslr-100e_in1k.py']

num_crops = _base_.crops['carp'][0]  # CARP: 6 local crops
train_dataloader = dict(
    batch_size=32,  # CARP: batch_size_per_gpu
    dataset=dict(pipeline=_base_.train_pipelines['carp']))

model = dict(
    base_momentum=0.01,  # CARP: momentum_teacher 0.99 -> 1 (cosine)
    end_momentum=0.,
    backbone=dict(zero_init_residual=True),  # CARP: torchvision's
    neck=dict(
        norm_cfg=dict(type='SyncBN'),  # CARP: use_bn_in_head=True
        normalize=False),  # CARP: logits on the un-normalised bottleneck
    head=dict(
        loss=dict(_delete_=True, type='CARPLoss',
                  partition_size=512)))  # CARP: partition_size

# CARP: LARS (trust 0.001), lr 0.45 x batch / 256, no warm-up, cosine to
# 0.0048, weight decay 1e-6, none (and no LARS scaling) on 1-D parameters,
# no clipping, fp16
max_epochs = 100
optim_wrapper = dict(
    type='AmpOptimWrapper', dtype='float16', loss_scale='dynamic',
    optimizer=dict(_delete_=True, type='LARS', lr=0.45 * 256 / 256,
                   momentum=0.9, weight_decay=1e-6, eta=0.001),
    clip_grad=None,
    paramwise_cfg=dict(_delete_=True, custom_keys={
        'bn': dict(decay_mult=0., lars_exclude=True),  # backbone norms
        'downsample.1': dict(decay_mult=0., lars_exclude=True),
        'bias': dict(decay_mult=0., lars_exclude=True),
        # the neck's BatchNorm1d (Linear, BN, GELU, Linear, BN, GELU, Linear)
        'neck.mlp.1.': dict(decay_mult=0., lars_exclude=True),
        'neck.mlp.4.': dict(decay_mult=0., lars_exclude=True)}))
param_scheduler = [
    dict(type='CosineAnnealingLR', eta_min=0.0048, by_epoch=True, begin=0,
         end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs)
auto_scale_lr = dict(base_batch_size=256)  # the lr above is for 256

# CARP trains its last layer from the first step (no frozen epoch)
custom_hooks = [dict(type='PrototypeMonitorHook', interval=500)]
