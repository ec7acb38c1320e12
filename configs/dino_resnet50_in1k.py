# Joint DINO ResNet-50 on ImageNet-1k, 8 GPUs x 64 images: DINO's ResNet-50
# command (facebookresearch/dino README, "ResNet-50 and other convnets
# trainings": --arch resnet50 --optimizer sgd --lr 0.03 --weight_decay 1e-4
# --weight_decay_end 1e-4 --global_crops_scale 0.14 1 --local_crops_scale
# 0.05 0.14, 100 epochs), the rest at main_dino.py's defaults. Marked
# "DINO:" where a value is theirs, "ours:" where it is our choice.
#   bash tools/dist_train.sh configs/dino_resnet50_in1k.py 8
_base_ = ['./dino_vitb_in1k.py']  # data, evaluation and runtime; ViT swapped

num_crops = [2, 8]  # DINO: main_dino.py's local_crops_number=8
batch_size = 64  # DINO: batch_size_per_gpu=64, 512 in total on 8 GPUs
color_jitter = {{_base_.color_jitter}}
grayscale = {{_base_.grayscale}}
flip = {{_base_.flip}}


def _blur(prob):
    return dict(type='GaussianBlur', magnitude_range=(0.1, 2.0),
                magnitude_std='inf', prob=prob)


def _crop(size, scale):
    return dict(type='RandomResizedCrop', scale=size, crop_ratio_range=scale,
                backend='pillow', interpolation='bicubic')


# DINO: the ViT augmentations, crop scales 0.14-1 (global), 0.05-0.14 (local)
train_dataloader = dict(
    batch_size=batch_size,
    dataset=dict(pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='MultiView', num_views=[1, 1, num_crops[1]],
             transforms=[
                 [_crop(224, (0.14, 1.)), flip, color_jitter, grayscale,
                  _blur(1.0)],
                 [_crop(224, (0.14, 1.)), flip, color_jitter, grayscale,
                  _blur(0.1), dict(type='Solarize', thr=128, prob=0.2)],
                 [_crop(96, (0.05, 0.14)), flip, color_jitter, grayscale,
                  _blur(0.5)],
             ]),
        dict(type='PackInputs'),
    ]))

model = dict(
    base_momentum=0.004,  # DINO: momentum_teacher 0.996 -> 1 (cosine)
    num_global_views=num_crops[0],
    backbone=dict(
        _delete_=True, type='ResNet', depth=50,  # DINO: torchvision resnet50
        out_indices=(3, ),  # last stage (B, 2048, 7, 7), average-pooled
        zero_init_residual=False,  # torchvision's default, as DINO's
        norm_cfg=dict(type='SyncBN')),  # DINO: convert_sync_batchnorm
    neck=dict(
        in_channels=2048,  # DINO: embed_dim = resnet50.fc.in_features
        hid_channels=2048, bottleneck_channels=256,  # DINO: DINOHead's
        # DINO: use_bn_in_head=False (main_dino.py's default, which the
        # README command keeps), so no norm_cfg; its True would be
        # norm_cfg=dict(type='SyncBN')
    ),
    head=dict(
        num_prototypes=65536,  # DINO: out_dim
        norm_last_layer=True,  # DINO: norm_last_layer (default True)
        # DINO: teacher_temp = warmup_teacher_temp = 0.04 (its defaults)
        loss=dict(teacher_temp=0.04, warmup_teacher_temp=0.04,
                  warmup_teacher_temp_epochs=0)))

# ---- schedule. DINO: SGD (momentum 0.9), lr 0.03 x batch/256, 10 linear
# warm-up epochs, cosine to min_lr 1e-6 over 100 epochs, constant weight
# decay 1e-4, none on biases and norms, grad clip 3.0, last layer frozen
# during the first epoch (the ViT base's FreezePrototypesHook).
max_epochs = 100
warmup_epochs = 10
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='SGD', lr=0.03 * 512 / 256,
                   momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0,
         end=warmup_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-6, by_epoch=True,
         begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs)
auto_scale_lr = dict(base_batch_size=512)  # lr above is for 512 images
