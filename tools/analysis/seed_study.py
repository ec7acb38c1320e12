"""Train and evaluate configs over seeds, one run after another, at the
demo's budget; write every run's metrics and their mean / std per variant.

    python tools/analysis/seed_study.py configs/dino/dino_vit-tiny-p8_1xb64-3e_fmnist.py \\
        configs/dino/dino-gmm_vit-tiny-p8_1xb64-3e_fmnist.py --seeds 0 1 2
    python tools/analysis/seed_study.py configs/dino/dino-gmm_vit-tiny-p8_1xb64-3e_fmnist.py \\
        --seeds 0 1 2 --cfg-options model.head.gmm.init=sample

A variant is a config plus its ``--cfg-options`` (applied to training and
evaluation). Runs already in the results file (same config, options, seed
and budget) are kept and skipped, so a study grows over several calls and
an interrupted one resumes; each finished run is written at once (merged
into the file as it is then, so records added meanwhile are kept), with a
digest of its resolved config: if a stored run's config resolves
differently today (a default in the file changed), the tool stops instead
of mixing the two. Never runs two trainings at once (two torch jobs on 2
cores are ~10x slower).
Writes ``--out`` (default ``work_dirs/seed_study/results.json``, under the
repository root) and, next to it, ``knn_vs_used.png``; the study data kept
in the repository is written only when asked for, with ``--out
docs/seed_study/results.json`` (its table: add ``--markdown``).
"""
import argparse
import hashlib
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import time
from typing import Dict, List, Optional

from gmproto_mm.analysis.demo_protocol import (REPO_ROOT, iteration_times,
                                               train_and_evaluate,
                                               training_records)
from gmproto_mm.analysis.diagnostics import diagnostics_config

#: Relative to the repository root (main() changes into it).
DEFAULT_OUT = 'work_dirs/seed_study/results.json'
# the measures of docs/method.md: k-NN, usage, uniqueness, embedding spread
PLOT_X, PLOT_Y = 'prototypes/used_prototypes', 'knn/top1'
PLOT_MARKERS = ('o', 's', '^', 'D', 'v')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument('configs', nargs='*', help='config files')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2],
                        help='training seeds of every config')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        metavar='KEY=VALUE',
                        help='options for every config of this call')
    parser.add_argument('--epochs', type=int, default=3,
                        help="training epochs per run (the demo's 3)")
    parser.add_argument('--train-images', type=int, default=32000,
                        help='training images used (0 = all)')
    parser.add_argument('--bank-images', type=int, default=10000,
                        help='k-NN bank images (0 = all)')
    parser.add_argument('--query-images', type=int, default=0,
                        help='k-NN queries (0 = all 10,000)')
    parser.add_argument('--out', default=DEFAULT_OUT,
                        help='results JSON, read first: its runs are kept '
                        'and skipped (the plot goes next to it); the '
                        "repository's study is docs/seed_study/results.json")
    parser.add_argument('--work-dir', default='work_dirs/seed_study',
                        help="the runs' work directories")
    parser.add_argument('--diagnostics', action='store_true',
                        help='also log TrainingDiagnosticsHook\'s measures '
                        '(gmproto_mm.analysis.diagnostics) into each run\'s '
                        'series; the training is the same')
    parser.add_argument('--markdown', action='store_true',
                        help='print the summary of --out as a markdown table '
                        'and exit (no training)')
    return parser.parse_args()


def variant_key(run: dict) -> str:
    """``config [options]``: one name per variant, used in the summary;
    runs of an earlier version of the code carry its commit (``code``,
    written into stored records when the code changed what a config
    means) as ``[code <commit>]``."""
    options = ' '.join(run['options'])
    code = f' [code {run["code"]}]' if run.get('code') else ''
    return f'{run["config"]} {options}'.strip() + code


def group_key(run: dict) -> str:
    """The variant, plus the budget where it is not the demo's."""
    budget = run['budget']
    return variant_key(run) + ('' if budget == DEFAULT_BUDGET
                               else f' @ {json.dumps(budget)}')


#: Logged scalars kept per log step in a record's ``series``.
SERIES_KEYS = ('em_reseeded', 'em_merged', 'em_merge_unresolved',
               'em_merge_overdrawn',
               'em_effective_components', 'proto_unique@0.1',
               'proto_measured_iter')


def training_log(work_dir: str) -> dict:
    """From the training run's scalars.json (mmengine's log): the last
    iteration; per logged ``proto_unique@<eps>`` (``PrototypeMonitorHook``)
    its minimum over training as ``monitor/min_unique@<eps>``; the median
    seconds per iteration (``train/s_per_iter``); and ``series``: the step
    and :data:`SERIES_KEYS` and ``diag_*`` values
    (``TrainingDiagnosticsHook``) of every logged record that has any,
    None where a record lacks one."""
    records = training_records(work_dir)
    steps = max(r.get('step', 0) for r in records)
    minima: Dict[str, float] = {}
    series: Dict[str, list] = {}
    for record in records:
        for key, value in record.items():
            if key.startswith('proto_unique@'):
                name = 'monitor/min_unique@' + key.split('@', 1)[1]
                minima[name] = min(value, minima.get(name, value))
        keys = [k for k in record
                if k in SERIES_KEYS or k.startswith('diag_')]
        if keys:
            row = len(series.get('step', []))
            series.setdefault('step', []).append(record['step'])
            for key in sorted(set(keys) | set(series) - {'step'}):
                column = series.setdefault(key, [None] * row)
                column.append(record.get(key))
    times = iteration_times(work_dir)
    if times:
        minima['train/s_per_iter'] = statistics.median(times)
    return dict(steps=steps, monitor=minima, series=series)


def provenance() -> dict:
    """What produced a record: the commit of the code (``+dirty`` with
    uncommitted changes; ``unknown`` outside a git checkout), the torch
    version and the threads per run."""
    import torch
    git = ['git', '-C', REPO_ROOT]
    commit = subprocess.run(git + ['rev-parse', '--short', 'HEAD'],
                            capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(git + ['status', '--porcelain', '--',
                                  'gmproto_mm', 'configs', 'tools'],
                           capture_output=True, text=True).stdout.strip()
    return dict(commit=(commit or 'unknown') + ('+dirty' if dirty else ''),
                torch=torch.__version__,
                threads=int(os.environ.get('OMP_NUM_THREADS',
                                           torch.get_num_threads())))


def run_dir(work_dir: str, task: dict) -> str:
    """``<config>_<digest>_seed<n>``: the digest (of config, options,
    budget and the resolved config's digest) keeps variants whose names
    agree in their first characters apart, and a rerun after a config
    default changed out of the old run's folder."""
    name = osp.splitext(osp.basename(task['config']))[0]
    variant = json.dumps([task['config'], task['options'], task['budget'],
                          task.get('config_digest')], sort_keys=True)
    digest = hashlib.sha1(variant.encode()).hexdigest()[:10]
    return osp.join(work_dir, f'{name}_{digest}_seed{task["seed"]}')


def config_digest(config: str, options: List[str]) -> str:
    """SHA-1 (12 hex digits) of the resolved config (file, its bases and
    ``options``): it changes when a default in a config file changes, which
    the variant's name (file plus options) does not show."""
    from mmengine.config import Config, DictAction
    parser = argparse.ArgumentParser()
    parser.add_argument('--options', nargs='+', action=DictAction)
    cfg = Config.fromfile(config, import_custom_modules=False)
    if options:
        cfg.merge_from_dict(parser.parse_args(['--options',
                                               *options]).options)
    text = json.dumps(cfg.to_dict(), sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def check_unchanged(runs: List[dict], task: dict) -> None:
    """Exit if a stored run of ``task``'s variant, seed and budget ran a
    config that resolves differently today (its numbers are not this
    variant's any more). Runs stored before digests were kept pass."""
    for run in runs:
        stored = run.get('config_digest')
        if run_key(run) == run_key(task) and stored not in (
                None, task['config_digest']):
            sys.exit(f'seed_study: {variant_key(task)!r} seed '
                     f'{task["seed"]} resolves to another config than the '
                     f'stored run (digest {stored}, now '
                     f'{task["config_digest"]}): a default in the config '
                     'changed since. Write the value that run used into '
                     'its "options" in the results file, or use a new '
                     '--out.')


def run_key(run: dict) -> tuple:
    return (run['config'], tuple(run['options']), run['seed'],
            json.dumps(run['budget'], sort_keys=True), run.get('code'))


def summarise(runs: List[dict]) -> Dict[str, dict]:
    """Mean, sample std (0 for one run) and seeds of every metric, per
    variant and budget, in the order the variants first appear."""
    groups: Dict[str, List[dict]] = {}
    for run in runs:
        groups.setdefault(group_key(run), []).append(run)
    summary = {}
    for key, members in groups.items():
        names = [n for n in members[0]['metrics']
                 if all(n in m['metrics'] for m in members)]
        stats = {}
        for name in names + ['train_s', 'steps']:
            values = [float(m['metrics'][name]) if name in m['metrics']
                      else float(m[name]) for m in members]
            stats[name] = dict(
                mean=statistics.fmean(values),
                std=statistics.stdev(values) if len(values) > 1 else 0.0)
        summary[key] = dict(seeds=[m['seed'] for m in members], **stats)
    return summary


DEFAULT_BUDGET = dict(epochs=3, train_images=32000, bank_images=10000,
                      query_images=0)


def load_runs(path: str) -> List[dict]:
    if not osp.isfile(path):
        return []
    with open(path) as f:
        return json.load(f)['runs']


def write(path: str, runs: List[dict]) -> None:
    """Results JSON (written via a temporary file: never half a file)."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(dict(runs=runs, summary=summarise(runs)), f, indent=2)
    os.replace(tmp, path)


def write_merged(path: str, mine: List[dict]) -> List[dict]:
    """Write the file as it is now plus this call's runs not yet in it
    (matched by ``work_dir`` and ``code``: a record of an earlier version
    of the code may share a rerun's folder name): records that another
    writer added or relabelled since this call read the file are kept, not
    overwritten by the copy read at the start. Returns all runs written."""
    stored = load_runs(path)
    dirs = {(run.get('work_dir'), run.get('code')) for run in stored}
    runs = stored + [run for run in mine
                     if (run['work_dir'], run.get('code')) not in dirs]
    write(path, runs)
    return runs


def plot(path: str, runs: List[dict]) -> str:
    """k-NN top-1 against used prototypes, one marker per run, mean +- std
    per variant."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7.0, 4.6))
    for i, (key, stats) in enumerate(summarise(runs).items()):
        members = [r for r in runs if group_key(r) == key]
        xs = [r['metrics'][PLOT_X] for r in members]
        ys = [r['metrics'][PLOT_Y] for r in members]
        # 10 colours, then the next marker: every variant stays distinct
        style = dict(color=f'C{i % 10}',
                     marker=PLOT_MARKERS[i // 10 % len(PLOT_MARKERS)])
        ax.scatter(xs, ys, alpha=0.4, **style)
        ax.errorbar(stats[PLOT_X]['mean'], stats[PLOT_Y]['mean'],
                    xerr=stats[PLOT_X]['std'], yerr=stats[PLOT_Y]['std'],
                    capsize=3, linestyle='none', **style,
                    label=f'{key} (n={len(stats["seeds"])})')
    ax.set_xscale('log')
    ax.set_xlabel('used prototypes (argmax of some test image)')
    ax.set_ylabel('k-NN top-1 (%)')
    ax.set_title('Seed study: k-NN against prototype usage')
    # below the axes, so that no point is hidden behind the long names
    ax.legend(fontsize=6, loc='upper left', bbox_to_anchor=(0.0, -0.14))
    out = osp.join(osp.dirname(osp.abspath(path)), 'knn_vs_used.png')
    fig.savefig(out, dpi=120, bbox_inches='tight')
    plt.close(fig)
    return out


# the table's columns: (metric, header, decimals)
TABLE = (('knn/top1', 'k-NN top-1 (%)', 2),
         ('prototypes/used_prototypes', 'used', 1),
         ('prototypes/argmax_perplexity', 'argmax ppl', 1),
         ('prototypes/soft_perplexity', 'soft ppl', 1),
         ('prototypes/unique@0.1', 'unique@0.1 (%)', 2),
         ('monitor/min_unique@0.1', 'min while training @0.1', 2),
         ('prototypes/unique@0.5', 'unique@0.5 (%)', 2),
         ('prototypes/embedding_leaders@0.1', 'data leaders @0.1', 0),
         ('prototypes/embedding_leaders@0.5', 'data leaders @0.5', 0))


def markdown_table(summary: Dict[str, dict]) -> str:
    """Mean +- std per variant (one row each) as a markdown table."""
    lines = ['| variant | seeds | ' + ' | '.join(h for _, h, _ in TABLE) +
             ' |', '|---|---|' + '---:|' * len(TABLE)]
    for key, stats in summary.items():
        cells = []
        for name, _, digits in TABLE:
            if name not in stats:
                cells.append('–')
                continue
            mean, std = stats[name]['mean'], stats[name]['std']
            cells.append(f'{mean:.{digits}f} ± {std:.{digits}f}')
        seeds = ','.join(str(s) for s in stats['seeds'])
        lines.append(f'| `{key}` | {seeds} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def eta(done: int, total: int, elapsed_s: float) -> Dict[str, float]:
    """Runs done and left, and the time left from the mean time per run.

    Args:
        done (int): Runs finished in this call (> 0).
        total (int): Runs this call does (>= ``done``).
        elapsed_s (float): Seconds since this call's first run started.

    Returns:
        dict: ``done``, ``left`` (runs), ``mean_s`` (elapsed / done) and
        ``left_s`` (``mean_s * left``).
    """
    if not 0 < done <= total or elapsed_s < 0:
        raise ValueError('eta needs 0 < done <= total and elapsed_s >= 0, '
                         f'got done={done}, total={total}, '
                         f'elapsed_s={elapsed_s}')
    mean = elapsed_s / done
    return dict(done=done, left=total - done, mean_s=mean,
                left_s=mean * (total - done))


def eta_message(done: int, total: int, elapsed_s: float,
                now: Optional[float] = None) -> str:
    """``'2/6 runs done, 4 left; 7.5 min per run, ~30 min left (ETA
    14:05)'``: :func:`eta`, the clock time from ``now`` (default: now)."""
    est = eta(done, total, elapsed_s)
    now = time.time() if now is None else now
    finish = time.strftime('%H:%M', time.localtime(now + est['left_s']))
    return (f'{done}/{total} runs done, {est["left"]} left; '
            f'{est["mean_s"] / 60:.1f} min per run, '
            f'~{est["left_s"] / 60:.0f} min left (ETA {finish})')


def main() -> None:
    args = parse_args()
    os.chdir(REPO_ROOT)
    if args.markdown:
        print(markdown_table(summarise(load_runs(args.out))))
        return
    if not args.configs:
        sys.exit('seed_study: give at least one config (or --markdown)')
    budget = dict(epochs=args.epochs, train_images=args.train_images,
                  bank_images=args.bank_images,
                  query_images=args.query_images)
    for config in args.configs:
        if not osp.isfile(config):
            sys.exit(f'seed_study: no config file {config!r}')
    runs = load_runs(args.out)
    done = {run_key(r) for r in runs}
    digests = {c: config_digest(c, args.cfg_options) for c in args.configs}
    todo = [dict(config=c, options=list(args.cfg_options), seed=s,
                 budget=budget, config_digest=digests[c])
            for c in args.configs for s in args.seeds]
    for task in todo:
        check_unchanged(runs, task)
    todo = [t for t in todo if run_key(t) not in done]
    print(f'seed_study: {len(todo)} runs to do, {len(runs)} in {args.out}',
          flush=True)
    start = time.time()
    mine: List[dict] = []
    for i, task in enumerate(todo, 1):
        model_dir = run_dir(args.work_dir, task)
        label = f'[{i}/{len(todo)}] {variant_key(task)} seed {task["seed"]}'
        config = task['config']
        if args.diagnostics:  # the same training, with the measuring hook
            os.makedirs(model_dir, exist_ok=True)
            config = osp.join(model_dir, 'diagnostics_config.py')
            with open(config, 'w') as f:
                f.write(diagnostics_config(task['config']))
        out = train_and_evaluate(
            config, model_dir, seed=task['seed'],
            options=task['options'], label=label, **budget)
        log = training_log(model_dir)
        mine.append(dict(task, work_dir=model_dir, steps=log['steps'],
                         train_s=round(out['train_s'], 1),
                         metrics={**out['metrics'], **log['monitor']},
                         series=log['series'], **provenance()))
        write_merged(args.out, mine)
        print(f'seed_study: {label} done, knn/top1 '
              f'{out["metrics"]["knn/top1"]:.2f}, used '
              f'{out["metrics"][PLOT_X]:.0f}; '
              f'{eta_message(i, len(todo), time.time() - start)}',
              flush=True)
    runs = write_merged(args.out, mine)
    print(f'results: {args.out}; plot: {plot(args.out, runs)}')


if __name__ == '__main__':
    main()
