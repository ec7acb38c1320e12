# Joint iBOT baseline (https://arxiv.org/abs/2111.07832), tiny ViT on
# Fashion-MNIST: the DINO twin plus masked-patch self-distillation; trains on
# 2 CPU cores.
_base_ = ['./dino_vitt_fmnist.py']

model = dict(
    type='IBOT',
    mask_ratio=(0.1, 0.5),   # iBOT: --pred_ratio 0 0.3 --pred_ratio_var 0 0.2
    mask_prob=0.5,           # ... i.e. half the global views unmasked
    mask_min_patches=4,      # (8 // 3) ** 2 on the 8x8 grid (32 px / 4 px)
    patch_loss_weight=1.0,   # iBOT's lambda2
    # all tokens (B, 1 + 64, C); masked patches -> learned mask token
    backbone=dict(type='MaskedVisionTransformer', out_type='raw',
                  patch_size=4),  # the 8x8 grid above
    # the [CLS] head stays DINO's (K = 1024, DINOLoss)
    patch_head=dict(
        type='DINOHead',
        in_channels=128,  # equal to neck bottleneck_channels
        num_prototypes=1024,
        loss=dict(type='IBOTPatchLoss', student_temp=0.1, teacher_temp=0.07,
                  warmup_teacher_temp=0.04, warmup_teacher_temp_epochs=2,
                  center_momentum=0.9)))
