# A linear probe: a linear classifier on the [CLS] token of a frozen ViT,
# DINO's EMA teacher of a pretraining checkpoint; configs set the sizes.
# REQUIRED: the checkpoint, as --cfg-options
# model.backbone.init_cfg.checkpoint=PATH.pth; the placeholder is not a
# file, so forgetting it fails at init ("checkpoint 'SET ...' does not
# exist").
checkpoint = 'SET --cfg-options model.backbone.init_cfg.checkpoint=PATH.pth'
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='VisionTransformer',  # architecture equal to the pretraining one
        out_type='cls_token',
        drop_path_rate=0.,  # frozen layers still run in train mode
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint,
                      prefix='teacher.module.backbone.')),  # DINO's teacher
    neck=None,
    head=dict(type='LinearClsHead', loss=dict(type='CrossEntropyLoss')))
