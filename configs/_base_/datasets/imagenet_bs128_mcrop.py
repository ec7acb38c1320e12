# ImageNet-1k: the multi-crop training set (2 global 224 px + local 96 px
# views, DINO's augmentations) in each recipe's crop scales and number of
# local views, and the k-NN test set (train = bank, val = queries).
_base_ = ['./knn.py']

data_root = 'data/imagenet/'
batch_size = 128
crops = dict(  # [global, local] views and crop scales
    dino=([2, 10], [(0.4, 1.), (0.05, 0.4)]),  # DINO's ViT recipe
    dino_resnet=([2, 8], [(0.14, 1.), (0.05, 0.14)]),  # DINO's ResNet recipe
    carp=([2, 6], [(0.2, 1.), (0.05, 0.2)]))  # CARP's
num_crops = crops['dino'][0]
crop = dict(type='RandomResizedCrop', backend='pillow',
            interpolation='bicubic')
color_jitter = dict(
    type='RandomApply', prob=0.8, transforms=[
        dict(type='NumpySafeColorJitter', brightness=0.4, contrast=0.4,
             saturation=0.2, hue=0.1)])
grayscale = dict(type='RandomGrayscale', prob=0.2, keep_channels=True,
                 channel_weights=(0.114, 0.587, 0.2989))
flip = dict(type='RandomFlip', prob=0.5)


def _blur(prob):
    return dict(type='GaussianBlur', magnitude_range=(0.1, 2.0),
                magnitude_std='inf', prob=prob)


# after the crop; blur always on global view 1, blur 0.1 + solarize on 2
global_augment1 = [flip, color_jitter, grayscale, _blur(1.0)]
global_augment2 = [flip, color_jitter, grayscale, _blur(0.1),
                   dict(type='Solarize', thr=128, prob=0.2)]
local_augment = [flip, color_jitter, grayscale, _blur(0.5)]
train_pipelines = {
    recipe: [
        dict(type='LoadImageFromFile'),
        dict(type='MultiView', num_views=[1, 1, views[1]], transforms=[
            [dict(crop, scale=224, crop_ratio_range=scales[0]),
             *global_augment1],
            [dict(crop, scale=224, crop_ratio_range=scales[0]),
             *global_augment2],
            [dict(crop, scale=96, crop_ratio_range=scales[1]),
             *local_augment],
        ]),
        dict(type='PackInputs'),
    ]
    for recipe, (views, scales) in crops.items()
}
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=10,
    persistent_workers=True,
    pin_memory=True,
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='ImageNet', data_root=data_root, split='train',
                 pipeline=train_pipelines['dino']))
data_preprocessor = dict(
    type='SelfSupDataPreprocessor', mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375], to_rgb=True)

test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow',
         interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
test_dataloader = dict(
    num_workers=10,
    dataset=dict(
        pipeline=test_pipeline,  # both splits'; mmpretrain's inferencers'
        bank=dict(type='ImageNet', data_root=data_root, split='train'),
        query=dict(type='ImageNet', data_root=data_root, split='val')))
