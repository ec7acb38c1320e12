# Joint DINO baseline on Fashion-MNIST-LT: the balanced twin with its
# training set swapped for an exponentially long-tailed subset (14891 images).
_base_ = ['./dino_vitt_fmnist.py']

# merges with the base dataset dict: data_root, split='train' and pipeline
# are kept.
train_dataloader = dict(
    dataset=dict(
        type='FashionMNISTLT',
        imbalance_factor=100,  # n_max / n_min: 6000 -> 60 images per class
        seed=0))               # class ranking + kept images; same in gm_ twin

# evaluation: the k-NN bank is the long-tailed training set the model saw;
# the queries are the balanced test split, which carries the head / medium /
# tail class groups, so k-NN and prototype diversity are reported per group
test_dataloader = dict(
    dataset=dict(
        bank=dict(type='FashionMNISTLT', imbalance_factor=100, seed=0),
        query=dict(type='FashionMNISTLT', imbalance_factor=100, seed=0)))
