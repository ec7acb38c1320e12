# iBOT (joint prototypes) ViT-B/16 on ImageNet-1k, 8 GPUs x 128 images: the
# DINO ViT-B/16 recipe (its crops) plus masked-patch self-distillation;
# "iBOT:" marks the values of its paper and main_ibot.py.
_base_ = [
    '../dino/dino_vit-base-p16_8xb128-coslr-400e_in1k.py',
    '../_base_/models/ibot.py',
]

model = dict(
    _base_.ibot,
    mask_min_patches=16,  # (14 // 3) ** 2 on the 14x14 grid
    # all tokens (B, 1 + 196, 768) after the final norm
    backbone=dict(type='MaskedVisionTransformer', out_type='raw'),
    head=dict(
        num_prototypes=8192,  # iBOT: --out_dim
        loss=dict(warmup_teacher_temp_epochs=30)),  # iBOT: 30
    # a shared neck, own K patch prototypes (iBOT: --shared_head false)
    patch_head=dict(
        _base_.patch_head,
        in_channels=256,  # equal to neck bottleneck_channels
        num_prototypes=8192,  # iBOT: --patch_out_dim
        loss=dict(_base_.patch_head.loss, warmup_teacher_temp_epochs=30)))

custom_hooks = [
    dict(type='FreezePrototypesHook', epochs=1),  # both heads' last layers
    dict(type='PrototypeMonitorHook', interval=500),
]
