# Joint DINO ViT-B/16 on ImageNet-1k, 8 GPUs x 128 images (METHOD.md,
# "Reference hyper-parameters"): bash tools/dist_train.sh THIS_CONFIG 8
_base_ = ['./_base_/dino_runtime.py', './_base_/schedules/dino_adamw.py']

# ---- data: 2 global crops 224 (scale 0.4-1) + 10 local crops 96 (0.05-0.4)
data_root = 'data/imagenet/'
num_crops = [2, 10]  # [global, local]
batch_size = 128  # per GPU; 1024 in total on 8 GPUs
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


def _crop(size, scale):
    return dict(type='RandomResizedCrop', scale=size, crop_ratio_range=scale,
                backend='pillow', interpolation='bicubic')


# DINO: blur always on global view 1; blur 0.1 + solarize 0.2 on view 2
global_view1 = [_crop(224, (0.4, 1.)), flip, color_jitter, grayscale,
                _blur(1.0)]
global_view2 = [_crop(224, (0.4, 1.)), flip, color_jitter, grayscale,
                _blur(0.1), dict(type='Solarize', thr=128, prob=0.2)]
local_view = [_crop(96, (0.05, 0.4)), flip, color_jitter, grayscale,
              _blur(0.5)]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiView', num_views=[1, 1, num_crops[1]],
         transforms=[global_view1, global_view2, local_view]),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=10,
    persistent_workers=True,
    pin_memory=True,
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='ImageNet', data_root=data_root, split='train',
                 pipeline=train_pipeline))

# ---- model ---------------------------------------------------------------
model = dict(
    type='DINO',
    base_momentum=0.004,  # teacher momentum 0.996 -> 1 (cosine)
    num_global_views=num_crops[0],
    data_preprocessor=dict(
        type='SelfSupDataPreprocessor', mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375], to_rgb=True),
    backbone=dict(type='VisionTransformer', arch='b', img_size=224,
                  patch_size=16, drop_path_rate=0.1, out_type='cls_token'),
    neck=dict(type='DINONeck', in_channels=768, hid_channels=2048,
              bottleneck_channels=256),
    head=dict(
        type='DINOHead',
        in_channels=256,  # equal to neck bottleneck_channels
        num_prototypes=65536,
        loss=dict(type='DINOLoss', student_temp=0.1, teacher_temp=0.07,
                  warmup_teacher_temp=0.04, warmup_teacher_temp_epochs=50,
                  center_momentum=0.9)))

# ---- schedule: AdamW lr 0.00075 x batch/256, 10 warm-up epochs, 400 epochs
max_epochs = 400
warmup_epochs = 10
optim_wrapper = dict(optimizer=dict(lr=0.00075 * 1024 / 256))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0,
         end=warmup_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-6, by_epoch=True,
         begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingParamScheduler', param_name='weight_decay',
         eta_min_ratio=10., by_epoch=True, begin=0, end=max_epochs,
         convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs)
auto_scale_lr = dict(base_batch_size=1024)  # lr above is for 1024 images
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=10, max_keep_ckpts=3))

# ---- evaluation (tools/test.py): prototype diversity/usage and weighted
# k-NN (k=20, T=0.07) on teacher [CLS] features; bank = ImageNet train
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow',
         interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
test_dataloader = dict(
    batch_size=256,
    num_workers=10,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='KNNDataset',
        bank=dict(type='ImageNet', data_root=data_root, split='train',
                  pipeline=test_pipeline),
        query=dict(type='ImageNet', data_root=data_root, split='val',
                   pipeline=test_pipeline)))
test_evaluator = [
    dict(type='PrototypeDiversityMetric'),
    dict(type='KNNAccuracy', k=20, temperature=0.07),
]
test_cfg = dict(type='TestLoop')
custom_hooks = [
    dict(type='FreezePrototypesHook', epochs=1),
    dict(type='PrototypeMonitorHook', interval=500),
]
