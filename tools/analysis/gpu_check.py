"""One prepared GPU check of the 8-GPU configs, minutes on one GPU.

Trains the joint and the decoupled DINO ViT-B/16 configs (and two steps of
decoupled iBOT) through mmengine's Runner on synthetic multi-crop batches,
with the configs' hooks (``OnlineEMHook``) and optimizer wrapper, under
AMP (bf16), and reports in one JSON: median iteration time joint vs
decoupled, EM update vs one ``N x D x K`` matmul, peak memory, GMM state
(fp32, finite, unit-norm) after the AMP steps, checkpoint -> resume of the
next EM step bit for bit, and with >= 2 GPUs a 2-process NCCL run whose
banks are compared across ranks. See docs/gpu_check.md.

    python tools/analysis/gpu_check.py            # CUDA, < 5 min
    python tools/analysis/gpu_check.py --tiny     # same path, CPU, tiny
"""
import argparse
import functools
import gc
import json
import os
import os.path as osp
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from typing import Callable, Dict, List, Mapping, Optional

import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner
from mmpretrain.utils import get_ori_model

import gmproto_mm  # noqa: F401  (registers components)
from gmproto_mm.analysis.em_cost import (first_step_after_pooling,
                                         measure_em_ratio)
from gmproto_mm.analysis.step_timer import StepTimer
from gmproto_mm.apis import merge_train_args, parse_train_args
from gmproto_mm.engine import CheckpointFitHook, prepare_cpu_distributed
from gmproto_mm.engine.hooks import OnlineEMHook, find_em_banks
from gmproto_mm.testing import crop_sizes
gmproto_mm.compat.use_full_checkpoint_loader()  # its resume stage

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

CONFIGS = dict(
    gpu=dict(joint='configs/dino/dino_vit-base-p16_8xb128-coslr-400e_in1k.py',
             decoupled='configs/dino/dino-gmm_vit-base-p16_8xb128-coslr-400e_in1k.py',
             ibot='configs/ibot/ibot-gmm_vit-base-p16_8xb128-coslr-400e_in1k.py'),
    tiny=dict(joint='configs/dino/dino_vit-tiny-p8_1xb64-3e_fmnist.py',
              decoupled='configs/dino/dino-gmm_vit-tiny-p8_1xb64-3e_fmnist.py',
              ibot='configs/ibot/ibot-gmm_vit-tiny-p4_1xb64-3e_fmnist.py'))
TARGETS = dict(iter_ratio_max=1.03, em_ratio_max=4.5,
               em_ratio_options_max=5.0, extra_memory_max_gb=0.5,
               elapsed_max_s=300.0)
RECIPE_GPUS = 8  # the gathered N of `dist_train.sh CONFIG 8`
UNIT_NORM_TOL = 1e-5
DIST_TIMEOUT_S = 300




def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--tiny', action='store_true',
                        help='the tiny Fashion-MNIST configs, few iterations')
    parser.add_argument('--batch', type=int,
                        help='images per GPU (default 64; tiny 8)')
    parser.add_argument('--warmup', type=int,
                        help='untimed first iterations (default 5; tiny 2)')
    parser.add_argument('--iters', type=int,
                        help='timed iterations per run (default 30; tiny 4)')
    parser.add_argument('--ibot-iters', type=int, default=2,
                        help='iterations of the iBOT config (build and '
                        'step check)')
    parser.add_argument('--em-repeats', type=int, default=10,
                        help='timed repetitions of the EM update / matmul')
    parser.add_argument('--amp-dtype', default='bfloat16',
                        choices=['bfloat16', 'float16'],
                        help='AmpOptimWrapper dtype on CUDA (CPU: no AMP)')
    parser.add_argument('--no-dist', action='store_true',
                        help='skip the 2-process run')
    parser.add_argument('--work-dir', default='work_dirs/gpu_check',
                        help="the runs' work directories")
    parser.add_argument('--out', default='work_dirs/gpu_check.json',
                        help='write the results to this JSON file')
    parser.add_argument('--log-level', default='WARNING',
                        help="mmengine's log level of the runs")
    parser.add_argument('--dist-worker', metavar='DIR',
                        help=argparse.SUPPRESS)  # a rank of the 2-proc run
    args = parser.parse_args(argv)
    mode = 'tiny' if args.tiny else 'gpu'
    for name, gpu, tiny in (('batch', 64, 8), ('warmup', 5, 2),
                            ('iters', 30, 4)):
        if getattr(args, name) is None:
            setattr(args, name, tiny if args.tiny else gpu)
        if getattr(args, name) < dict(batch=1, warmup=0, iters=2)[name]:
            parser.error('--batch must be >= 1, --warmup >= 0, --iters >= 2'
                         ' (the checkpoint at iteration warmup + iters must '
                         'be the only one)')
    if args.ibot_iters < 1 or args.em_repeats < 1:
        parser.error('--ibot-iters and --em-repeats must be >= 1')
    args.configs = CONFIGS[mode]
    if not args.tiny and not torch.cuda.is_available() \
            and args.dist_worker is None:
        parser.error('no CUDA device: the full check needs a GPU; --tiny '
                     'runs the same code path on the CPU')
    return args


def build_cfg(args: argparse.Namespace, name: str, work_dir: str,
              max_iters: int, checkpoint_at: Optional[int] = None,
              resume_from: Optional[str] = None,
              launcher: str = 'none') -> Config:
    """The config ``args.configs[name]`` as ``tools/train.py`` would run it
    (``--amp``, ``--resume``, ``--launcher``), on synthetic multi-crop
    batches for ``max_iters`` iterations."""
    config = osp.join(ROOT, args.configs[name])
    cuda = torch.cuda.is_available()
    argv = [config, '--work-dir', work_dir, '--launcher', launcher,
            '--no-persistent-workers', '--amp' if cuda else '--no-pin-memory']
    if resume_from is not None:
        argv += ['--resume', resume_from]
    cfg = merge_train_args(Config.fromfile(config), parse_train_args(argv))
    if cuda:  # mmengine's AmpOptimWrapper refuses the CPU
        cfg.optim_wrapper.dtype = args.amp_dtype
    world = int(os.environ.get('WORLD_SIZE', 1))
    loader = cfg.train_dataloader
    loader.batch_size, loader.num_workers = args.batch, 0
    loader.sampler = dict(type='DefaultSampler', shuffle=False)
    loader.dataset = dict(  # replaces, not merges into, the real data set
        type='RandomMultiCropDataset',
        crop_sizes=crop_sizes(loader.dataset.pipeline),
        channels=cfg.model.backbone.get('in_channels', 3),
        length=max_iters * args.batch * world)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
    cfg.default_hooks.checkpoint = None if checkpoint_at is None else dict(
        type='CheckpointHook', by_epoch=False, interval=checkpoint_at,
        save_last=False, max_keep_ckpts=1)
    # the configs' own initialisation (uniform means: EM from the first
    # step); PrototypeMonitorHook's tile per iteration while it measures
    # stays out of the timed iterations (benchmark_em.py --monitor times it)
    cfg.custom_hooks = [h for h in cfg.get('custom_hooks', [])
                        if h.get('type') != 'PrototypeMonitorHook']
    cfg.log_level = args.log_level
    cfg.experiment_name = f'{osp.basename(work_dir)}_{time.time_ns()}'
    return prepare_cpu_distributed(cfg)


def train(cfg: Config, collect: Callable[[Runner, StepTimer], dict]) -> dict:
    """``Runner.from_cfg(cfg).train()`` with a :class:`StepTimer` (and
    ``CheckpointFitHook`` when resuming, as ``tools/train.py``); returns
    ``collect(runner, timer)`` and frees the run before the next one."""
    runner = Runner.from_cfg(cfg)
    timer = StepTimer()
    runner.register_hook(timer)
    if cfg.get('resume'):
        runner.register_hook(CheckpointFitHook(cfg.filename))
    runner.train()
    result = collect(runner, timer)
    del runner, timer  # the Runner <-> loop cycle needs the collector
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return result


def gmm_states(runner) -> Dict[str, torch.Tensor]:
    """CPU copies of every GMM buffer (``'<bank>.gmm.<buffer>'``)."""
    model = get_ori_model(runner.model)
    prefixes = tuple(f'{name}.gmm.' for name, _ in find_em_banks(model))
    return {key: value.detach().cpu().clone()
            for key, value in model.state_dict().items()
            if key.startswith(prefixes)}


def state_mismatches(reference: Mapping[str, torch.Tensor],
                     other: Mapping[str, torch.Tensor]) -> List[str]:
    """Keys of two state dicts that are missing or not bit-identical
    (values, dtype and shape); empty when they agree exactly."""
    keys = sorted(set(reference) | set(other))
    return [key for key in keys if key not in reference or key not in other
            or reference[key].dtype != other[key].dtype
            or not torch.equal(reference[key], other[key])]


def gmm_health(runner) -> Dict[str, dict]:
    """Per bank: the GMM state is fp32, finite and its means unit-norm."""
    result = {}
    for name, bank in find_em_banks(get_ori_model(runner.model)):
        floats = [t for t in bank.gmm.state_dict().values()
                  if t.is_floating_point()]
        norm_err = float((bank.gmm.means.double().norm(dim=1) - 1).abs().max())
        result[name] = dict(
            fp32=all(t.dtype == torch.float32 for t in floats),
            finite=all(bool(torch.isfinite(t).all()) for t in floats),
            unit_norm=norm_err <= UNIT_NORM_TOL,
            max_norm_error=norm_err,
            num_updates=int(bank.gmm.num_updates),
            initialized=bool(bank.gmm.initialized))
    return result


def run_summary(runner: Runner, timer: StepTimer, warmup: int,
                iters: int) -> dict:
    """Iteration times (median of the timed ones), AMP and peak memory."""
    timed = timer.times[warmup:warmup + iters]
    wrapper = runner.optim_wrapper
    amp = getattr(wrapper, 'cast_dtype', None)
    out = dict(config=runner.cfg.filename, iter_times_s=timer.times,
               median_iter_s=statistics.median(timed), timed_iters=len(timed),
               optim_wrapper=type(wrapper).__name__,
               amp_dtype=None if amp is None else str(amp),
               peak_memory_bytes=timer.peak_bytes,
               memory_allocated_at_start_bytes=timer.start_bytes)
    if timer.peak_bytes is None:
        out['peak_memory_note'] = 'CPU run: torch.cuda.max_memory_allocated ' \
            'only exists on CUDA'
    return out


def resume_check(args: argparse.Namespace, reference: Dict[str, torch.Tensor],
                 checkpoint: str, n: int) -> dict:
    """Resume ``checkpoint`` (after ``n`` iterations) as ``--resume`` does,
    train iteration ``n + 1`` and compare its GMM state with ``reference``,
    the uninterrupted run's state after the same iteration."""
    at_ckpt = {key: value for key, value in torch.load(
        checkpoint, map_location='cpu', weights_only=False)['state_dict']
        .items() if key in reference}
    resumed = train(build_cfg(args, 'decoupled',
                              osp.join(args.work_dir, 'resume'), n + 1,
                              resume_from=checkpoint),
                    lambda runner, _: gmm_states(runner))
    mismatches = state_mismatches(reference, resumed)
    changed = state_mismatches(at_ckpt, reference)
    updates = {key: int(reference[key]) - int(at_ckpt[key])
               for key in reference if key.endswith('.num_updates')}
    return dict(checkpoint=checkpoint, checkpoint_iter=n,
                compared_keys=sorted(reference), mismatches=mismatches,
                changed_by_next_step=changed, em_updates_in_next_step=updates,
                bit_identical=not mismatches and bool(changed)
                and all(u == 1 for u in updates.values()))


def em_check(args: argparse.Namespace) -> dict:
    """EM update / matmul at the decoupled config's K, D and gathered N
    (this run's, and the 8-GPU recipe's), for the paper's method (the
    class defaults, after their pooling) and for the config's own EM
    options (re-seeding from the first update, so that it is timed); and
    the first EM step after pooling K rows (class defaults)."""
    cfg = Config.fromfile(osp.join(ROOT, args.configs['decoupled']))
    num_global = cfg.model.num_global_views
    K, D = cfg.model.head.num_prototypes, cfg.model.head.in_channels
    options = dict(cfg.model.head.gmm, maintenance=dict(
        cfg.model.head.gmm.get('maintenance') or {}, reseed_start=0))
    gpus = 1 if args.tiny else RECIPE_GPUS
    recipe_n = cfg.train_dataloader.batch_size * num_global * gpus
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    runs = {}
    for label, n in (('this_run', args.batch * num_global),
                     ('recipe', recipe_n)):
        runs[label] = measure_em_ratio(K, D, n, args.em_repeats, device)
        runs[f'{label}_options'] = measure_em_ratio(
            K, D, n, args.em_repeats, device, options)
    runs['first_step_after_pooling'] = first_step_after_pooling(
        K, D, recipe_n, device)
    return dict(device=device, recipe_gpus=gpus, options=options, **runs)


def dist_worker(args: argparse.Namespace) -> None:
    """One rank of the 2-process run: train the decoupled config, save the
    banks, then let ``OnlineEMHook.check_sync`` compare checksums."""
    iters = args.warmup + 2

    def collect(runner: Runner, _) -> dict:
        states = gmm_states(runner)  # before check_sync could re-broadcast
        em_hook = next(h for h in runner.hooks if isinstance(h, OnlineEMHook))
        return dict(states=states, check_sync=em_hook.check_sync(runner))

    result = train(build_cfg(args, 'decoupled',
                             osp.join(args.dist_worker, 'work'), iters,
                             launcher='pytorch'), collect)
    result.update(backend=torch.distributed.get_backend(),
                  world_size=torch.distributed.get_world_size(), iters=iters)
    torch.save(result, osp.join(args.dist_worker,
                                f'rank{torch.distributed.get_rank()}.pth'))


def dist_check(args: argparse.Namespace, argv: List[str]) -> dict:
    """2 processes (NCCL on 2 GPUs, gloo on the CPU) whose banks must be
    bit-identical after training on different per-rank batches."""
    if args.no_dist:
        return dict(ran=False, reason='--no-dist')
    if torch.cuda.is_available() and torch.cuda.device_count() < 2:
        return dict(ran=False, reason='one GPU: the NCCL run needs >= 2')
    out_dir = tempfile.mkdtemp(prefix='dist_',
                               dir=osp.abspath(args.work_dir))
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone',
           '--nproc_per_node=2', osp.abspath(__file__), *argv,
           '--dist-worker', out_dir]
    try:  # a collective that hangs must not hang the check
        proc = subprocess.run(cmd, capture_output=True, text=True,
                              timeout=DIST_TIMEOUT_S)
        error = None if proc.returncode == 0 else \
            proc.stdout[-2000:] + proc.stderr[-4000:]
    except subprocess.TimeoutExpired:
        error = f'no result within {DIST_TIMEOUT_S} s'
    if error is not None:
        return dict(ran=True, passed=False, command=shlex.join(cmd),
                    error=error)
    ranks = [torch.load(osp.join(out_dir, f'rank{r}.pth'), weights_only=False)
             for r in range(2)]
    mismatches = state_mismatches(ranks[0]['states'], ranks[1]['states'])
    updates = {k: int(v) for k, v in ranks[0]['states'].items()
               if k.endswith('.num_updates')}
    return dict(ran=True, backend=ranks[0]['backend'],
                world_size=ranks[0]['world_size'], iters=ranks[0]['iters'],
                em_updates=updates, mismatches=mismatches,
                check_sync=[r['check_sync'] for r in ranks],
                passed=not mismatches and all(r['check_sync'] for r in ranks)
                and all(u > 0 for u in updates.values()))


def targets(result: dict) -> dict:
    """Pass/fail per target; performance targets count on CUDA only. A
    stage that raised (see ``errors``) fails its targets."""
    cuda = result['device']['type'] == 'cuda'
    runs, em = result['runs'], result.get('em') or {}
    ratio = result.get('iter_ratio_decoupled_over_joint')
    peaks = [runs.get(k, {}).get('peak_memory_bytes')
             for k in ('joint', 'decoupled')]
    extra = None if None in peaks else (peaks[1] - peaks[0]) / 2**30
    em_ratio = em.get('recipe', {}).get('ratio')
    em_ratio_options = em.get('recipe_options', {}).get('ratio')
    health = [c for run in result['gmm_state'].values() for c in run.values()]
    complete = len(result['gmm_state']) == 2
    dist = result.get('distributed') or dict(ran=True)

    def at_most(value, limit):
        return None if value is None else value <= limit

    checks = dict(
        iter_ratio=(ratio, at_most(ratio, TARGETS['iter_ratio_max']), cuda),
        em_ratio=(em_ratio, at_most(em_ratio, TARGETS['em_ratio_max']),
                  cuda),
        em_ratio_options=(em_ratio_options,
                          at_most(em_ratio_options,
                                  TARGETS['em_ratio_options_max']), cuda),
        extra_memory_gb=(extra, at_most(extra,
                                        TARGETS['extra_memory_max_gb']), cuda),
        elapsed_s=(result['elapsed_s'],
                   at_most(result['elapsed_s'], TARGETS['elapsed_max_s']),
                   cuda),
        gmm_fp32=(None, complete and all(c['fp32'] for c in health), True),
        gmm_finite=(None, complete and all(c['finite'] for c in health),
                    True),
        gmm_unit_norm=(None, complete and all(c['unit_norm'] for c in health),
                       True),
        resume_bit_identical=(
            None, bool((result.get('resume') or {}).get('bit_identical')),
            True),
        distributed_banks_identical=(
            None, bool(dist.get('passed')) if dist['ran'] else None,
            dist['ran']))
    out = {name: dict(value=value, passed=ok, counts=counts)
           for name, (value, ok, counts) in checks.items()}
    for check in out.values():  # a measurement a crash prevented fails
        if check['counts'] and check['passed'] is None and cuda:
            check['passed'] = False
    return out


def print_summary(result: dict) -> None:
    for name, run in result['runs'].items():
        peak = run['peak_memory_bytes']
        print(f'[gpu_check] {name}: median iteration '
              f'{run["median_iter_s"] * 1e3:.1f} ms, peak memory '
              + ('n/a (CPU)' if peak is None else f'{peak / 2**30:.2f} GB'))
    for label, e in (result.get('em') or {}).items():
        if isinstance(e, dict) and 'update_s' in e:
            print(f'[gpu_check] EM update {e["update_s"] * 1e3:.2f} ms vs '
                  f'matmul {e["matmul_s"] * 1e3:.2f} ms at K='
                  f'{e["num_components"]} D={e["dim"]} N={e["batch"]} '
                  f'({label})')
    first = (result.get('em') or {}).get('first_step_after_pooling')
    if first:
        peak = first['peak_mb']
        print(f'[gpu_check] first EM step after pooling {first["pooled_rows"]}'
              f' rows: {first["seconds"]:.2f} s, peak memory +'
              + ('n/a' if peak is None else f'{peak:.0f} MB'))
    for stage, error in result['errors'].items():
        print(f'[gpu_check] stage {stage} raised:\n{error}')
    for name, check in result['targets'].items():
        value = '' if check['value'] is None else f' {check["value"]:.4g}'
        verdict = {True: 'pass', False: 'FAIL', None: 'n/a'}[check['passed']]
        print(f'[gpu_check] {name}:{value} {verdict}'
              + ('' if check['counts'] else ' (not counted)'))


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.dist_worker is not None:
        dist_worker(args)
        return 0
    os.makedirs(args.work_dir, exist_ok=True)
    cuda = torch.cuda.is_available()
    result = dict(
        command=shlex.join([sys.executable, *sys.argv]),
        mode='tiny' if args.tiny else 'gpu',
        device=dict(
            type='cuda' if cuda else 'cpu',
            name=torch.cuda.get_device_name() if cuda else None,
            count=torch.cuda.device_count(),
            torch=torch.__version__, cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version() if cuda else None),
        settings=dict(batch_per_gpu=args.batch, warmup=args.warmup,
                      iters=args.iters, ibot_iters=args.ibot_iters,
                      amp_dtype=args.amp_dtype if cuda else None,
                      configs=args.configs),
        runs={}, gmm_state={}, stages_s={}, errors={},
        target_values=TARGETS)
    start = time.perf_counter()

    def stage(name: str, fn: Callable[[], None]) -> None:
        """Run one stage; a failure is recorded and the others still run
        (GPU time is scarce: one crash must not cost the other numbers)."""
        began = time.perf_counter()
        try:
            fn()
        except Exception:  # noqa: BLE001 -- reported in the JSON, fails
            result['errors'][name] = traceback.format_exc()
        result['stages_s'][name] = time.perf_counter() - began
        print(f'[gpu_check] {name}: {result["stages_s"][name]:.1f} s'
              + (' (raised)' if name in result['errors'] else ''), flush=True)

    n = args.warmup + args.iters
    summary = functools.partial(run_summary, warmup=args.warmup,
                                iters=args.iters)
    reference = {}

    def joint() -> None:
        result['runs']['joint'] = train(
            build_cfg(args, 'joint', osp.join(args.work_dir, 'joint'), n),
            summary)

    def decoupled() -> None:  # one more iteration after the checkpoint
        def collect(runner: Runner, timer: StepTimer) -> None:
            result['runs']['decoupled'] = summary(runner, timer)
            result['gmm_state']['decoupled'] = gmm_health(runner)
            reference.update(gmm_states(runner))

        train(build_cfg(args, 'decoupled', osp.join(args.work_dir,
                                                    'decoupled'), n + 1,
                        checkpoint_at=n), collect)

    def resume() -> None:
        result['resume'] = resume_check(
            args, reference,
            osp.join(args.work_dir, 'decoupled', f'iter_{n}.pth'), n)

    def ibot() -> None:
        def collect(runner: Runner, timer: StepTimer) -> None:
            result['runs']['ibot'] = run_summary(runner, timer, 0,
                                                 args.ibot_iters)
            result['gmm_state']['ibot'] = gmm_health(runner)

        train(build_cfg(args, 'ibot', osp.join(args.work_dir, 'ibot'),
                        args.ibot_iters), collect)

    def em() -> None:
        result['em'] = em_check(args)

    def distributed() -> None:
        result['distributed'] = dist_check(args, argv)

    for fn in (joint, decoupled, resume, ibot, em, distributed):
        stage(fn.__name__, fn)
    runs = result['runs']
    if 'joint' in runs and 'decoupled' in runs:
        result['iter_ratio_decoupled_over_joint'] = \
            runs['decoupled']['median_iter_s'] / runs['joint']['median_iter_s']
    result['elapsed_s'] = time.perf_counter() - start
    result['targets'] = targets(result)
    result['passed'] = not result['errors'] and all(
        c['passed'] for c in result['targets'].values() if c['counts'])
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(result, f, indent=1)
    print_summary(result)
    print(f'[gpu_check] {"PASSED" if result["passed"] else "FAILED"}; '
          f'wrote {args.out}')
    return 0 if result['passed'] else 1


if __name__ == '__main__':
    sys.exit(main())
