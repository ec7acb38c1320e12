# Decoupled DINO on Fashion-MNIST-LT: the Gaussian-mixture twin of
# dino_vitt_fmnist_lt.py (same long-tailed training set).
_base_ = ['./gm_dino_vitt_fmnist.py']

# merges with the base dataset dict (data_root, split, pipeline kept)
train_dataloader = dict(
    dataset=dict(
        type='FashionMNISTLT',
        imbalance_factor=100,  # equal to dino_vitt_fmnist_lt.py
        seed=0))               # equal to dino_vitt_fmnist_lt.py

# evaluation: the k-NN bank is the long-tailed training set the model saw;
# the queries are the balanced test split, which carries the head / medium /
# tail class groups, so k-NN and prototype diversity are reported per group
test_dataloader = dict(
    dataset=dict(
        bank=dict(type='FashionMNISTLT', imbalance_factor=100, seed=0),
        query=dict(type='FashionMNISTLT', imbalance_factor=100, seed=0)))
