# Online k-NN validation for the Fashion-MNIST configs (*_fmnist*.py, 32 px):
# after every `train_cfg.val_interval` epochs, mmengine's ValLoop embeds a
# small bank (the first 5,000 training images) and 1,000 test queries with
# the network predict() uses (the EMA teacher) and logs KNNAccuracy's
# `knn/top1`, `knn/top5` (`val/knn/top1` in the message hub, in every
# vis backend: TensorBoard, W&B, ...) beside the training scalars
# (`proto_unique@eps`, `em_*`). Opt-in, as a second base:
#
#   _base_ = ['./gm_dino_vitt_fmnist.py', './_base_/knn_val.py']
#   train_cfg = dict(val_interval=1)  # every epoch (mmengine's default)
#
# Sizes: val_dataloader.dataset.bank.indices / query.indices. For other data,
# set val_dataloader.dataset like your config's test_dataloader.dataset
# (a KNNDataset), with `indices` on bank and query to keep it small.
# Names here must not clash with the other base's top-level variables.
val_dataloader = dict(
    batch_size=256,
    num_workers=2,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='KNNDataset',
        bank=dict(type='LocalFashionMNIST', data_root='data/fashion-mnist',
                  split='train', indices=5000,
                  pipeline=[
                      dict(type='Resize', scale=(32, 32), backend='pillow'),
                      dict(type='PackInputs'),
                  ]),
        query=dict(type='LocalFashionMNIST', data_root='data/fashion-mnist',
                   split='test', indices=1000,
                   pipeline=[
                       dict(type='Resize', scale=(32, 32), backend='pillow'),
                       dict(type='PackInputs'),
                   ])))
val_evaluator = dict(type='KNNAccuracy', k=20, temperature=0.07)
val_cfg = dict(type='ValLoop')
