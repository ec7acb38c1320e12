# Tiny CPU twin of gm_swav_resnet50_in1k.py: ResNet-18 on Fashion-MNIST with
# 2 x 32 px + 4 x 16 px crops and K = 512 decoupled prototypes.
_base_ = ['./gm_swav_resnet50_in1k.py']

data_root = 'data/fashion-mnist'
num_crops = [2, 4]
batch_size = 64


def _view(size, scale):
    return [
        dict(type='RandomResizedCrop', scale=size, crop_ratio_range=scale,
             backend='pillow'),
        dict(type='RandomApply', prob=0.8, transforms=[
            dict(type='NumpySafeColorJitter', brightness=0.4, contrast=0.4)]),
        dict(type='RandomFlip', prob=0.5),
    ]


train_dataloader = dict(
    batch_size=batch_size,
    num_workers=2,
    dataset=dict(
        _delete_=True,
        type='LocalFashionMNIST', data_root=data_root, split='train',
        pipeline=[
            dict(type='MultiView', num_views=num_crops,
                 transforms=[_view(32, (0.4, 1.)), _view(16, (0.05, 0.4))]),
            dict(type='PackInputs'),
        ]))

model = dict(
    data_preprocessor=dict(mean=[72.94], std=[90.02], to_rgb=False),
    backbone=dict(depth=18, in_channels=1, norm_cfg=dict(type='BN')),
    neck=dict(in_channels=512, hid_channels=512, out_channels=64),
    head=dict(loss=dict(feat_dim=64,  # equal to neck out_channels
                        num_crops=num_crops, num_prototypes=512,
                        gmm=dict(beta_iters=200, reseed_start=200))))

optim_wrapper = dict(optimizer=dict(type='LARS', lr=0.3))
find_unused_parameters = False
train_cfg = dict(max_epochs=10)
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=10, eta_min=3e-4, by_epoch=True,
         begin=0, end=10, convert_to_iter_based=True)
]
custom_hooks = [
    dict(type='SwAVHook', priority='VERY_HIGH', batch_size=batch_size,
         epoch_queue_starts=3, crops_for_assign=[0, 1],
         feat_dim=64,  # equal to neck out_channels
         queue_length=512, frozen_layers_cfg=dict()),
    dict(type='OnlineEMHook'),
    dict(type='PrototypeMonitorHook', interval=50),
]
default_hooks = dict(logger=dict(interval=10))
