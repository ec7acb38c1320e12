# Fashion-MNIST-LT: the training split cut to a long-tailed subset (6000 ->
# 60 images per class, 14891 in all), merged into a Fashion-MNIST config's
# datasets; on the test split it marks the head / medium / tail classes.
fmnist_lt = dict(
    type='FashionMNISTLT',
    imbalance_factor=100,  # n_max / n_min
    seed=0)                # class ranking and kept images
fmnist_lt_train = dict(dataset=fmnist_lt)
# k-NN bank = the long-tailed training set, queries = the test split
fmnist_lt_test = dict(dataset=dict(bank=fmnist_lt, query=fmnist_lt))
