"""What the research tools of ``tools/analysis/`` (and ``tools/demo.py``)
share, importable instead of one script loading another by path. The
scripts keep their command lines and their own reports; the pieces that
more than one of them needs live here, one small module per subject:

* :mod:`.demo_protocol` -- the demo's train-then-evaluate protocol
  through ``tools/train.py`` and ``tools/test.py``, and the training log
  it reads (``tools/demo.py``, ``seed_study.py``);
* :mod:`.em_cost` -- cost of the online-EM update against the logits
  matmul, and its peak memory (``benchmark_em.py``, ``benchmark.py``,
  ``gpu_check.py``).

``tools/train.py``'s command line, which ``gpu_check.py`` also uses, is in
:mod:`gmproto_mm.apis`. ``import gmproto_mm`` does not import this package
(it registers nothing).
"""
from .demo_protocol import (REPO_ROOT, evaluate_checkpoint, iteration_times,
                            run_step, train_and_evaluate, training_records)
from .em_cost import (DEFAULT_OPTIONS, VARIANTS, first_step_after_pooling,
                      measure_em_ratio, monitor_seconds, peak_rise_mb,
                      scale_test, scratch_mb)

__all__ = [
    'DEFAULT_OPTIONS', 'REPO_ROOT', 'VARIANTS', 'evaluate_checkpoint',
    'first_step_after_pooling', 'iteration_times', 'measure_em_ratio',
    'monitor_seconds', 'peak_rise_mb', 'run_step', 'scale_test',
    'scratch_mb', 'train_and_evaluate', 'training_records'
]
