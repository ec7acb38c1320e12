# DINO (joint prototypes) on Fashion-MNIST-LT: the balanced twin on the
# long-tailed training set.
_base_ = [
    './dino_vit-tiny-p8_1xb64-3e_fmnist.py',
    '../_base_/datasets/fmnist-lt.py',
]

train_dataloader = _base_.fmnist_lt_train
test_dataloader = _base_.fmnist_lt_test
