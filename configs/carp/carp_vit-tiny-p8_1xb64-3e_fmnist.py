# CARP (joint prototypes), tiny ViT on Fashion-MNIST, on 2 CPU cores: the
# DINO twin's ViT, batch and budget with CARP's head, loss, crops, teacher
# and LARS; "CARP:" marks its values.
_base_ = ['../dino/dino_vit-tiny-p8_1xb64-3e_fmnist.py']

# CARP's crop scales; 4 local views as the DINO twin's (CARP: 6)
train_dataloader = dict(dataset=dict(pipeline=_base_.train_pipelines['carp']))

model = dict(
    base_momentum=0.01,  # CARP: teacher momentum 0.99 ...
    end_momentum=0.01,   # ... held: its cosine to 1 spans 100 epochs
    neck=dict(normalize=False),  # CARP: logits on the raw bottleneck
    head=dict(loss=dict(
        _delete_=True, type='CARPLoss',
        partition_size=64)))  # 16 blocks of 64 (CARP: 512 of 65,536)

# CARP trains its last layer from the first step (no frozen epoch)
custom_hooks = [dict(type='PrototypeMonitorHook', interval=50)]

# CARP: LARS (trust 0.001, weight decay 1e-6; none, and no LARS scaling, on
# biases and norms), no clipping, no warm-up (its cosine is flat in 3 epochs)
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='LARS',
                   lr=0.45 * 64 / 256,  # CARP: 0.45 per 256 images
                   momentum=0.9, weight_decay=1e-6, eta=0.001),
    clip_grad=None,
    paramwise_cfg=dict(_delete_=True, custom_keys={  # 1-D parameters
        'bias': dict(decay_mult=0., lars_exclude=True),
        'ln': dict(decay_mult=0., lars_exclude=True)}))  # ViT LayerNorms
param_scheduler = []
