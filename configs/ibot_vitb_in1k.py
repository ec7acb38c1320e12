# Joint iBOT ViT-B/16 on ImageNet-1k (https://arxiv.org/abs/2111.07832),
# 8 GPUs x 128 images: bash tools/dist_train.sh THIS_CONFIG 8
# The DINO ViT-B recipe (crops, AdamW lr 0.00075 x 1024/256, 10 warm-up
# epochs, weight decay 0.04 -> 0.4, grad clip 3, teacher momentum 0.996 -> 1,
# last layer frozen 1 epoch, 400 epochs: iBOT's ViT-B/16 length) plus
# masked-patch self-distillation. iBOT's values below are from its paper and
# main_ibot.py; its ViT-B args file (Google Drive) was not checked here, and
# it trained with global/local crop scales (0.25 or 0.32)-1 / 0.05-(0.25 or
# 0.32) where we keep DINO's 0.4-1 / 0.05-0.4 from the base config.
_base_ = ['./dino_vitb_in1k.py']

model = dict(
    type='IBOT',
    mask_ratio=(0.1, 0.5),   # --pred_ratio 0 0.3 --pred_ratio_var 0 0.2:
    mask_prob=0.5,           # ... a global view is masked w.p. 0.5
    mask_min_patches=16,     # BEiT/iBOT: (14 // 3) ** 2 on the 14x14 grid
    patch_loss_weight=1.0,   # --lambda2 1.0
    # all tokens (B, 1 + 196, 768) after the final norm; drop path 0.1
    # (inherited) on the student only: the teacher runs in eval mode
    backbone=dict(type='MaskedVisionTransformer', out_type='raw'),
    # --out_dim 8192 --norm_last_layer true (DINOHead's default)
    head=dict(
        num_prototypes=8192,
        loss=dict(warmup_teacher_temp_epochs=30)),  # iBOT: 30 (DINO: 50)
    # --patch_out_dim 8192. iBOT's ViT-B ran --shared_head true, i.e. one
    # last layer for [CLS] and patches (two centers); here the neck (MLP) is
    # shared and the patch tokens get their own K prototypes (iBOT's
    # --shared_head false layout), so a decoupled twin fits one mixture per
    # token type.
    patch_head=dict(
        type='DINOHead',
        in_channels=256,  # equal to neck bottleneck_channels
        num_prototypes=8192,
        # --warmup_teacher_patch_temp 0.04 --teacher_patch_temp 0.07 over
        # --warmup_teacher_temp_epochs 30 (shared with the [CLS] temperature)
        loss=dict(type='IBOTPatchLoss', student_temp=0.1, teacher_temp=0.07,
                  warmup_teacher_temp=0.04, warmup_teacher_temp_epochs=30,
                  center_momentum=0.9)))

# as the DINO ViT-B config; FreezePrototypesHook also freezes the patch
# head's last layer (--freeze_last_layer 1 freezes both in iBOT)
custom_hooks = [
    dict(type='FreezePrototypesHook', epochs=1),
    dict(type='PrototypeMonitorHook', interval=500),
]
