# Linear probe on the frozen EMA-teacher backbone of DINO ViT-B/16 on
# ImageNet-1k (configs/dino_vitb_in1k.py, configs/gm_dino_vitb_in1k.py),
# DINO's linear evaluation on 8 GPUs x 128 images:
#   CKPT=work_dirs/dino_vitb_in1k/epoch_400.pth
#   bash tools/dist_train.sh configs/benchmarks/linear_vitb_in1k.py 8 \
#     --cfg-options model.backbone.init_cfg.checkpoint=$CKPT
_base_ = ['mmpretrain::_base_/default_runtime.py']

custom_imports = dict(imports=['gmproto_mm'], allow_failed_imports=False)
default_scope = 'mmpretrain'

# REQUIRED: the pretraining checkpoint, set on the command line as above.
# The placeholder is not a file, so forgetting the flag fails at init with
# "FileNotFoundError: checkpoint 'SET ...' does not exist".
checkpoint = 'SET --cfg-options model.backbone.init_cfg.checkpoint=PATH.pth'

# ---- data: ImageNet-1k train / val --------------------------------------
data_root = 'data/imagenet'
batch_size = 128  # per GPU; 1024 in total on 8 GPUs
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, backend='pillow',
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
]
test_pipeline = [  # equal to configs/dino_vitb_in1k.py test_pipeline
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow',
         interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=10,
    persistent_workers=True,
    pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='ImageNet', data_root=data_root, split='train',
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=batch_size,
    num_workers=10,
    persistent_workers=True,
    pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='ImageNet', data_root=data_root, split='val',
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_evaluator = val_evaluator

# ---- model: frozen ViT-B/16 -> linear classifier on the [CLS] token -------
# DINO concatenates the average-pooled patch tokens to [CLS] for ViT-B; this
# probe uses [CLS] alone (mmpretrain's out_type has no such concatenation).
model = dict(
    type='ImageClassifier',
    data_preprocessor=dict(
        type='ClsDataPreprocessor', num_classes=1000,
        mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
        to_rgb=True),  # as in pretraining
    backbone=dict(
        type='VisionTransformer', arch='b', img_size=224, patch_size=16,
        out_type='cls_token',  # architecture equal to the pretraining one
        drop_path_rate=0.,  # frozen layers still run in train mode
        frozen_stages=12,   # all of ViT-B's 12 blocks, tokens and norms
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint,
                      prefix='teacher.module.backbone.')),  # DINO's teacher
    neck=None,
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=768,  # equal to ViT-B embed_dims
        loss=dict(type='CrossEntropyLoss')))

# ---- schedule: DINO eval_linear.py, lr 0.001 x 1024 / 256, 100 epochs ----
max_epochs = 100
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.001 * 1024 / 256, momentum=0.9,
                   weight_decay=0.))
param_scheduler = dict(
    type='CosineAnnealingLR', T_max=max_epochs, eta_min=0., by_epoch=True,
    begin=0, end=max_epochs, convert_to_iter_based=True)
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=1024)  # lr above is for 1024 images

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3))
randomness = dict(seed=0, deterministic=False)
