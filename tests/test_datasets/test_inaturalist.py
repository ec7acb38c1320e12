"""INaturalist2018 reads the official JSON layout; groups by frequency."""
import json

import pytest
from mmpretrain.registry import DATASETS

from gmproto_mm.datasets.inaturalist import frequency_groups


def write(path, images, labels, categories):
    path.write_text(json.dumps(dict(
        images=[dict(id=i, file_name=f'img/{i}.jpg') for i in images],
        annotations=[dict(image_id=i, category_id=c)
                     for i, c in zip(images, labels)],
        categories=[dict(id=c, name=f'species{c}') for c in categories])))


def test_reads_json_and_groups_by_training_frequency(tmp_path):
    # class 7: 150 images (head), class 3: 30 (medium), class 9: 5 (tail)
    labels = [7] * 150 + [3] * 30 + [9] * 5
    write(tmp_path / 'train2018.json', range(len(labels)), labels, [9, 3, 7])
    write(tmp_path / 'val2018.json', [1000, 1001, 1002], [7, 3, 9], [9, 3, 7])
    val = DATASETS.build(dict(type='INaturalist2018', data_root=str(tmp_path),
                              ann_file='val2018.json', pipeline=[]))
    assert len(val) == 3
    # classes are sorted by category id: 3, 7, 9
    assert list(val.metainfo['classes']) == ['species3', 'species7', 'species9']
    assert list(val.metainfo['class_counts']) == [30, 150, 5]
    assert list(val.metainfo['class_groups']) == ['medium', 'head', 'tail']
    assert [val[i]['gt_label'] for i in range(3)] == [1, 0, 2]
    assert val[0]['img_path'].endswith('img/1000.jpg')


def test_missing_annotations_are_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match='train2018.json') as err:
        DATASETS.build(dict(type='INaturalist2018', data_root=str(tmp_path)))
    assert 'train_dataloader.dataset.data_root=PATH' in str(err.value)


def test_frequency_groups_rule():
    assert frequency_groups([101, 100, 20, 19]) == \
        ['head', 'medium', 'medium', 'tail']
    with pytest.raises(ValueError):
        frequency_groups([1], many=5, few=10)
