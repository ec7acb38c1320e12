"""Wall time of every training iteration and the run's peak memory, as a
hook (``tools/analysis/gpu_check.py``, the rehearsal's record hook)."""
import resource
import time
from typing import List, Optional

import torch
from mmengine.hooks import Hook


class StepTimer(Hook):
    """Synchronised wall time of every train iteration (with the EM update
    of ``OnlineEMHook``, NORMAL priority; before ``CheckpointHook``) and
    the run's peak memory: CUDA's peak allocated bytes on a GPU, the
    process's peak resident set on the CPU (:meth:`peak_memory_mb`)."""

    priority = 'LOW'

    def __init__(self) -> None:
        self.times: List[float] = []
        self.peak_bytes: Optional[int] = None
        self.start_bytes: Optional[int] = None
        self._start = 0.0

    @staticmethod
    def _sync() -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    def before_train(self, runner) -> None:
        self.times = []
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
            self.start_bytes = torch.cuda.memory_allocated()

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        self._sync()
        self._start = time.perf_counter()

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        self._sync()
        self.times.append(time.perf_counter() - self._start)

    def after_train(self, runner) -> None:
        if torch.cuda.is_available():
            self.peak_bytes = torch.cuda.max_memory_allocated()

    def peak_memory_mb(self) -> tuple:
        """``(MB, what)``: the CUDA peak of the run, else the process's
        peak resident memory (``ru_maxrss``, kilobytes on Linux)."""
        if self.peak_bytes is not None:
            return self.peak_bytes / 2**20, 'cuda_max_allocated'
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return rss / 1024, 'process_peak_resident'
