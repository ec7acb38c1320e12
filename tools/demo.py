"""Train the joint baseline and the decoupled model side by side on
Fashion-MNIST (same seed, data and budget), evaluate both, plot, and write
``work_dirs/demo/results.json``. Two reference columns judge the k-NN numbers:
the same k-NN protocol on raw pixels, and the untrained encoder (a fresh
model of the baseline config, same seed, evaluated as the trained ones).
Then run each model's prototype step alone on the baseline's trained, frozen
encoder at the recipe's batch and lr and the baseline's K
(``frozen_encoder_collapse.py``): the joint prototypes collapse there within
a minute, the GMM means do not.
Prints the elapsed time per stage and in total (also in results.json).
Run through ``bash tools/demo.sh``."""
import argparse
import contextlib
import json
import logging
import os
import os.path as osp
import statistics
import sys
import time
from typing import Dict, Iterator, List, Optional

from gmproto_mm.analysis.demo_protocol import (REPO_ROOT, evaluate_checkpoint,
                                               iteration_times, run_step,
                                               train_and_evaluate)

THRESHOLDS = ('0.025', '0.05', '0.1', '0.25', '0.5')
MODELS = {
    # name: (config, long-tailed config)
    'baseline': ('configs/dino/dino_vit-tiny-p8_1xb64-3e_fmnist.py',
                 'configs/dino/dino_vit-tiny-p8_1xb64-3e_fmnist-lt.py'),
    'decoupled': ('configs/dino/dino-gmm_vit-tiny-p8_1xb64-3e_fmnist.py',
                  'configs/dino/dino-gmm_vit-tiny-p8_1xb64-3e_fmnist-lt.py'),
}
# results.json keys and table headers, in table order; the references have
# no frozen-encoder rows (they print '-')
COLUMNS = {'baseline': 'baseline (joint)', 'decoupled': 'decoupled (GMM)',
           'untrained': 'untrained', 'raw_pixels': 'raw pixels'}


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
    # The frozen-encoder steps are ~2/3 of the demo's fixed costs (measured:
    # 3000 joint steps ~120 s, 3000 EM steps ~68 s vs ~17 s per evaluation,
    # 1 thread, busy machine), and all 3000 are needed: at the recipe's batch
    # and lr the joint prototypes start to merge at eps = 0.1 after ~1500
    # steps and at eps = 0.025 after ~2100 (98.5 % unique at 2400, 88.7 % at
    # 3000). The images only set what is embedded once per head: 2048 give
    # the same result as 4096 (joint 88.7 / 81.9 / 67.7 % unique at eps =
    # 0.025 / 0.05 / 0.1 vs 83.4 / 78.0 / 63.3 %, GMM 100 % at eps <= 0.1
    # in both) at half the embedding time.
    parser.add_argument('--frozen-steps', type=int,
                        default=int(env('DEMO_FROZEN_STEPS', 3000)),
                        help='prototype steps of each head on the frozen '
                        'baseline encoder (env DEMO_FROZEN_STEPS; 0 = skip)')
    parser.add_argument('--frozen-images', type=int,
                        default=int(env('DEMO_FROZEN_IMAGES', 2048)),
                        help='training images the frozen encoder embeds for '
                        'those steps (env DEMO_FROZEN_IMAGES)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of both trainings and of the '
                        'frozen-encoder runs')
    parser.add_argument('--work-dir', default=None,
                        help='defaults to work_dirs/demo (or demo_lt)')
    args = parser.parse_args()
    if args.frozen_steps and args.frozen_images < 1:
        parser.error(f'--frozen-images must be >= 1, got '
                     f'{args.frozen_images} (or skip that part with '
                     '--frozen-steps 0)')
    return args


def raw_pixel_knn(config: str, bank_images: int,
                  query_images: int) -> Dict[str, float]:
    """k-NN of ``config``'s ``KNNAccuracy`` (k, T, cosine) on raw pixels.

    The same bank and queries as ``tools/test.py`` with the demo's sizes,
    each image its dataset pixels as stored, flattened (Fashion-MNIST:
    28 x 28 = 784 values), before the test pipeline: a reference any
    encoder should beat. (Measured on the demo's 10,000-image bank: raw
    pixels 80.14 %, the test pipeline's 32 x 32 resize 80.78 %, and those
    less the data preprocessor's mean 82.36 %.)

    Args:
        config (str): Config path (its ``test_dataloader`` and
            ``test_evaluator``), relative to the working directory.
        bank_images / query_images (int): First bank / query images
            (0 = all).

    Returns:
        Dict[str, float]: ``knn_top1`` (percent) and, where the dataset meta
        has ``class_groups``, ``top1_<group>``.
    """
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import DATASETS, METRICS

    import gmproto_mm  # noqa: F401  (registers components)
    from gmproto_mm.evaluation.functional.knn import (per_group_accuracy,
                                                      topk_accuracy,
                                                      weighted_knn_predict)
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(config)
    knn = next(METRICS.build(m) for m in cfg.test_evaluator
               if m['type'] == 'KNNAccuracy')  # its k and T, defaults too
    pixels, labels = {}, {}
    for split, num in (('bank', bank_images), ('query', query_images)):
        dataset_cfg = cfg.test_dataloader.dataset[split].copy()
        if num:
            dataset_cfg['indices'] = num
        dataset = DATASETS.build(dataset_cfg)
        infos = [dataset.get_data_info(i) for i in range(len(dataset))]
        pixels[split] = torch.stack([torch.as_tensor(i['img']).flatten()
                                     for i in infos]).float()
        labels[split] = torch.tensor([int(i['gt_label']) for i in infos])
    meta = dataset.metainfo  # the query's, as in KNNDataset
    scores = weighted_knn_predict(
        pixels['query'], pixels['bank'], labels['bank'],
        len(meta['classes']), k=knn.k, temperature=knn.temperature)
    out = dict(knn_top1=topk_accuracy(scores, labels['query'], (1, ))['top1'])
    if meta.get('class_groups'):
        out.update({f'top1_{group}': value for group, value in
                    per_group_accuracy(scores.argmax(1), labels['query'],
                                       meta['class_groups']).items()})
    return out


def save_untrained_checkpoint(config: str, path: str, seed: int) -> str:
    """Save ``config``'s model as training starts it: built and initialised
    (``init_weights``, as the Runner does) after ``set_random_seed(seed)``,
    the EMA teacher a copy of the student (as after its first update).

    Returns:
        str: ``path``.
    """
    import torch
    from mmengine.config import Config
    from mmengine.logging import MMLogger
    from mmengine.registry import init_default_scope
    from mmengine.runner import set_random_seed
    from mmpretrain.registry import MODELS

    import gmproto_mm  # noqa: F401  (registers components)
    init_default_scope('mmpretrain')
    set_random_seed(seed)
    model = MODELS.build(Config.fromfile(config).model)
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)  # not one INFO line per parameter
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)
    model.teacher.update_parameters(model._ema_source())  # first: a copy
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(seed=seed, untrained=True)), path)
    return path


def summarise(metrics: Dict[str, float], epochs: int,
              iter_times: Optional[List[float]] = None) -> Dict[str, float]:
    """The table's rows from tools/test.py's metrics (``iter_time_s`` only
    with ``iter_times``, the training's seconds per iteration)."""
    out = {f'unique@{eps}': metrics[f'prototypes/unique@{eps}']
           for eps in THRESHOLDS}
    out.update(
        knn_top1=metrics['knn/top1'],
        used_prototypes=int(metrics['prototypes/used_prototypes']),
        argmax_perplexity=metrics['prototypes/argmax_perplexity'],
        soft_perplexity=metrics['prototypes/soft_perplexity'],
        num_prototypes=int(metrics['prototypes/num_prototypes']),
        epochs=epochs)
    if iter_times:
        out['iter_time_s'] = statistics.median(iter_times[1:] or iter_times)
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
    """Side by side, the ``COLUMNS`` that ``results`` has; a row a column
    lacks (e.g. the diversity of a group that owns no prototype, or any
    prototype row of raw pixels) shows '-' there."""
    names = [name for name in COLUMNS if name in results]
    keys: List[str] = []
    for name in names:
        keys += [k for k in results[name] if k not in keys]
    print('\n' + f'{"":30s}' + ''.join(f'{COLUMNS[n]:>18s}' for n in names))
    for key in keys:
        cells = ''.join(_cell(results[name].get(key)) for name in names)
        print(f'{key:30s}{cells}')


class StageTimes:
    """Wall-clock seconds of the demo's stages, in the order they ran."""

    def __init__(self) -> None:
        self.start = time.time()
        self.seconds: Dict[str, float] = {}

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.time()
        try:
            yield
        finally:
            self.add(name, time.time() - start)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = round(seconds, 1)

    def summary(self) -> Dict[str, float]:
        """The stages and ``total`` (since construction, so the time between
        stages counts too)."""
        return dict(self.seconds, total=round(time.time() - self.start, 1))


def print_times(times: Dict[str, float]) -> None:
    print('\nelapsed (s)')
    for name, seconds in times.items():
        print(f'{name:40s}{seconds:>10.1f}')


def main() -> None:
    args = parse_args()
    times = StageTimes()
    work_dir = osp.abspath(args.work_dir or osp.join(
        REPO_ROOT, 'work_dirs', 'demo_lt' if args.long_tail else 'demo'))
    os.chdir(REPO_ROOT)  # configs and their data roots are relative to it
    py = sys.executable
    configs = {name: pair[1 if args.long_tail else 0]
               for name, pair in MODELS.items()}
    knn_sizes = dict(bank_images=args.bank_images,
                     query_images=args.query_images)
    results, checkpoints, usage_files = {}, [], []
    for name, config in configs.items():
        model_dir = osp.join(work_dir, name)
        run_out = train_and_evaluate(
            config, model_dir, seed=args.seed, epochs=args.epochs,
            train_images=0 if args.long_tail else args.train_images,
            label=name, **knn_sizes)
        times.add(f'train {name}', run_out['train_s'])
        times.add(f'evaluate {name}', run_out['eval_s'])
        results[name] = summarise(run_out['metrics'], args.epochs,
                                  iteration_times(model_dir))
        results[name].update(seed=args.seed,
                             train_time_s=round(run_out['train_s'], 1))
        checkpoints.append(run_out['checkpoint'])
        usage_files.append(run_out['usage_file'])

    # references for the k-NN numbers: the same protocol on raw pixels, and
    # the encoder before training (one for both: the configs differ only in
    # the head, which the k-NN features do not pass through)
    print('\n=== references: raw pixels, untrained encoder ===', flush=True)
    with times.stage('reference: raw pixels'):
        results['raw_pixels'] = raw_pixel_knn(configs['baseline'],
                                              **knn_sizes)
    with times.stage('reference: untrained encoder'):
        model_dir = osp.join(work_dir, 'untrained')
        ckpt = save_untrained_checkpoint(
            configs['baseline'], osp.join(model_dir, 'untrained.pth'),
            args.seed)
        run_out = evaluate_checkpoint(configs['baseline'], ckpt, model_dir,
                                      label='untrained', **knn_sizes)
        results['untrained'] = dict(
            summarise(run_out['metrics'], epochs=0), seed=args.seed)

    trajectories = []
    if args.frozen_steps:  # the prototype step alone, same frozen encoder
        # and the same K: the decoupled config's own K may be smaller, and
        # fewer prototypes are easier to keep apart
        same_k = ['--cfg-options', 'model.head.num_prototypes='
                  f'{results["baseline"]["num_prototypes"]}']
        for name, config in configs.items():
            print(f'\n=== {name}: prototype step alone on the frozen '
                  'baseline encoder ===', flush=True)
            out = osp.join(work_dir, name, 'frozen_encoder.json')
            with times.stage(f'frozen encoder: {name}'):
                run_step([py, 'tools/analysis/frozen_encoder_collapse.py',
                          config, checkpoints[0], '--steps',
                          str(args.frozen_steps), '--images',
                          str(args.frozen_images), '--log-every',
                          str(max(1, args.frozen_steps // 10)), '--seed',
                          str(args.seed), '--out', out] + same_k)
            with open(out) as f:
                final = json.load(f)['final']
            results[name].update(
                {f'frozen_encoder_{key}': value
                 for key, value in final.items()})
            trajectories.append(out)
    extra = ['--trajectories', *trajectories] if trajectories else []
    with times.stage('plots'):
        run_step([py, 'tools/analysis/plot_prototypes.py', *checkpoints,
                  '--labels', COLUMNS['baseline'], COLUMNS['decoupled'],
                  '--usage', *usage_files, '--out',
                  osp.join(work_dir, 'plots')] + extra)
    print_table(results)
    results['timings_s'] = times.summary()
    print_times(results['timings_s'])
    with open(osp.join(work_dir, 'results.json'), 'w') as f:
        json.dump(results, f, indent=2)
    print(f'\nresults: {osp.join(work_dir, "results.json")}, plots: '
          f'{osp.join(work_dir, "plots")}')


if __name__ == '__main__':
    main()
