# Decoupled DINO ViT-S/16 on iNaturalist 2018 (long-tailed, 8,142 classes):
# official JSON annotations under data/inat2018/; k-NN and prototype
# diversity are reported per head / medium / tail group (> 100 / 20-100 /
# < 20 training images per class).
_base_ = ['./gm_dino_vits_in1k.py']

data_root = 'data/inat2018/'
train_dataloader = dict(
    dataset=dict(_delete_=True, type='INaturalist2018', data_root=data_root,
                 ann_file='train2018.json',
                 pipeline={{_base_.train_pipeline}}))
test_dataloader = dict(
    dataset=dict(
        bank=dict(_delete_=True, type='INaturalist2018', data_root=data_root,
                  ann_file='train2018.json',
                  pipeline={{_base_.test_pipeline}}),
        query=dict(_delete_=True, type='INaturalist2018',
                   data_root=data_root, ann_file='val2018.json',
                   pipeline={{_base_.test_pipeline}})))
