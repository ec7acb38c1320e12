"""The demo's protocol: train a config with ``tools/train.py``, evaluate its
last checkpoint with ``tools/test.py`` on a k-NN bank and queries, and read
the training log. ``tools/demo.py`` and ``tools/analysis/seed_study.py``
run it.

The steps run the repository's tools as subprocesses from
:data:`REPO_ROOT`, the source checkout this package is imported from (as
``tools/setup_env.sh`` installs it: ``pip install -e .``), so that config
paths and the configs' data roots are relative to it.
"""
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import List, Sequence

#: The source checkout (``tools/``, ``configs/``, ``data/``) of this package.
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def run_step(cmd: List[str]) -> None:
    """Run a tool from :data:`REPO_ROOT`, streaming its progress; exit
    (``SystemExit`` naming the command) if it fails."""
    print('$', ' '.join(cmd), flush=True)
    proc = subprocess.run(cmd, cwd=REPO_ROOT)
    if proc.returncode != 0:
        sys.exit(f'demo: step failed ({proc.returncode}): {" ".join(cmd)}')


def training_records(work_dir: str) -> List[dict]:
    """The logged records of the last training run in ``work_dir``
    (mmengine's ``<timestamp>/vis_data/scalars.json``, one dict per logged
    iteration, e.g. ``loss``, ``time`` in seconds, ``step``; evaluation
    runs of tools/test.py write none)."""
    runs = sorted(d for d in os.listdir(work_dir)
                  if osp.isfile(osp.join(work_dir, d, 'vis_data',
                                         'scalars.json')))
    with open(osp.join(work_dir, runs[-1], 'vis_data', 'scalars.json')) as f:
        return [json.loads(line) for line in f]


def iteration_times(work_dir: str) -> List[float]:
    """Seconds per training iteration from mmengine's scalars.json."""
    return [r['time'] for r in training_records(work_dir)
            if 'loss' in r and 'time' in r]


def train_and_evaluate(config: str, model_dir: str, *, seed: int,
                       epochs: int, train_images: int, bank_images: int,
                       query_images: int, options: Sequence[str] = (),
                       label: str = '') -> dict:
    """Train ``config`` with ``tools/train.py``, evaluate its last checkpoint
    with ``tools/test.py`` (:func:`evaluate_checkpoint`).

    Args:
        config (str): Config path, relative to the repository root.
        model_dir (str): Work dir of this run.
        seed (int): ``randomness.seed``.
        epochs (int): ``train_cfg.max_epochs``.
        train_images (int): First training images used (0 = the dataset's
            own size).
        bank_images / query_images (int): k-NN bank / query images (0 = all).
        options (Sequence[str]): More ``--cfg-options`` for training and
            evaluation (e.g. ``model.head.gmm.init=sample``).
        label (str): Name shown in the progress lines.

    Returns:
        dict: ``metrics`` (what tools/test.py reports), ``train_s``,
        ``eval_s`` (seconds), ``checkpoint``, ``usage_file``.
    """
    label = label or config
    train_options = [f'train_cfg.max_epochs={epochs}',
                     f'randomness.seed={seed}',
                     'default_hooks.logger.interval=10',
                     'default_hooks.checkpoint.interval=1000', *options]
    if train_images:
        train_options.append(
            f'train_dataloader.dataset.indices={train_images}')
    start = time.time()
    print(f'\n=== {label}: training {config} ===', flush=True)
    run_step([sys.executable, 'tools/train.py', config, '--work-dir',
              model_dir, '--cfg-options'] + train_options)
    train_s = time.time() - start
    ckpt = osp.join(model_dir, f'epoch_{epochs}.pth')
    out = evaluate_checkpoint(config, ckpt, model_dir,
                              bank_images=bank_images,
                              query_images=query_images, options=options,
                              label=label)
    return dict(out, train_s=train_s, checkpoint=ckpt)


def evaluate_checkpoint(config: str, checkpoint: str, model_dir: str, *,
                        bank_images: int, query_images: int,
                        options: Sequence[str] = (),
                        label: str = '') -> dict:
    """Evaluate ``checkpoint`` with ``tools/test.py`` on the demo's k-NN
    bank and queries; the metrics also go to ``model_dir/metrics.json``.

    Returns:
        dict: ``metrics``, ``eval_s`` (seconds) and ``usage_file`` (the
        argmax counts per prototype).
    """
    # the fixed sizes of the protocol (bank, queries) set its cost: their
    # forward passes; the embedding leaders among 8,192 (the metric's
    # default) take < 1 s of it for the trained models (measured)
    usage_file = osp.join(model_dir, 'usage.json')
    eval_options = [f'test_evaluator.0.usage_file={usage_file}', *options]
    if bank_images:
        eval_options.append(
            f'test_dataloader.dataset.bank.indices={bank_images}')
    if query_images:
        eval_options.append(
            f'test_dataloader.dataset.query.indices={query_images}')
    print(f'\n=== {label or config}: evaluating ===', flush=True)
    start = time.time()
    metrics_file = osp.join(model_dir, 'metrics.json')
    run_step([sys.executable, 'tools/test.py', config, checkpoint,
              '--work-dir', model_dir, '--out', metrics_file, '--out-item',
              'metrics', '--cfg-options'] + eval_options)
    with open(metrics_file) as f:
        metrics = json.load(f)
    return dict(metrics=metrics, eval_s=time.time() - start,
                usage_file=usage_file)
