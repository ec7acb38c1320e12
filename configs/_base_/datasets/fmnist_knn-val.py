# Online k-NN validation on Fashion-MNIST, opt-in as a second base (here
# for a config in configs/dino/):
#   _base_ = ['./dino-gmm_vit-tiny-p8_1xb64-3e_fmnist.py',
#             '../_base_/datasets/fmnist_knn-val.py']
#   train_cfg = dict(val_interval=1)
# logs KNNAccuracy's knn/top1, knn/top5 of the network predict() uses.
knn_val_root = 'data/fashion-mnist'  # names unlike the other base's
knn_val_pipeline = [
    dict(type='Resize', scale=(32, 32), backend='pillow'),
    dict(type='PackInputs'),
]
val_dataloader = dict(
    batch_size=256,
    num_workers=2,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='KNNDataset',
        bank=dict(type='LocalFashionMNIST', data_root=knn_val_root,
                  split='train', indices=5000,  # the first 5,000 images
                  pipeline=knn_val_pipeline),
        query=dict(type='LocalFashionMNIST', data_root=knn_val_root,
                   split='test', indices=1000,  # the first 1,000 images
                   pipeline=knn_val_pipeline)))
val_evaluator = dict(type='KNNAccuracy', k=20, temperature=0.07)
val_cfg = dict(type='ValLoop')
