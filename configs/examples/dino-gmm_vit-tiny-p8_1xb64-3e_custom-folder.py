# Decoupled DINO on your own images: one folder per class (mmpretrain's
# CustomDataset), gray or colour; see docs/custom_data.md.
#   data/my_images/train/<class>/*.png   training images = the k-NN bank
#   data/my_images/val/<class>/*.png     k-NN queries
#   CONFIG=configs/examples/dino-gmm_vit-tiny-p8_1xb64-3e_custom-folder.py
#   python tools/train.py $CONFIG
#   python tools/test.py $CONFIG \
#     work_dirs/dino-gmm_vit-tiny-p8_1xb64-3e_custom-folder/epoch_3.pth
_base_ = ['../dino/dino-gmm_vit-tiny-p8_1xb64-3e_fmnist.py']

train_root = 'data/my_images/train'
val_root = 'data/my_images/val'
image_size = 32  # global crops; local crops are half of it
num_prototypes = 256  # K: tens of times the number of classes or more
# per-channel pixel mean / std (0-255) of your training images, RGB order
# (gray images load as 3 equal channels); ImageNet's suit photos:
# mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375]
mean = [127.5, 127.5, 127.5]
std = [64.0, 64.0, 64.0]

train_dataloader = dict(dataset=dict(
    _delete_=True,
    type='CustomDataset', data_root=train_root,  # labels are not used
    pipeline=[
        dict(type='LoadImageFromFile'),  # any size; gray -> 3 channels
        dict(type='MultiView', num_views=_base_.num_crops, transforms=[
            [dict(_base_.crop, scale=size, crop_ratio_range=scale),
             *_base_.view_augment]
            for size, scale in zip([image_size, image_size // 2],
                                   _base_.crop_scales['dino'])]),
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
    pipeline=test_pipeline,  # both splits'; mmpretrain's inferencers'
    bank=dict(type='CustomDataset', data_root=train_root),
    query=dict(type='CustomDataset', data_root=val_root)))
