"""What the research tools of ``tools/analysis/`` (and ``tools/demo.py``)
share, importable instead of one script loading another by path. The
scripts keep their command lines and their own reports; the pieces that
more than one of them needs live here, one small module per subject:

* :mod:`.checkpoint_cli` -- command line, model loading and JSON report
  of the tools that read one checkpoint (``component_usage.py``,
  ``target_spread.py``);
* :mod:`.demo_protocol` -- the demo's train-then-evaluate protocol
  through ``tools/train.py`` and ``tools/test.py``, and the training log
  it reads (``tools/demo.py``, ``seed_study.py``);
* :mod:`.em_cost` -- cost of the online-EM update against the logits
  matmul, and its peak memory (``benchmark_em.py``, ``benchmark.py``,
  ``gpu_check.py``);
* :mod:`.embeddings` -- a model's embeddings of a data set: the global
  views by student and teacher, or the prediction network's
  (``frozen_encoder_collapse.py``, ``component_usage.py``,
  ``target_spread.py``).

``tools/train.py``'s command line, which ``gpu_check.py`` also uses, is in
:mod:`gmproto_mm.apis`. ``import gmproto_mm`` does not import this package
(it registers nothing).
"""
from .checkpoint_cli import checkpoint_parser, load_model, report
from .demo_protocol import (REPO_ROOT, evaluate_checkpoint, iteration_times,
                            run_step, train_and_evaluate, training_records)
from .em_cost import (DEFAULT_OPTIONS, VARIANTS, crowded_bank_update,
                      first_step_after_pooling, measure_em_ratio,
                      monitor_wait, peak_rise_mb, scale_test, scratch_mb)
from .embeddings import embed_views, prediction_embeddings

__all__ = [
    'DEFAULT_OPTIONS', 'REPO_ROOT', 'VARIANTS', 'checkpoint_parser',
    'crowded_bank_update', 'embed_views', 'evaluate_checkpoint',
    'first_step_after_pooling', 'iteration_times', 'load_model',
    'measure_em_ratio', 'monitor_wait',
    'peak_rise_mb', 'prediction_embeddings', 'report', 'run_step',
    'scale_test', 'scratch_mb', 'train_and_evaluate', 'training_records'
]
