"""What the research tools of ``tools/analysis/`` (and ``tools/demo.py``)
share, importable instead of one script loading another by path. The
scripts keep their command lines and their own reports; the pieces that
more than one of them needs live here, one small module per subject:

* :mod:`.em_cost` -- cost of the online-EM update against the logits
  matmul, and its peak memory (``benchmark_em.py``, ``benchmark.py``,
  ``gpu_check.py``).

``tools/train.py``'s command line, which ``gpu_check.py`` also uses, is in
:mod:`gmproto_mm.apis`. ``import gmproto_mm`` does not import this package
(it registers nothing).
"""
from .em_cost import (DEFAULT_OPTIONS, VARIANTS, first_step_after_pooling,
                      measure_em_ratio, monitor_seconds, peak_rise_mb,
                      scale_test, scratch_mb)

__all__ = [
    'DEFAULT_OPTIONS', 'VARIANTS', 'first_step_after_pooling',
    'measure_em_ratio', 'monitor_seconds', 'peak_rise_mb', 'scale_test',
    'scratch_mb'
]
