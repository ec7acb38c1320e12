# Linear probe on the frozen EMA-teacher backbone of a DINO ViT-B/16 run on
# ImageNet-1k (configs/dino/*vit-base-p16*_in1k.py), DINO's linear
# evaluation on 8 GPUs x 128 images:
#   CKPT=work_dirs/dino_vit-base-p16_8xb128-coslr-400e_in1k/epoch_400.pth
#   bash tools/dist_train.sh \
#     configs/benchmarks/vit-base-p16_8xb128-linear-coslr-100e_in1k.py 8 \
#     --cfg-options model.backbone.init_cfg.checkpoint=$CKPT
_base_ = [
    '../_base_/datasets/imagenet_bs128.py',
    '../_base_/models/linear_probe.py',
    '../_base_/schedules/sgd_coslr_linear.py',
    '../_base_/default_runtime.py',
]

# DINO concatenates the pooled patch tokens to [CLS] for ViT-B; [CLS] here
model = dict(
    data_preprocessor=_base_.data_preprocessor,
    backbone=dict(arch='b', img_size=224, patch_size=16,
                  frozen_stages=12),  # all of ViT-B's blocks, tokens, norms
    head=dict(num_classes=1000,
              in_channels=768))  # equal to ViT-B embed_dims

# DINO: lr 0.001 x 1024 / 256, 100 epochs
max_epochs = 100
optim_wrapper = dict(optimizer=dict(lr=0.001 * 1024 / 256))
param_scheduler = dict(T_max=max_epochs, end=max_epochs)
train_cfg = dict(max_epochs=max_epochs)
auto_scale_lr = dict(base_batch_size=1024)  # the lr above is for 1024
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=10, max_keep_ckpts=3))
