"""Plot prototype-collapse diagnostics of one or more checkpoints.

Writes to ``--out``:

* ``unique_vs_eps.png`` -- unique-prototype percentage (greedy leaders) vs
  the duplicate distance eps (log axis), one line per prototype bank;
* ``nn_cosine_hist.png`` -- histogram of each prototype's nearest-neighbour
  cosine similarity, overlaid per bank;
* ``usage.png`` -- only with ``--usage``: per-prototype assignment counts
  sorted by rank, with used prototypes and argmax_perplexity (the name
  ``tools/test.py`` and the demo use: of the argmax counts);
* ``frozen_encoder.png`` -- only with ``--trajectories``: unique percentage
  vs prototype step from ``frozen_encoder_collapse.py --out`` files.

The prototypes are the ones the teacher uses (``--copy teacher``, default):
a joint head's EMA-teacher copy, the shared GMM means otherwise -- what
``tools/test.py`` measures; ``--copy student`` reads the student's banks.

Example::

    python tools/analysis/plot_prototypes.py \\
        work_dirs/dino/epoch_100.pth work_dirs/gmm/epoch_100.pth \\
        --labels DINO GMM --out work_dirs/plots
"""
import argparse
import json
import os.path as osp
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from gmproto_mm.evaluation.functional import (  # noqa: E402
    diversity, prototype_io)

DEFAULT_THRESHOLDS = diversity.DEFAULT_THRESHOLDS


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Plot prototype diversity of checkpoints')
    parser.add_argument('checkpoints', nargs='+', help='checkpoint files')
    parser.add_argument('--out', required=True, help='output directory')
    parser.add_argument(
        '--labels', nargs='+', help='legend label per checkpoint '
        '(default: file name)')
    parser.add_argument(
        '--thresholds', nargs='+', type=float,
        default=list(DEFAULT_THRESHOLDS),
        help='eps values to mark on the plot and print in the summary')
    parser.add_argument('--eps-min', type=float, default=0.01,
                        help='smallest eps of the unique %% curve')
    parser.add_argument('--eps-max', type=float, default=1.0,
                        help='largest eps of the unique %% curve')
    parser.add_argument('--num-eps', type=int, default=20,
                        help='log-spaced eps values of the curve')
    parser.add_argument(
        '--bank', help='only plot banks with this name (e.g. head)')
    parser.add_argument(
        '--copy', choices=('teacher', 'student'), default='teacher',
        help="the teacher's banks (EMA copy where there is one; what "
        "tools/test.py measures) or the student's")
    parser.add_argument(
        '--usage', nargs='+', help='JSON files with per-prototype counts: a '
        'list, or {"counts": [...]}')
    parser.add_argument(
        '--trajectories', nargs='+', help='JSON files written by '
        'frozen_encoder_collapse.py --out (labelled like --usage)')
    parser.add_argument('--block-size', type=int, default=4096,
                        help='prototypes per block of the pairwise '
                        'distances (memory)')
    args = parser.parse_args(argv)
    if args.labels and len(args.labels) != len(args.checkpoints):
        parser.error(f'--labels got {len(args.labels)} names for '
                     f'{len(args.checkpoints)} checkpoints')
    if not 0 < args.eps_min < args.eps_max or args.num_eps < 2:
        parser.error('need 0 < --eps-min < --eps-max and --num-eps >= 2')
    return args


def load_counts(path: str) -> np.ndarray:
    """Per-prototype counts from ``[...]`` or ``{"counts": [...]}``."""
    with open(path) as f:
        data = json.load(f)
    if isinstance(data, dict):
        if 'counts' not in data:
            raise ValueError(f'{path}: expected a list or a dict with a '
                             f'"counts" list, got keys {list(data)[:8]}')
        data = data['counts']
    counts = np.asarray(data, dtype=np.float64)
    if counts.ndim != 1 or counts.size == 0:
        raise ValueError(f'{path}: counts must be a non-empty flat list')
    return counts


def _labels_for(paths: Sequence[str], labels: Sequence[str]) -> List[str]:
    """The checkpoints' labels if there is one per file, else file names."""
    if len(paths) == len(labels):
        return list(labels)
    return [Path(p).stem for p in paths]


def plot_trajectories(paths: Sequence[str], labels: Sequence[str],
                      marks: Sequence[float], out_dir: Path) -> str:
    """unique% vs prototype step, a colour per eps, a line style per file."""
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    styles = ['-', '--', ':', '-.']
    for i, (path, name) in enumerate(zip(paths, labels)):
        with open(path) as f:
            unique = json.load(f)['unique']
        for j, eps in enumerate(marks):
            if f'{eps:g}' not in unique:
                continue
            ax.plot(unique['steps'], unique[f'{eps:g}'],
                    linestyle=styles[i % len(styles)], color=f'C{j}',
                    label=f'{name}, ε={eps:g}')
    ax.set_xlabel('prototype steps on the frozen encoder')
    ax.set_ylabel('unique prototypes (%)')
    ax.set_title('Prototype step alone (encoder frozen)')
    ax.set_ylim(0, 105)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return _save(fig, out_dir / 'frozen_encoder.png')


def main(argv: Optional[Sequence[str]] = None) -> List[str]:
    args = parse_args(argv)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    labels = args.labels or [Path(c).stem for c in args.checkpoints]

    grid = np.geomspace(args.eps_min, args.eps_max, args.num_eps).tolist()
    marks = sorted(set(args.thresholds))
    eps_all = sorted(set(grid) | set(marks))

    curves: Dict[str, Dict[str, float]] = {}
    nn_cos: Dict[str, np.ndarray] = {}
    for ckpt, label in zip(args.checkpoints, labels):
        try:
            banks = prototype_io.load_prototypes(ckpt, args.copy)
        except (FileNotFoundError, ValueError) as err:
            raise SystemExit(f'error: {err}') from err
        if args.bank:
            banks = {k: v for k, v in banks.items() if k == args.bank}
            if not banks:
                raise SystemExit(f'{ckpt}: no bank named {args.bank!r}')
        for bank, protos in banks.items():
            name = label if len(banks) == 1 else f'{label}:{bank}'
            curves[name] = diversity.prototype_diversity(
                protos, eps_all, block_size=args.block_size)
            if protos.shape[0] > 1:
                nn_cos[name] = diversity.nearest_neighbour_cosine(
                    protos, block_size=args.block_size).numpy()
            res = curves[name]
            print(f'{name}: K={protos.shape[0]} D={protos.shape[1]}  ' +
                  '  '.join(f'unique@{e:g}={res[f"unique@{e:g}"]:.2f}%'
                            f' comp={res[f"components@{e:g}"]:.0f}'
                            for e in marks))

    written = []
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for name, res in curves.items():
        ax.plot(eps_all, [res[f'unique@{e:g}'] for e in eps_all], marker='o',
                markersize=3, label=name)
    for e in marks:
        ax.axvline(e, color='grey', linestyle=':', linewidth=0.8)
    ax.set_xscale('log')
    ax.set_xlabel('ε  (distance between normalised prototypes)')
    ax.set_ylabel('unique prototypes (%)')
    ax.set_title('Prototype diversity (greedy leaders)')
    ax.set_ylim(0, 105)
    ax.grid(True, which='both', alpha=0.3)
    ax.legend()
    written.append(_save(fig, out_dir / 'unique_vs_eps.png'))

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    if nn_cos:
        low = min(float(v.min()) for v in nn_cos.values())
        bins = np.linspace(min(low, 0.99), 1.0, 81)
        for name, values in nn_cos.items():
            ax.hist(values, bins=bins, histtype='step', linewidth=1.5,
                    label=name)
        ax.legend()
    ax.set_xlabel('cosine to nearest other prototype')
    ax.set_ylabel('prototypes')
    ax.set_title('Nearest-neighbour cosine')
    written.append(_save(fig, out_dir / 'nn_cosine_hist.png'))

    if args.usage:
        use_labels = _labels_for(args.usage, labels)
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        for path, name in zip(args.usage, use_labels):
            counts = load_counts(path)
            ppl = diversity.usage_perplexity(counts)
            used = int((counts > 0).sum())
            ranked = np.sort(counts[counts > 0])[::-1]  # used ones only
            ax.plot(np.arange(1, ranked.size + 1), ranked,
                    label=f'{name} (used {used}/{counts.size}, '
                    f'argmax_perplexity {ppl:.1f})')
        ax.set_xscale('log')
        ax.set_yscale('log')
        ax.set_xlabel('prototype rank')
        ax.set_ylabel('samples assigned (argmax)')
        ax.set_title('Prototype usage')
        ax.legend()
        written.append(_save(fig, out_dir / 'usage.png'))
    else:
        print('note: no --usage JSON given; skipping usage.png')
    if args.trajectories:
        written.append(plot_trajectories(
            args.trajectories, _labels_for(args.trajectories, labels), marks,
            out_dir))
    for path in written:
        print(path)
    return written


def _save(fig: plt.Figure, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return osp.abspath(path)


if __name__ == '__main__':
    torch.set_grad_enabled(False)
    main()
