"""Checks of the mixture's options, written once for the core and the
strategies: numbers in intervals, schedule points, and config keys (an
unknown key names the config path, the closest accepted key and all of
them; a renamed one says what replaced it)."""
import difflib
import math
from typing import Dict, Iterable, Optional, Union


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
