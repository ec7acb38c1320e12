# DINO (joint prototypes), tiny ViT on Fashion-MNIST, on 2 CPU cores: the
# ViT-B recipe's first epochs, where partial prototype collapse happens,
# in ~1500 steps (docs/results.md).
_base_ = [
    '../_base_/datasets/fmnist_bs64_mcrop.py',
    '../_base_/models/dino.py',
    '../_base_/schedules/dino_adamw.py',
    '../_base_/default_runtime.py',
]

embed_dims = 128
bottleneck = 128
model = dict(
    end_momentum=0.004,  # held: the recipe's cosine to 1 spans 400 epochs
    data_preprocessor=_base_.data_preprocessor,
    backbone=dict(
        type='VisionTransformer',
        arch=dict(embed_dims=embed_dims, num_layers=3, num_heads=2,
                  feedforward_channels=embed_dims * 4),
        img_size=32,  # equal to the global crop size
        patch_size=8, in_channels=1,  # 16 + 1 tokens
        drop_path_rate=0.1, out_type='cls_token'),
    neck=dict(in_channels=embed_dims, hid_channels=512,
              bottleneck_channels=bottleneck),
    head=dict(
        in_channels=bottleneck,  # equal to neck bottleneck_channels
        num_prototypes=1024,
        loss=dict(warmup_teacher_temp_epochs=30)))

# the recipe's lr per 256 images at batch 64, a 10 % warm-up, then held
max_epochs = 3  # 2811 steps on the full split; the demo trains 1500
warmup_iters = 150
optim_wrapper = dict(optimizer=dict(lr=0.00075 * 64 / 256,
                                    weight_decay=0.04))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0,
         end=warmup_iters),
]
train_cfg = dict(max_epochs=max_epochs)
auto_scale_lr = dict(base_batch_size=64)  # only with --auto-scale-lr

custom_hooks = [
    dict(type='FreezePrototypesHook', iters=warmup_iters),
    dict(type='PrototypeMonitorHook', interval=50),  # live collapse monitor
]
