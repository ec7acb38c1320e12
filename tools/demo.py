"""Train the joint baseline and the decoupled model side by side on
Fashion-MNIST (same seed, data and budget), evaluate both, plot, and write
``work_dirs/demo/results.json``. Then run each model's prototype step alone
on the baseline's trained, frozen encoder at the recipe's batch and lr
(``frozen_encoder_collapse.py``): the joint prototypes collapse there within
a minute, the GMM means do not.
Run through ``bash tools/demo.sh``."""
import argparse
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import time
from typing import Dict, List, Sequence

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
THRESHOLDS = ('0.025', '0.05', '0.1', '0.25', '0.5')
MODELS = {
    # name: (config, long-tailed config)
    'baseline': ('configs/dino_vitt_fmnist.py',
                 'configs/dino_vitt_fmnist_lt.py'),
    'decoupled': ('configs/gm_dino_vitt_fmnist.py',
                  'configs/gm_dino_vitt_fmnist_lt.py'),
}


def parse_args() -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--epochs', type=int,
                        default=int(env('DEMO_EPOCHS', 3)),
                        help='training epochs per model (env DEMO_EPOCHS)')
    parser.add_argument('--train-images', type=int,
                        default=int(env('DEMO_TRAIN_IMAGES', 32000)),
                        help='training images used (env DEMO_TRAIN_IMAGES; '
                        '0 = all)')
    parser.add_argument('--bank-images', type=int,
                        default=int(env('DEMO_BANK_IMAGES', 10000)),
                        help='k-NN bank images from the train split '
                        '(env DEMO_BANK_IMAGES; 0 = all)')
    parser.add_argument('--query-images', type=int,
                        default=int(env('DEMO_QUERY_IMAGES', 0)),
                        help='k-NN queries from the test split '
                        '(env DEMO_QUERY_IMAGES; 0 = all)')
    parser.add_argument('--long-tail', action='store_true',
                        default=env('DEMO_LT', '0') == '1',
                        help='use Fashion-MNIST-LT (env DEMO_LT=1)')
    parser.add_argument('--frozen-steps', type=int,
                        default=int(env('DEMO_FROZEN_STEPS', 3000)),
                        help='prototype steps of each head on the frozen '
                        'baseline encoder (env DEMO_FROZEN_STEPS; 0 = skip)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--work-dir', default=None,
                        help='defaults to work_dirs/demo (or demo_lt)')
    return parser.parse_args()


def run(cmd: List[str]) -> None:
    """Run a tool, streaming its progress; stop the demo if it fails."""
    print('$', ' '.join(cmd), flush=True)
    proc = subprocess.run(cmd, cwd=ROOT)
    if proc.returncode != 0:
        sys.exit(f'demo: step failed ({proc.returncode}): {" ".join(cmd)}')


def iteration_times(work_dir: str) -> List[float]:
    """Seconds per training iteration from mmengine's scalars.json."""
    runs = sorted(d for d in os.listdir(work_dir)
                  if osp.isfile(osp.join(work_dir, d, 'vis_data',
                                         'scalars.json')))
    times = []
    with open(osp.join(work_dir, runs[-1], 'vis_data', 'scalars.json')) as f:
        for line in f:
            record = json.loads(line)
            if 'loss' in record and 'time' in record:
                times.append(record['time'])
    return times


def train_and_evaluate(config: str, model_dir: str, *, seed: int,
                       epochs: int, train_images: int, bank_images: int,
                       query_images: int, options: Sequence[str] = (),
                       label: str = '') -> dict:
    """Train ``config`` with ``tools/train.py``, evaluate its last checkpoint
    with ``tools/test.py``; the demo's protocol, shared with
    ``tools/analysis/seed_study.py``.

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
        ``checkpoint``, ``usage_file``.
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
    run([sys.executable, 'tools/train.py', config, '--work-dir', model_dir,
         '--cfg-options'] + train_options)
    train_s = time.time() - start
    ckpt = osp.join(model_dir, f'epoch_{epochs}.pth')
    usage_file = osp.join(model_dir, 'usage.json')
    eval_options = [f'test_evaluator.0.usage_file={usage_file}', *options]
    if bank_images:
        eval_options.append(
            f'test_dataloader.dataset.bank.indices={bank_images}')
    if query_images:
        eval_options.append(
            f'test_dataloader.dataset.query.indices={query_images}')
    print(f'\n=== {label}: evaluating ===', flush=True)
    metrics_file = osp.join(model_dir, 'metrics.json')
    run([sys.executable, 'tools/test.py', config, ckpt, '--work-dir',
         model_dir, '--out', metrics_file, '--cfg-options'] + eval_options)
    with open(metrics_file) as f:
        metrics = json.load(f)
    return dict(metrics=metrics, train_s=train_s, checkpoint=ckpt,
                usage_file=usage_file)


def summarise(metrics: Dict[str, float], epochs: int,
              iter_times: List[float]) -> Dict[str, float]:
    out = {f'unique@{eps}': metrics[f'prototypes/unique@{eps}']
           for eps in THRESHOLDS}
    out.update(
        knn_top1=metrics['knn/top1'],
        used_prototypes=int(metrics['prototypes/used_prototypes']),
        argmax_perplexity=metrics['prototypes/argmax_perplexity'],
        soft_perplexity=metrics['prototypes/soft_perplexity'],
        num_prototypes=int(metrics['prototypes/num_prototypes']),
        epochs=epochs,
        iter_time_s=statistics.median(iter_times[1:] or iter_times))
    # how many of the model's own data embeddings lie mutually eps apart:
    # the room the data leaves for unique prototypes that sit on it
    out.update({f'embedding_leaders@{eps}':
                int(metrics[f'prototypes/embedding_leaders@{eps}'])
                for eps in THRESHOLDS
                if f'prototypes/embedding_leaders@{eps}' in metrics})
    # long-tailed groups, if any: k-NN, prototypes owned (the class a
    # prototype is most often the argmax of) and, where a group owns any,
    # their diversity
    for key, value in metrics.items():
        name = key.split('/', 1)[1]
        if name.startswith(('top1_', 'unique@', 'owned_')) and \
                name not in out and \
                name.rsplit('_', 1)[-1] in ('head', 'medium', 'tail'):
            out[name] = int(value) if name.startswith('owned_') else value
    return out


def _cell(value) -> str:
    if value is None:
        return f'{"-":>18s}'
    return f'{value:>18.2f}' if isinstance(value, float) else f'{value:>18d}'


def print_table(results: Dict[str, Dict[str, float]]) -> None:
    """Side by side; a row either model lacks (e.g. the diversity of a
    group that owns no prototype) shows '-' there."""
    keys = list(results['baseline'])
    keys += [k for k in results['decoupled'] if k not in keys]
    print(f'\n{"":30s}{"baseline (joint)":>18s}{"decoupled (GMM)":>18s}')
    for key in keys:
        cells = ''.join(_cell(results[name].get(key))
                        for name in ('baseline', 'decoupled'))
        print(f'{key:30s}{cells}')


def main() -> None:
    args = parse_args()
    work_dir = args.work_dir or osp.join(
        'work_dirs', 'demo_lt' if args.long_tail else 'demo')
    py = sys.executable
    configs = {name: pair[1 if args.long_tail else 0]
               for name, pair in MODELS.items()}
    results, checkpoints, usage_files = {}, [], []
    for name, config in configs.items():
        model_dir = osp.join(work_dir, name)
        run_out = train_and_evaluate(
            config, model_dir, seed=args.seed, epochs=args.epochs,
            train_images=0 if args.long_tail else args.train_images,
            bank_images=args.bank_images, query_images=args.query_images,
            label=name)
        results[name] = summarise(run_out['metrics'], args.epochs,
                                  iteration_times(model_dir))
        results[name]['train_time_s'] = round(run_out['train_s'], 1)
        checkpoints.append(run_out['checkpoint'])
        usage_files.append(run_out['usage_file'])

    trajectories = []
    if args.frozen_steps:  # the prototype step alone, same frozen encoder
        for name, config in configs.items():
            print(f'\n=== {name}: prototype step alone on the frozen '
                  'baseline encoder ===', flush=True)
            out = osp.join(work_dir, name, 'frozen_encoder.json')
            run([py, 'tools/analysis/frozen_encoder_collapse.py', config,
                 checkpoints[0], '--steps', str(args.frozen_steps),
                 '--log-every', str(max(1, args.frozen_steps // 10)),
                 '--seed', str(args.seed), '--out', out])
            with open(out) as f:
                final = json.load(f)['final']
            results[name].update(
                {f'frozen_encoder_{key}': value
                 for key, value in final.items()})
            trajectories.append(out)
    extra = ['--trajectories', *trajectories] if trajectories else []
    run([py, 'tools/analysis/plot_prototypes.py', *checkpoints, '--labels',
         'baseline (joint)', 'decoupled (GMM)', '--usage', *usage_files,
         '--out', osp.join(work_dir, 'plots')] + extra)
    with open(osp.join(work_dir, 'results.json'), 'w') as f:
        json.dump(results, f, indent=2)
    print_table(results)
    print(f'\nresults: {osp.join(work_dir, "results.json")}, plots: '
          f'{osp.join(work_dir, "plots")}')


if __name__ == '__main__':
    main()
