# Fashion-MNIST (gray, resized to 32 px): the multi-crop training set, in
# each recipe's crop scales, and the k-NN test set (train split = bank,
# test split = queries).
_base_ = ['./knn.py']

data_root = 'data/fashion-mnist'
batch_size = 64
num_crops = [2, 4]  # [global, local]
crop_scales = dict(  # [global, local]
    dino=[(0.4, 1.), (0.05, 0.4)],  # DINO's ViT recipe
    dino_resnet=[(0.14, 1.), (0.05, 0.14)],  # DINO's ResNet recipe
    carp=[(0.2, 1.), (0.05, 0.2)])  # CARP's
crop = dict(type='RandomResizedCrop', backend='pillow')
view_augment = [  # after each view's crop
    dict(type='RandomApply', prob=0.8, transforms=[
        # mmpretrain's ColorJitter needs 3 channels
        dict(type='NumpySafeColorJitter', brightness=0.4, contrast=0.4)]),
    dict(type='RandomFlip', prob=0.5),
]
train_pipelines = {
    recipe: [
        dict(type='MultiView', num_views=num_crops, transforms=[
            [dict(crop, scale=32, crop_ratio_range=scales[0]), *view_augment],
            [dict(crop, scale=16, crop_ratio_range=scales[1]), *view_augment],
        ]),
        dict(type='PackInputs'),
    ]
    for recipe, scales in crop_scales.items()
}
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=2,
    persistent_workers=True,
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='LocalFashionMNIST', data_root=data_root,
                 split='train', pipeline=train_pipelines['dino']))
data_preprocessor = dict(type='SelfSupDataPreprocessor', mean=[72.94],
                         std=[90.02], to_rgb=False)

test_pipeline = [
    dict(type='ToGray'),  # gray data as is; colour files (inferencers) to gray
    dict(type='Resize', scale=(32, 32), backend='pillow'),
    dict(type='PackInputs'),
]
test_dataloader = dict(
    num_workers=2,
    dataset=dict(
        pipeline=test_pipeline,  # both splits'; mmpretrain's inferencers'
        bank=dict(type='LocalFashionMNIST', data_root=data_root,
                  split='train'),
        query=dict(type='LocalFashionMNIST', data_root=data_root,
                   split='test')))
