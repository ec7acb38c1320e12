# iBOT (joint prototypes), tiny ViT on Fashion-MNIST, on 2 CPU cores: the
# DINO twin plus masked-patch self-distillation.
_base_ = [
    '../dino/dino_vit-tiny-p8_1xb64-3e_fmnist.py',
    '../_base_/models/ibot.py',
]

model = dict(
    _base_.ibot,
    mask_min_patches=4,  # (8 // 3) ** 2 on the 8x8 grid
    # all tokens (B, 1 + 64, C); masked patches -> learned mask token
    backbone=dict(type='MaskedVisionTransformer', out_type='raw',
                  patch_size=4),  # the 8x8 grid above
    patch_head=dict(
        _base_.patch_head,
        in_channels=_base_.bottleneck,  # equal to neck bottleneck_channels
        num_prototypes=1024,
        loss=dict(_base_.patch_head.loss, warmup_teacher_temp_epochs=2)))
