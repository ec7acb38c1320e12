# DINO (joint prototypes) ViT-B/16 on ImageNet-1k, 8 GPUs x 128 images:
# the reference recipe of docs/method.md.
_base_ = [
    '../_base_/datasets/imagenet_bs128_mcrop.py',
    '../_base_/models/dino.py',
    '../_base_/schedules/dino_adamw.py',
    '../_base_/default_runtime.py',
]

model = dict(
    data_preprocessor=_base_.data_preprocessor,
    backbone=dict(type='VisionTransformer', arch='b', img_size=224,
                  patch_size=16, drop_path_rate=0.1, out_type='cls_token'),
    neck=dict(in_channels=768, hid_channels=2048, bottleneck_channels=256),
    head=dict(
        in_channels=256,  # equal to neck bottleneck_channels
        num_prototypes=65536,
        loss=dict(warmup_teacher_temp_epochs=50)))

# lr 0.00075 x batch / 256 after 10 warm-up epochs
max_epochs = 400
optim_wrapper = dict(optimizer=dict(lr=0.00075 * 1024 / 256))
param_scheduler = [
    _base_.lr_warmup,
    dict(_base_.lr_cosine, end=max_epochs),
    dict(_base_.wd_cosine, end=max_epochs),
]
train_cfg = dict(max_epochs=max_epochs)
auto_scale_lr = dict(base_batch_size=1024)  # the lr above is for 1024
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=10, max_keep_ckpts=3))

custom_hooks = [
    dict(type='FreezePrototypesHook', epochs=1),  # last layer, 1st epoch
    dict(type='PrototypeMonitorHook', interval=500),
]
