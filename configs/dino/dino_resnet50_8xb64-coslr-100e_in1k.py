# DINO (joint prototypes) ResNet-50 on ImageNet-1k, 8 GPUs x 64 images:
# DINO's ResNet-50 command (facebookresearch/dino README), the rest at
# main_dino.py's defaults; "DINO:" marks its values.
_base_ = [
    '../_base_/datasets/imagenet_bs128_mcrop.py',
    '../_base_/models/dino.py',
    '../_base_/schedules/dino_adamw.py',
    '../_base_/default_runtime.py',
]

num_crops = _base_.crops['dino_resnet'][0]  # DINO: 8 local crops
train_dataloader = dict(
    batch_size=64,  # DINO: batch_size_per_gpu
    dataset=dict(pipeline=_base_.train_pipelines['dino_resnet']))

model = dict(
    data_preprocessor=_base_.data_preprocessor,
    backbone=dict(
        type='ResNet', depth=50,  # DINO: torchvision resnet50
        out_indices=(3, ),  # last stage (B, 2048, 7, 7), average-pooled
        zero_init_residual=False,  # torchvision's default, as DINO's
        norm_cfg=dict(type='SyncBN')),  # DINO: convert_sync_batchnorm
    # DINO: use_bn_in_head=False (its default), so no norm_cfg
    neck=dict(in_channels=2048, hid_channels=2048, bottleneck_channels=256),
    head=dict(
        in_channels=256,  # equal to neck bottleneck_channels
        num_prototypes=65536,  # DINO: out_dim
        norm_last_layer=True,  # DINO: norm_last_layer
        loss=dict(teacher_temp=0.04,  # DINO: teacher_temp (its default)
                  warmup_teacher_temp_epochs=0)))

# DINO: SGD lr 0.03 x batch / 256, constant weight decay 1e-4 (the clipping
# and no-decay groups as with AdamW)
max_epochs = 100
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='SGD', lr=0.03 * 512 / 256,
                   momentum=0.9, weight_decay=1e-4))
param_scheduler = [_base_.lr_warmup, dict(_base_.lr_cosine, end=max_epochs)]
train_cfg = dict(max_epochs=max_epochs)
auto_scale_lr = dict(base_batch_size=512)  # the lr above is for 512
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=10, max_keep_ckpts=3))

custom_hooks = [
    dict(type='FreezePrototypesHook', epochs=1),  # DINO: freeze_last_layer
    dict(type='PrototypeMonitorHook', interval=500),
]
