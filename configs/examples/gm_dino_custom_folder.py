# Decoupled DINO on your own images: one folder per class (mmpretrain's
# CustomDataset), gray or colour, trained with tools/train.py and evaluated
# (k-NN + prototype metrics) with tools/test.py. See docs/custom_data.md.
#
#   data/my_images/train/<class>/*.png   training images = the k-NN bank
#   data/my_images/val/<class>/*.png     k-NN queries
#
#   python tools/train.py configs/examples/gm_dino_custom_folder.py
#   python tools/test.py configs/examples/gm_dino_custom_folder.py \
#       work_dirs/gm_dino_custom_folder/epoch_3.pth
_base_ = ['../gm_dino_vitt_fmnist.py']  # tiny ViT, K = 256, OnlineEMHook

train_root = 'data/my_images/train'
val_root = 'data/my_images/val'
image_size = 32  # global crops; local crops are half of it
num_prototypes = 256  # K: tens of times the number of classes or more
# Per-channel pixel mean / std (0-255) of your training images, RGB order;
# gray images are loaded as 3 equal channels. ImageNet's are a fair default
# for photos: mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375].
mean = [127.5, 127.5, 127.5]
std = [64.0, 64.0, 64.0]


def _view(size, scale):
    return [
        dict(type='RandomResizedCrop', scale=size, crop_ratio_range=scale,
             backend='pillow'),
        dict(type='RandomApply', prob=0.8, transforms=[
            dict(type='NumpySafeColorJitter', brightness=0.4, contrast=0.4)]),
        dict(type='RandomFlip', prob=0.5),
    ]


train_dataloader = dict(dataset=dict(
    _delete_=True,
    type='CustomDataset', data_root=train_root,  # labels are not used
    pipeline=[
        dict(type='LoadImageFromFile'),  # any size; gray -> 3 channels
        dict(type='MultiView', num_views=[2, 4],
             transforms=[_view(image_size, (0.4, 1.)),
                         _view(image_size // 2, (0.05, 0.4))]),
        dict(type='PackInputs'),
    ]))

model = dict(
    data_preprocessor=dict(mean=mean, std=std, to_rgb=True),
    backbone=dict(in_channels=3, img_size=image_size),
    head=dict(num_prototypes=num_prototypes))

test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(image_size, image_size), backend='pillow'),
    dict(type='PackInputs'),
]
test_dataloader = dict(dataset=dict(
    _delete_=True,
    type='KNNDataset',
    bank=dict(type='CustomDataset', data_root=train_root,
              pipeline=test_pipeline),
    query=dict(type='CustomDataset', data_root=val_root,
               pipeline=test_pipeline)))
