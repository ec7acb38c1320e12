"""Checks of the mixture's options and inputs, written once for the core
and the strategies: numbers in intervals, schedule points, config keys (an
unknown key names the config path, the closest accepted key and all of
them; a renamed one says what replaced it) and the batches given to it."""
import difflib
import math
import warnings
from typing import Dict, Iterable, Optional, Union

import torch
from torch import Tensor


def check_int(name: str, value: int, minimum: Optional[int]) -> None:
    """``value`` is an int (not a bool), at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f'{name} must be an int, got {value!r}')
    if minimum is not None and value < minimum:
        raise ValueError(f'{name} must be >= {minimum}, got {value}')


def check_number(name: str, value: float, low: float, high: float,
                 interval: str, low_open: bool = False,
                 high_open: bool = False) -> None:
    """``value`` is a real number in the interval (open ends as given)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) \
        and not math.isnan(value)
    if ok:
        ok = (value > low if low_open else value >= low) and \
            (value < high if high_open else value <= high)
    if not ok:
        raise ValueError(f'{name} must be a number in {interval}, '
                         f'got {value!r}')


def check_schedule(name: str, value: Union[int, float]) -> Union[int, float]:
    """A schedule point: an int >= 0 (updates) or a float in (0, 1] (a
    fraction of training)."""
    if isinstance(value, float):
        if not 0.0 < value <= 1.0:
            raise ValueError(
                f'{name} must be an int >= 0 (updates) or a float in (0, 1] '
                f'(a fraction of the training), got {value!r}')
        return value
    check_int(name, value, 0)
    return value


def updates_of(value: Union[int, float],
               total: Optional[int]) -> Optional[int]:
    """Updates of a schedule point: an int as is, a fraction of ``total``
    rounded (None while ``total`` is unknown)."""
    if isinstance(value, int):
        return value
    return None if total is None else round(value * total)


def describe(value: Union[int, float], resolved: Optional[int]) -> str:
    """A schedule point for ``repr``: ``'500'`` or ``'0.1 of training =
    150'``."""
    if isinstance(value, int):
        return str(value)
    return f'{value:g} of training' + (
        '' if resolved is None else f' = {resolved}')


def check_keys(options: Iterable[str], accepted: Iterable[str], what: str,
               where: str, renamed: Optional[Dict[str, str]] = None) -> None:
    """Raise on the first key of ``options`` not in ``accepted``.

    The message names the config path ``where``, ``what`` takes the
    options, the replacement of a renamed key (``renamed``: key ->
    description) or the closest accepted key, and every accepted key.

    Raises:
        ValueError: On an unknown key.
    """
    accepted = list(accepted)
    renamed = renamed or {}
    for key in options:
        if key in accepted:
            continue
        if key in renamed:
            hint = f'it was replaced by {renamed[key]}'
        else:
            close = difflib.get_close_matches(str(key), accepted, n=1)
            hint = f'did you mean {close[0]!r}?' if close else \
                f'it is not an option of the {what}'
        raise ValueError(f'{where}: unknown {what} option {key!r} ({hint}). '
                         f'Accepted: {", ".join(accepted)}')


def flat_maintenance(flat: dict, accepted: Iterable[str],
                     where: Optional[str] = None) -> dict:
    """Maintenance keys given flat (``reseed_rate=...``) as the group's,
    each with a ``FutureWarning`` naming the grouped key (under the config
    path ``where`` when given); other keys raise ``TypeError`` as an
    unknown keyword does."""
    for key in flat:
        if key not in accepted:
            raise TypeError('OnlineGaussianMixture got an unexpected '
                            f'keyword argument {key!r}')
        given, grouped = (f'{where}.{key}', f'{where}.maintenance.{key}') \
            if where else (f'OnlineGaussianMixture({key}=...)',
                           f'maintenance=dict({key}=...)')
        warnings.warn(f'{given} is deprecated: give {grouped}',
                      FutureWarning, stacklevel=3)
    return flat


def check_rows(x: Tensor, dim: int, device: torch.device) -> Tensor:
    """A batch ``(N, dim)`` for the mixture, checked before any state
    changes (a tensor, the shape, ``N >= 1``, real, finite, no all-zero
    row: each error names the cause), as unit-norm fp32 rows on
    ``device``. ``O(N D)``."""
    if not isinstance(x, Tensor):
        raise TypeError(f'x must be a Tensor, got {type(x).__name__}')
    if x.dim() != 2 or x.shape[1] != dim:
        raise ValueError(f'x must have shape (N, {dim}) = (N, dim), '
                         f'got {tuple(x.shape)}')
    if x.shape[0] == 0:
        raise ValueError(
            f'x is empty (shape {tuple(x.shape)}); need N >= 1 rows')
    if x.is_complex():
        raise ValueError(f'x must be real, got dtype {x.dtype}')
    x = x.detach().to(device=device, dtype=torch.float32)
    # One reduction in the common case; count only if the sum is bad.
    if not bool(torch.isfinite(x.sum())):
        bad = int((~torch.isfinite(x)).sum())
        if bad:
            raise ValueError(
                f'x of shape {tuple(x.shape)} contains {bad} non-finite '
                'values (NaN/Inf); the GMM state was not changed')
    norm = torch.linalg.vector_norm(x, dim=1)
    if not bool((norm > 0).all()):
        zero = torch.nonzero(norm == 0).squeeze(1)
        raise ValueError(
            f'x has {zero.numel()} all-zero rows (first: '
            f'{zero[:5].tolist()}): a zero embedding has no direction '
            'on the sphere. Check what feeds the mixture (a dead '
            'projection head, rows padded with zeros); the GMM state '
            'was not changed')
    return x / norm.unsqueeze(1)


def check_mixture_options(num_components: int, dim: int, seed: int,
                          forgetting: float, beta_start: float,
                          beta_schedule: str, min_var: float,
                          init_noise: float, init_samples: Optional[int],
                          prior_count: float) -> None:
    """The mixture's own arguments (each error names the argument, the
    accepted values and the value given)."""
    check_int('num_components', num_components, 1)
    check_int('dim', dim, 1)
    check_int('seed', seed, None)
    if init_samples is not None:
        check_int('init_samples', init_samples, 1)
    check_number('forgetting', forgetting, 0.0, 1.0, '(0, 1)', True, True)
    check_number('beta_start', beta_start, 0.0, 1.0, '(0, 1]', True)
    if beta_schedule not in ('cosine', 'linear'):
        raise ValueError("beta_schedule must be one of ('cosine', "
                         f"'linear'), got {beta_schedule!r}")
    check_number('min_var', min_var, 0.0, math.inf, '(0, inf)', True, True)
    check_number('init_noise', init_noise, 0.0, math.inf, '[0, inf)',
                 high_open=True)
    check_number('prior_count', prior_count, 0.0, math.inf, '(0, inf)',
                 True, True)


def require_resolved(unresolved: Dict[str, object]) -> None:
    """Raise if schedule points given as fractions of training
    (``{option: value}``) wait for the training length."""
    if unresolved:
        given = ', '.join(f'{k}={v}' for k, v in unresolved.items())
        raise ValueError(
            f'{given}: a fraction of the training length, which is not '
            'known yet. Train with OnlineEMHook (it resolves the '
            'fraction from the runner\'s max_iters), call '
            'set_training_length(total_updates) first, or give a number '
            'of updates (an int)')


def warn_if_identical(x: Tensor) -> bool:
    """Warn (and return True) when all rows of ``x`` ``(N, D)``, ``N > 1``,
    are identical: the embeddings have likely collapsed. ``O(N D)``."""
    if x.shape[0] < 2 or not bool((x == x[:1]).all()):
        return False
    warnings.warn(
        f'all {x.shape[0]} rows given to the Gaussian mixture are '
        'identical: the embeddings have likely collapsed to a '
        'constant (or one image is repeated); EM learns nothing '
        'from such a batch', stacklevel=4)
    return True
