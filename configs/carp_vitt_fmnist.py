# Joint CARP (Silva & Ramirez Rivera, NeurIPS 2023) on Fashion-MNIST, on 2
# CPU cores: the DINO twin's tiny ViT, batch and budget (1,500 steps of 64)
# with CARP's head, loss, crops and teacher; decoupled twin:
# gm_carp_vitt_fmnist.py. Values marked "CARP:" are its recipe's.
_base_ = ['./dino_vitt_fmnist.py']

# ---- data: CARP's crop scales; 4 local crops (CARP: 6) for the DINO
# twins' cost per step
global_scale, local_scale = (0.2, 1.), (0.05, 0.2)  # CARP's crop scales


def _view(size, scale):
    return [
        dict(type='RandomResizedCrop', scale=size, crop_ratio_range=scale,
             backend='pillow'),
        dict(type='RandomApply', prob=0.8, transforms=[
            dict(type='NumpySafeColorJitter', brightness=0.4, contrast=0.4)]),
        dict(type='RandomFlip', prob=0.5),
    ]


train_pipeline = [
    dict(type='MultiView', num_views={{_base_.num_crops}},
         transforms=[_view(32, global_scale), _view(16, local_scale)]),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

# ---- model: K = 1,024 learned prototypes (the DINO twin's)
model = dict(
    base_momentum=0.01,  # CARP: teacher momentum 0.99 ...
    end_momentum=0.01,   # ... held: its cosine to 1 spans 100 epochs
    # CARP: logits <z, w_k> on the un-normalised bottleneck (its norm is
    # the learned inverse temperature of the block softmaxes)
    neck=dict(normalize=False),
    head=dict(loss=dict(
        _delete_=True, type='CARPLoss',
        # 16 blocks of 64: a block is small against the 512 rows (8 views
        # x 64) whose mean the KL term balances (CARP: 512 of 65,536)
        partition_size=64)))

# CARP trains its last layer from the first step (no frozen epoch)
custom_hooks = [dict(type='PrototypeMonitorHook', interval=50)]

# ---- schedule. CARP's LARS (trust coefficient 0.001, momentum 0.9, weight
# decay 1e-6; none, and no LARS scaling, on biases and norms) kept: in a
# quick check (400 steps, k-NN on 5,000 + 2,000 images) it trained as far
# as the DINO twin's AdamW (k-NN 66.2 against 64.8; untrained 65.0).
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='LARS',
                   lr=0.45 * 64 / 256,  # CARP: 0.45 per 256 images
                   momentum=0.9, weight_decay=1e-6, eta=0.001),
    clip_grad=None,  # CARP: no clipping
    paramwise_cfg=dict(_delete_=True, custom_keys={  # 1-D parameters
        'bias': dict(decay_mult=0., lars_exclude=True),
        'ln': dict(decay_mult=0., lars_exclude=True)}))  # ViT LayerNorms
# CARP: no warm-up; its cosine to 0.0048 over 100 epochs is flat in 3
param_scheduler = []
