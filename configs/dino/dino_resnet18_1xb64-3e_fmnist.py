# DINO (joint prototypes) ResNet-18 on Fashion-MNIST: the tiny CPU twin of
# the ResNet-50 recipe (its crop scales, SGD, BN in the neck); the sizes
# and the schedule (warm-up, then a constant lr) are ours.
_base_ = [
    '../_base_/datasets/fmnist_bs64_mcrop.py',
    '../_base_/models/dino.py',
    '../_base_/schedules/dino_adamw.py',
    '../_base_/default_runtime.py',
]

train_dataloader = dict(
    dataset=dict(pipeline=_base_.train_pipelines['dino_resnet']))

bottleneck = 128
model = dict(
    data_preprocessor=_base_.data_preprocessor,
    backbone=dict(type='ResNet', depth=18, in_channels=1,
                  out_indices=(3, ), zero_init_residual=False,
                  norm_cfg=dict(type='BN')),
    neck=dict(in_channels=512,  # ResNet-18's last stage
              hid_channels=512, bottleneck_channels=bottleneck,
              norm_cfg=dict(type='BN1d')),  # DINO's use_bn_in_head
    head=dict(in_channels=bottleneck,  # equal to neck bottleneck_channels
              num_prototypes=1024, norm_last_layer=True,
              loss=dict(teacher_temp=0.04, warmup_teacher_temp_epochs=0)))

max_epochs = 3
warmup_iters = 150
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='SGD', lr=0.03 * 64 / 256,
                   momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0,
         end=warmup_iters),
]
train_cfg = dict(max_epochs=max_epochs)
auto_scale_lr = dict(base_batch_size=64)

custom_hooks = [
    dict(type='FreezePrototypesHook', iters=warmup_iters),
    dict(type='PrototypeMonitorHook', interval=50),
]
