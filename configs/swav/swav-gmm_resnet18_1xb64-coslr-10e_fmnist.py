# Decoupled SwAV ResNet-18 on Fashion-MNIST: the tiny CPU twin of the
# ResNet-50 config (mmpretrain's SwAV with decoupled prototypes), K = 512.
_base_ = [
    '../_base_/datasets/fmnist_bs64_mcrop.py',
    '../_base_/models/decoupled_gmm.py',
    '../_base_/default_runtime.py',
]
randomness = dict(seed=None)  # mmpretrain's runtime default, used so far

feat_dim = 64
model = dict(
    type='SwAV',
    data_preprocessor=dict(mean=[72.94], std=[90.02], to_rgb=False),
    backbone=dict(type='ResNet', depth=18, in_channels=1,
                  norm_cfg=dict(type='BN'), zero_init_residual=True),
    neck=dict(type='SwAVNeck', in_channels=512, hid_channels=512,
              out_channels=feat_dim, with_avg_pool=True),
    head=dict(
        type='SwAVHead',
        loss=dict(
            type='DecoupledSwAVLoss',
            feat_dim=feat_dim,  # equal to neck out_channels
            epsilon=0.05,
            temperature=0.1,
            num_crops=_base_.num_crops,
            num_prototypes=512,
            gmm=dict(_base_.decoupled_gmm, beta_iters=0.04,  # 200 of 5,000
                     maintenance=dict(_base_.decoupled_maintenance,
                                      reseed_start=0.04)))))

# mmpretrain's SwAV has no predict mode, so no k-NN test
test_dataloader = test_evaluator = test_cfg = None

# mmpretrain's imagenet_lars_coslr_200e.py schedule at lr 0.3, 10 epochs
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='LARS', lr=0.3, weight_decay=1e-6, momentum=0.9))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=10, eta_min=3e-4, by_epoch=True,
         begin=0, end=10, convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=10)
default_hooks = dict(logger=dict(interval=10),
                     checkpoint=dict(interval=10, max_keep_ckpts=3))
custom_hooks = [
    dict(type='SwAVHook', priority='VERY_HIGH',
         batch_size=_base_.batch_size,  # equal to train_dataloader's
         epoch_queue_starts=3, crops_for_assign=[0, 1],
         feat_dim=feat_dim,  # equal to neck out_channels
         queue_length=512, frozen_layers_cfg=dict()),
    dict(type='OnlineEMHook'),
    dict(type='PrototypeMonitorHook', interval=50),
]
