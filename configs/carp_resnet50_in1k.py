# Joint CARP ResNet-50 on ImageNet-1k, 8 GPUs x 32 images: the recipe of
# CARP's reference code (sthalles/carp, main_carp.py defaults: 100 epochs,
# LARS, fp16). Values marked "CARP:" are its; the rest is DINO's ResNet-50
# config this one builds on (data, evaluation, runtime).
#   bash tools/dist_train.sh configs/carp_resnet50_in1k.py 8
_base_ = ['./dino_resnet50_in1k.py']

num_crops = [2, 6]  # CARP: 2 global + local_crops_number=6
batch_size = 32  # CARP: batch_size_per_gpu=32, 256 in total on 8 GPUs
color_jitter = {{_base_.color_jitter}}
grayscale = {{_base_.grayscale}}
flip = {{_base_.flip}}


def _blur(prob):
    return dict(type='GaussianBlur', magnitude_range=(0.1, 2.0),
                magnitude_std='inf', prob=prob)


def _crop(size, scale):
    return dict(type='RandomResizedCrop', scale=size, crop_ratio_range=scale,
                backend='pillow', interpolation='bicubic')


# CARP: DINO's augmentations, crop scales 0.2-1 (global), 0.05-0.2 (local)
train_dataloader = dict(
    batch_size=batch_size,
    dataset=dict(pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='MultiView', num_views=[1, 1, num_crops[1]],
             transforms=[
                 [_crop(224, (0.2, 1.)), flip, color_jitter, grayscale,
                  _blur(1.0)],
                 [_crop(224, (0.2, 1.)), flip, color_jitter, grayscale,
                  _blur(0.1), dict(type='Solarize', thr=128, prob=0.2)],
                 [_crop(96, (0.05, 0.2)), flip, color_jitter, grayscale,
                  _blur(0.5)],
             ]),
        dict(type='PackInputs'),
    ]))

model = dict(
    base_momentum=0.01,  # CARP: momentum_teacher 0.99 -> 1 (cosine)
    end_momentum=0.,
    num_global_views=num_crops[0],
    backbone=dict(zero_init_residual=True),  # CARP: torchvision's, True
    neck=dict(
        norm_cfg=dict(type='SyncBN'),  # CARP: use_bn_in_head=True, SyncBN
        # CARP: the last layer scores the un-normalised bottleneck
        normalize=False),
    head=dict(
        num_prototypes=65536,  # CARP: out_dim
        norm_last_layer=True,  # CARP: unit-norm prototypes
        loss=dict(_delete_=True, type='CARPLoss',
                  partition_size=512)))  # CARP: partition_size

# ---- schedule. CARP: LARS (trust coefficient 0.001, momentum 0.9), lr 0.45
# x batch / 256, no warm-up, cosine to 0.0048 over 100 epochs, constant
# weight decay 1e-6; biases and norms (1-D parameters) without weight decay
# and LARS scaling; no clipping; fp16. mmpretrain's LARS differs from
# CARP's (Barlow Twins') in second order only: trust ratio eta |w| /
# (|g| + wd |w|) instead of eta |w| / |g + wd w|, lr inside the momentum.
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
auto_scale_lr = dict(base_batch_size=256)  # lr above is for 256 images

# CARP trains its last layer from the first step (no frozen epoch)
custom_hooks = [dict(type='PrototypeMonitorHook', interval=500)]
