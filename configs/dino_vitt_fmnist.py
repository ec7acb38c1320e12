# Joint DINO baseline, tiny ViT on Fashion-MNIST, on 2 CPU cores: the ViT-B
# recipe's first epochs (where partial prototype collapse happens, METHOD.md)
# compressed into ~1500 steps; see "Schedule" below and docs/results.md.
_base_ = ['./_base_/dino_runtime.py', './_base_/schedules/dino_adamw.py']

# ---- data: 2 global crops of 32 px + 4 local crops of 16 px --------------
data_root = 'data/fashion-mnist'
num_crops = [2, 4]  # [global, local]
global_size, local_size = 32, 16
global_scale, local_scale = (0.4, 1.), (0.05, 0.4)  # DINO's crop scales
batch_size = 64


def _view(size, scale):
    return [
        dict(type='RandomResizedCrop', scale=size, crop_ratio_range=scale,
             backend='pillow'),
        dict(type='RandomApply', prob=0.8, transforms=[
            dict(type='NumpySafeColorJitter', brightness=0.4, contrast=0.4)]),
        dict(type='RandomFlip', prob=0.5),
    ]


train_pipeline = [
    dict(type='MultiView', num_views=num_crops,
         transforms=[_view(global_size, global_scale),
                     _view(local_size, local_scale)]),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=2,
    persistent_workers=True,
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='LocalFashionMNIST', data_root=data_root,
                 split='train', pipeline=train_pipeline))

# ---- model ---------------------------------------------------------------
embed_dims = 128
bottleneck = 128
num_prototypes = 1024
model = dict(
    type='DINO',
    base_momentum=0.004,  # teacher momentum 0.996 ...
    end_momentum=0.004,   # ... held: the recipe's cosine to 1 spans 400 ep.
    num_global_views=num_crops[0],
    data_preprocessor=dict(
        type='SelfSupDataPreprocessor', mean=[72.94], std=[90.02],
        to_rgb=False),
    backbone=dict(
        type='VisionTransformer',
        arch=dict(embed_dims=embed_dims, num_layers=3, num_heads=2,
                  feedforward_channels=embed_dims * 4),
        img_size=global_size, patch_size=8, in_channels=1,  # 16 + 1 tokens
        drop_path_rate=0.1, out_type='cls_token'),
    neck=dict(type='DINONeck', in_channels=embed_dims, hid_channels=512,
              bottleneck_channels=bottleneck),
    head=dict(
        type='DINOHead',
        in_channels=bottleneck,  # equal to neck bottleneck_channels
        num_prototypes=num_prototypes,
        loss=dict(type='DINOLoss', student_temp=0.1, teacher_temp=0.07,
                  warmup_teacher_temp=0.04, warmup_teacher_temp_epochs=30,
                  center_momentum=0.9)))

# ---- schedule: the recipe's first epochs, at our batch -------------------
# lr = the recipe's 0.00075 per 256 images (METHOD.md), linearly scaled to
# batch 64, after a 10 % warm-up, then held. We measured the alternative, the
# batch-1024 peak lr 0.003 unscaled (so that prototypes move per step as far
# as in the recipe): it did not make the joint prototypes collapse within the
# demo's budget either, and it collapsed both encoders' embeddings to a few
# dimensions (effective rank 20 at init -> 4.0 joint / 2.8 decoupled after
# 1500 steps, vs 6.2 / 5.1 here) and cost k-NN accuracy (69.8 / 61.5 vs
# 75.4 / 73.5 %); see docs/results.md. Within the recipe's first epochs its
# weight decay (0.04 -> 0.4 over 400 epochs), teacher temperature (0.04 ->
# 0.07 over 50) and momentum (0.996) barely move, so they are held or warmed
# up over 10x this run. max_epochs = 3 is 2811 steps on the full train
# split; the demo trains 3 epochs of 32000 images (1500 steps).
max_epochs = 3
warmup_iters = 150  # 10 % of the demo's 1500 steps (recipe: 10 epochs)
optim_wrapper = dict(optimizer=dict(lr=0.00075 * batch_size / 256,
                                    weight_decay=0.04))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0,
         end=warmup_iters),
]
train_cfg = dict(max_epochs=max_epochs)
auto_scale_lr = dict(base_batch_size=batch_size)  # only with --auto-scale-lr


# ---- evaluation (tools/test.py): prototype diversity and usage, and
# weighted k-NN (k=20, T=0.07) on teacher [CLS] features, train split = bank
test_pipeline = [
    dict(type='Resize', scale=(global_size, global_size), backend='pillow'),
    dict(type='PackInputs'),
]
test_dataloader = dict(
    batch_size=256,
    num_workers=2,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='KNNDataset',
        bank=dict(type='LocalFashionMNIST', data_root=data_root,
                  split='train', pipeline=test_pipeline),
        query=dict(type='LocalFashionMNIST', data_root=data_root,
                   split='test', pipeline=test_pipeline)))
test_evaluator = [
    dict(type='PrototypeDiversityMetric'),
    dict(type='KNNAccuracy', k=20, temperature=0.07),
]
test_cfg = dict(type='TestLoop')

# live collapse monitor: unique@eps of the current prototypes in the log
custom_hooks = [
    # recipe: the first of its 400 epochs
    dict(type='FreezePrototypesHook', iters=warmup_iters),
    dict(type='PrototypeMonitorHook', interval=50),
]
