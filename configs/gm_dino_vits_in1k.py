# Decoupled DINO ViT-S/16 on ImageNet-1k (DINO's ViT-S/16 recipe): the
# ViT-B config with a ViT-S backbone, lr 0.0005 x batch/256, tau_t warm-up
# over 30 epochs.    bash tools/dist_train.sh configs/gm_dino_vits_in1k.py 8
_base_ = ['./gm_dino_vitb_in1k.py']

model = dict(
    backbone=dict(arch='deit-small'),  # ViT-S/16: 384 wide, 12 layers, 6 heads
    neck=dict(in_channels=384),  # equal to ViT-S embed_dims
    head=dict(loss=dict(warmup_teacher_temp_epochs=30)))
optim_wrapper = dict(optimizer=dict(lr=0.0005 * 1024 / 256))
