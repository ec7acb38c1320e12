# DINO's optimisation (Caron et al. 2021, Appendix): AdamW, grad clip 3.0,
# no weight decay on biases and norms; linear lr warm-up then cosine
# decay, weight decay cosine-increased 0.04 -> 0.4. Configs set the lr,
# the epochs and param_scheduler from the pieces below.
optim_wrapper = dict(
    type='OptimWrapper',
    # the default constructor, minus a WARNING per frozen (teacher) parameter
    constructor='QuietFrozenOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=0.0005, betas=(0.9, 0.999),
                   weight_decay=0.04),
    clip_grad=dict(max_norm=3.0),
    paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0.))
warmup_epochs = 10
lr_warmup = dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0,
                 end=warmup_epochs, convert_to_iter_based=True)
lr_cosine = dict(type='CosineAnnealingLR', eta_min=1e-6, by_epoch=True,
                 begin=warmup_epochs, convert_to_iter_based=True)
wd_cosine = dict(type='CosineAnnealingParamScheduler',
                 param_name='weight_decay', eta_min_ratio=10., by_epoch=True,
                 begin=0, convert_to_iter_based=True)
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=100)
auto_scale_lr = dict(base_batch_size=256)
