"""gmproto_mm.analysis.checkpoint_cli and .embeddings: the command line,
loading and report of the one-checkpoint tools, and the embeddings they
read (tests/test_tools/test_component_usage.py, test_target_spread.py and
test_frozen_encoder_collapse.py run the tools end to end)."""
import json
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.runner import set_random_seed
from mmpretrain.registry import DATASETS, MODELS

from gmproto_mm.analysis.checkpoint_cli import (checkpoint_parser,
                                                load_model, report)
from gmproto_mm.analysis.embeddings import embed_views, prediction_embeddings
from gmproto_mm.datasets import KNNDataset
from tests.conftest import FMNIST_ROOT, REPO_ROOT

CONFIG = osp.join(REPO_ROOT, 'configs', 'dino/dino-gmm_vit-tiny-p8_1xb64-3e_fmnist.py')


def test_checkpoint_parser_defaults_and_options():
    parser = checkpoint_parser('read one checkpoint')
    args = parser.parse_args(['c.py', 'k.pth'])
    assert (args.config, args.checkpoint, args.images, args.out,
            args.cfg_options) == ('c.py', 'k.pth', 4096, None, {})
    args = parser.parse_args(['c.py', 'k.pth', '--images', '8', '--out',
                              'r.json', '--cfg-options', 'a.b=1'])
    assert (args.images, args.out, args.cfg_options) == (8, 'r.json',
                                                         {'a.b': 1})


def test_report_prints_and_writes_only_when_asked(tmp_path, capsys):
    result = {'used': 3, 'nested': {'x': 0.5}}
    report(result, None)
    assert json.loads(capsys.readouterr().out) == result
    out = tmp_path / 'r.json'
    report(result, str(out))
    assert json.loads(capsys.readouterr().out) == result
    assert json.loads(out.read_text()) == result


def test_load_model_takes_the_checkpoint_weights_and_the_options(tmp_path):
    model = MODELS.build(Config.fromfile(CONFIG).model)
    state = model.state_dict()
    state['backbone.pos_embed'] = torch.full_like(
        state['backbone.pos_embed'], 0.25)
    ckpt = tmp_path / 'model.pth'
    torch.save(dict(state_dict=state, meta={}), ckpt)
    args = checkpoint_parser('x').parse_args(
        [CONFIG, str(ckpt), '--cfg-options', 'model.predict_with=student'])
    cfg, loaded = load_model(args)
    assert cfg.model.predict_with == 'student'
    assert loaded.predict_with == 'student' and not loaded.training
    assert torch.all(loaded.backbone.pos_embed == 0.25)


def _model_and_data(split_cfg: str, num_images: int):
    cfg = Config.fromfile(CONFIG)
    model = MODELS.build(cfg.model).eval()
    data_cfg = cfg.train_dataloader.dataset if split_cfg == 'train' else \
        KNNDataset.split_config(cfg.test_dataloader.dataset, 'query')
    data_cfg.update(data_root=FMNIST_ROOT, indices=num_images)
    return model, DATASETS.build(data_cfg)


def test_prediction_embeddings_are_per_image(fmnist_root):
    """One row per image, at most the data set's size, and a row does not
    depend on the other images of its batch."""
    model, data = _model_and_data('query', 12)
    rows = prediction_embeddings(model, data, 50)
    assert rows.shape == (12, model.head.in_channels)
    assert rows.dtype == torch.float32
    torch.testing.assert_close(prediction_embeddings(model, data, 5),
                               rows[:5])


def test_embed_views_reads_student_and_teacher(fmnist_root):
    """G global views per image; the student's from the student, the
    teacher's from the EMA copy (equal for a fresh model, apart once the
    teacher's weights move)."""
    model, data = _model_and_data('train', 6)
    set_random_seed(0)
    student, teacher = embed_views(model, data, 4, seed=1)
    assert student.shape == teacher.shape == (
        4, model.num_global_views, model.head.in_channels)
    torch.testing.assert_close(student, teacher)
    with torch.no_grad():
        for param in model.teacher.module.parameters():
            param.add_(0.1 * torch.randn_like(param))
    set_random_seed(0)
    student2, teacher2 = embed_views(model, data, 4, seed=1)
    torch.testing.assert_close(student2, student)
    assert not torch.allclose(teacher2, teacher, atol=1e-3)
