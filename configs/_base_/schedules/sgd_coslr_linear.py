# DINO's linear evaluation (eval_linear.py): SGD, no weight decay, cosine
# lr to 0, validation every epoch; configs set the lr and the epochs.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=0.))
param_scheduler = dict(type='CosineAnnealingLR', eta_min=0., by_epoch=True,
                       begin=0, convert_to_iter_based=True)
train_cfg = dict(by_epoch=True, val_interval=1)
val_cfg = dict()
test_cfg = dict()
