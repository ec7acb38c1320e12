# Linear probe on the frozen EMA-teacher backbone of a tiny-ViT DINO run on
# Fashion-MNIST (configs/dino/*vit-tiny-p8*_fmnist*.py):
#   CKPT=work_dirs/dino_vit-tiny-p8_1xb64-3e_fmnist/epoch_3.pth
#   python tools/train.py \
#     configs/benchmarks/vit-tiny-p8_1xb256-linear-coslr-10e_fmnist.py \
#     --cfg-options model.backbone.init_cfg.checkpoint=$CKPT
_base_ = [
    '../_base_/datasets/fmnist_bs256.py',
    '../_base_/models/linear_probe.py',
    '../_base_/schedules/sgd_coslr_linear.py',
    '../_base_/default_runtime.py',
]

embed_dims = 128  # equal to the pretraining backbone's
num_layers = 3    # equal to the pretraining backbone's
model = dict(
    data_preprocessor=_base_.data_preprocessor,
    backbone=dict(
        arch=dict(embed_dims=embed_dims, num_layers=num_layers, num_heads=2,
                  feedforward_channels=embed_dims * 4),
        img_size=32, patch_size=8, in_channels=1,
        frozen_stages=num_layers),  # all: patch embed, tokens, blocks, norm
    head=dict(num_classes=10,
              in_channels=embed_dims))  # equal to backbone embed_dims

max_epochs = 10
param_scheduler = dict(T_max=max_epochs, end=max_epochs)
train_cfg = dict(max_epochs=max_epochs)
auto_scale_lr = dict(base_batch_size=256)  # the lr above is for 256
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=2),
                     logger=dict(interval=50))
