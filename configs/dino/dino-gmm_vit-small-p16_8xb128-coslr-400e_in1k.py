# Decoupled DINO ViT-S/16 on ImageNet-1k (DINO's ViT-S/16 recipe): the
# ViT-B/16 config with a ViT-S backbone.
_base_ = ['./dino-gmm_vit-base-p16_8xb128-coslr-400e_in1k.py']

model = dict(
    backbone=dict(arch='deit-small'),  # 384 wide, 12 layers, 6 heads
    neck=dict(in_channels=384),  # equal to ViT-S embed_dims
    head=dict(loss=dict(warmup_teacher_temp_epochs=30)))
optim_wrapper = dict(optimizer=dict(lr=0.0005 * 1024 / 256))
