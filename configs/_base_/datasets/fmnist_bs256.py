# Fashion-MNIST classification (a linear probe): the training split with
# random crops and flips, the test split for validation and test, 32 px.
data_root = 'data/fashion-mnist'
train_pipeline = [
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.4, 1.),
         backend='pillow'),  # DINO's global-crop scales
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
]
test_pipeline = [  # equal to the k-NN test set's
    dict(type='ToGray'),  # gray data as is; colour files (inferencers) to gray
    dict(type='Resize', scale=(32, 32), backend='pillow'),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=256,
    num_workers=2,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='LocalFashionMNIST', data_root=data_root,
                 split='train', pipeline=train_pipeline))
val_dataloader = dict(  # as train_dataloader, unshuffled, on the test split
    train_dataloader, sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(train_dataloader['dataset'], split='test',
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_evaluator = val_evaluator
data_preprocessor = dict(type='ClsDataPreprocessor', num_classes=10,
                         mean=[72.94], std=[90.02], to_rgb=False)
