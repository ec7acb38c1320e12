# DINO's optimisation recipe (Caron et al. 2021, Appendix): AdamW, linear lr
# warm-up then cosine decay, weight decay cosine-increased 0.04 -> 0.4, grad
# clip 3.0, no weight decay on biases and norms. Configs set the numbers.
optim_wrapper = dict(
    type='OptimWrapper',
    # the default constructor, minus a WARNING per frozen (teacher) parameter
    constructor='QuietFrozenOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=0.0005, betas=(0.9, 0.999),
                   weight_decay=0.04),
    clip_grad=dict(max_norm=3.0),
    paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0.))

# Each config writes its ``param_scheduler`` with its own epochs (mmengine
# does not re-evaluate base variables), in this shape:
#   LinearLR warm-up -> CosineAnnealingLR(eta_min=1e-6) for the lr, and
#   CosineAnnealingParamScheduler(param_name='weight_decay', eta_min_ratio=10)
#   (0.04 -> 0.4; the ratio keeps zero-decay groups at zero).
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=100)
auto_scale_lr = dict(base_batch_size=256)
