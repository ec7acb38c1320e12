# iNaturalist 2018 (long-tailed, 8,142 classes; official JSON annotations
# under data/inat2018/): its training and validation sets, which an
# ImageNet config's datasets take with their pipelines.
inat2018_train = dict(type='INaturalist2018', data_root='data/inat2018/',
                      ann_file='train2018.json')
inat2018_val = dict(inat2018_train, ann_file='val2018.json')
