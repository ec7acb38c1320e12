"""Plot what seed-study records logged over training, one curve per run.

Reads the ``series`` of records in a ``seed_study.py`` results file (the
EM moves, the monitor's unique@0.1 and, with ``--diagnostics``, the
``diag_*`` measures of ``TrainingDiagnosticsHook``) and draws one panel per
measure, one line per selected run (label: variant and seed), against the
training step.

    python tools/analysis/plot_series.py docs/seed_study/results.json \\
        --group dino_vit --label joint --group dino-gmm_vit --label decoupled \\
        --epochs 12 --keys diag_target_entropy diag_agreement diag_churn \\
        --out work_dirs/curves_4x.png

A ``--group`` keeps the runs whose variant (config file name plus
options) holds every one of its substrings; each group gets a colour.
"""
import argparse
import json
import math
import os
import os.path as osp
from typing import Dict, List

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument('results', help="seed_study.py's results JSON")
    parser.add_argument('--group', nargs='+', action='append', default=[],
                        metavar='SUBSTRING',
                        help='a variant: runs whose name holds every '
                        'substring (repeat for several variants)')
    parser.add_argument('--label', action='append', default=[],
                        help='legend label of each --group, in order')
    parser.add_argument('--epochs', type=int,
                        help='only runs of this budget (epochs)')
    parser.add_argument('--seeds', type=int, nargs='+',
                        help='only these seeds')
    parser.add_argument('--keys', nargs='+', required=True,
                        help='logged measures to plot, e.g. '
                        'diag_target_entropy em_reseeded')
    parser.add_argument('--out', required=True, help='PNG to write')
    return parser.parse_args(argv)


def variant_name(run: dict) -> str:
    """The config file's name and the options of a record."""
    return ' '.join([osp.basename(run['config']), *run['options']])


def select(runs: List[dict], substrings: List[str], epochs=None,
           seeds=None) -> List[dict]:
    """Records whose variant holds every substring, of the budget and
    seeds asked for, that logged a series."""
    return [run for run in runs
            if all(s in variant_name(run) for s in substrings)
            and (epochs is None or run['budget']['epochs'] == epochs)
            and (seeds is None or run['seed'] in seeds)
            and run.get('series')]


def curve(series: Dict[str, list], key: str):
    """``(steps, values)`` of one measure, the steps where it was logged."""
    pairs = [(s, v) for s, v in zip(series['step'], series.get(key, []))
             if v is not None]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def main(argv=None) -> None:
    args = parse_args(argv)
    with open(args.results) as f:
        runs = json.load(f)['runs']
    if not args.group:
        raise SystemExit('give at least one --group SUBSTRING ...')
    labels = args.label + [' '.join(g) for g in args.group[len(args.label):]]
    cols = min(3, len(args.keys))
    rows = math.ceil(len(args.keys) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows),
                             squeeze=False)
    for i, (group, label) in enumerate(zip(args.group, labels)):
        members = select(runs, group, args.epochs, args.seeds)
        if not members:
            raise SystemExit(f'no run with a series matches {group}')
        for run in members:
            for ax, key in zip(axes.flat, args.keys):
                steps, values = curve(run['series'], key)
                ax.plot(steps, values, color=f'C{i}', alpha=0.8,
                        label=f'{label} (seed {run["seed"]})')
    for ax, key in zip(axes.flat, args.keys):
        ax.set_title(key, fontsize=9)
        ax.set_xlabel('training step', fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(args.keys):]:
        ax.axis('off')
    axes.flat[0].legend(fontsize=6)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
