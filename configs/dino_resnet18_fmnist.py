# Tiny CPU twin of dino_resnet50_in1k.py (DINO's ResNet-50 recipe): ResNet-18
# on Fashion-MNIST, 2 x 32 px + 4 x 16 px crops, K = 1024; the tests train it
# for a few steps. Ours, not tuned: the sizes, the schedule (warm-up, then a
# constant lr, as dino_vitt_fmnist.py) and the BN in the neck (DINO's
# use_bn_in_head option, on here so that the tests exercise it).
_base_ = ['./dino_resnet50_in1k.py']

data_root = 'data/fashion-mnist'
num_crops = [2, 4]
global_size = 32
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
    pin_memory=False,
    dataset=dict(
        _delete_=True,
        type='LocalFashionMNIST', data_root=data_root, split='train',
        pipeline=[
            # DINO's ResNet crop scales
            dict(type='MultiView', num_views=num_crops,
                 transforms=[_view(global_size, (0.14, 1.)),
                             _view(16, (0.05, 0.14))]),
            dict(type='PackInputs'),
        ]))

bottleneck = 128
model = dict(
    num_global_views=num_crops[0],
    data_preprocessor=dict(mean=[72.94], std=[90.02], to_rgb=False),
    backbone=dict(depth=18, in_channels=1, norm_cfg=dict(type='BN')),
    neck=dict(in_channels=512,  # ResNet-18's last stage
              hid_channels=512, bottleneck_channels=bottleneck,
              norm_cfg=dict(type='BN1d')),
    head=dict(in_channels=bottleneck,  # equal to neck bottleneck_channels
              num_prototypes=1024))

max_epochs = 3
warmup_iters = 150
optim_wrapper = dict(optimizer=dict(lr=0.03 * batch_size / 256))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0,
         end=warmup_iters),
]
train_cfg = dict(max_epochs=max_epochs)
auto_scale_lr = dict(base_batch_size=batch_size)
default_hooks = dict(logger=dict(interval=10),
                     checkpoint=dict(interval=1, max_keep_ckpts=3))

# evaluation (tools/test.py): prototype metrics and weighted k-NN on the
# teacher's pooled ResNet features, train split = bank
test_pipeline = [
    dict(type='Resize', scale=(global_size, global_size), backend='pillow'),
    dict(type='PackInputs'),
]
test_dataloader = dict(
    num_workers=2,
    dataset=dict(
        _delete_=True,
        type='KNNDataset',
        bank=dict(type='LocalFashionMNIST', data_root=data_root,
                  split='train', pipeline=test_pipeline),
        query=dict(type='LocalFashionMNIST', data_root=data_root,
                   split='test', pipeline=test_pipeline)))
custom_hooks = [
    dict(type='FreezePrototypesHook', iters=warmup_iters),
    dict(type='PrototypeMonitorHook', interval=50),
]
