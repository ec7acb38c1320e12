# Linear probe on the frozen EMA-teacher backbone of a tiny-ViT DINO run on
# Fashion-MNIST (any of configs/*dino_vitt_fmnist*.py):
#   CKPT=work_dirs/dino_vitt_fmnist/epoch_3.pth
#   python tools/train.py configs/benchmarks/linear_vitt_fmnist.py \
#     --cfg-options model.backbone.init_cfg.checkpoint=$CKPT
_base_ = ['mmpretrain::_base_/default_runtime.py']

custom_imports = dict(imports=['gmproto_mm'], allow_failed_imports=False)
default_scope = 'mmpretrain'

# REQUIRED: the pretraining checkpoint, set on the command line as above.
# The placeholder is not a file, so forgetting the flag fails at init with
# "FileNotFoundError: checkpoint 'SET ...' does not exist".
checkpoint = 'SET --cfg-options model.backbone.init_cfg.checkpoint=PATH.pth'

# ---- data: real Fashion-MNIST, balanced train / test splits ---------------
data_root = 'data/fashion-mnist'
img_size = 32  # equal to the pretraining global_size and backbone img_size
batch_size = 256
train_pipeline = [
    dict(type='RandomResizedCrop', scale=img_size, crop_ratio_range=(0.4, 1.),
         backend='pillow'),  # DINO's global-crop scale range
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
]
test_pipeline = [  # equal to the pretraining config's test_pipeline
    dict(type='Resize', scale=(img_size, img_size), backend='pillow'),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=2,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='LocalFashionMNIST', data_root=data_root,
                 split='train', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=batch_size,
    num_workers=2,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='LocalFashionMNIST', data_root=data_root,
                 split='test', pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_evaluator = val_evaluator

# ---- model: frozen backbone -> linear classifier on the [CLS] token -------
embed_dims = 128  # equal to configs/dino_vitt_fmnist.py
num_layers = 3    # equal to configs/dino_vitt_fmnist.py
model = dict(
    type='ImageClassifier',
    data_preprocessor=dict(
        type='ClsDataPreprocessor', num_classes=10,
        mean=[72.94], std=[90.02], to_rgb=False),  # as in pretraining
    backbone=dict(
        type='VisionTransformer',  # architecture equal to the pretraining one
        arch=dict(embed_dims=embed_dims, num_layers=num_layers, num_heads=2,
                  feedforward_channels=embed_dims * 4),
        img_size=img_size, patch_size=8, in_channels=1,
        out_type='cls_token',
        drop_path_rate=0.,  # frozen layers still run in train mode
        frozen_stages=num_layers,  # all: patch embed, tokens, blocks, norm
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint,
                      prefix='teacher.module.backbone.')),  # DINO's teacher
    neck=None,
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=embed_dims,  # equal to backbone embed_dims
        loss=dict(type='CrossEntropyLoss')))

# ---- schedule: SGD + cosine, no weight decay (DINO's linear evaluation) ---
max_epochs = 10
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=0.))
param_scheduler = dict(
    type='CosineAnnealingLR', T_max=max_epochs, eta_min=0., by_epoch=True,
    begin=0, end=max_epochs, convert_to_iter_based=True)
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=batch_size)  # lr above is for 256

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2))
randomness = dict(seed=0, deterministic=False)
