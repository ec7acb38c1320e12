"""Random batches and data sets shaped like a config's data, for tests,
benchmarks and ``tools/analysis/gpu_check.py``."""
from typing import List, Sequence

import torch
from mmengine.config import Config
from mmpretrain.registry import DATASETS
from mmpretrain.structures import DataSample
from torch.utils.data import Dataset

from .models.mixture.maintenance import UNCHECKED


def random_batch(cfg: Config, batch_size: int = 2,
                 local_scale: int = 4) -> dict:
    """A batch in the layout the config's model expects.

    Self-supervised configs get ``num_crops = [global, local]`` views (from
    the config, default ``[2, 1]``): global views at the backbone's
    ``img_size``, local views ``local_scale`` times smaller. Classifier
    configs get one image per sample with a label.

    Args:
        cfg (Config): A full config with ``model.backbone``.
        batch_size (int): Images per view. Defaults to 2.
        local_scale (int): Global / local side ratio. Defaults to 4.

    Returns:
        dict: ``dict(inputs=..., data_samples=...)`` in the 0-255 range.
    """
    backbone = cfg.model.backbone
    channels = backbone.get('in_channels', 3)
    size = backbone.get('img_size', 224)
    if cfg.model.type == 'ImageClassifier':
        samples = [DataSample().set_gt_label(i % 2) for i in range(batch_size)]
        return dict(
            inputs=torch.rand(batch_size, channels, size, size) * 255,
            data_samples=samples)
    num_global, num_local = cfg.get('num_crops', [2, 1])
    local = max(size // local_scale, 1)
    views = [torch.rand(batch_size, channels, size, size) * 255
             for _ in range(num_global)]
    views += [torch.rand(batch_size, channels, local, local) * 255
              for _ in range(num_local)]
    return dict(inputs=views,
                data_samples=[DataSample() for _ in range(batch_size)])


def crop_sizes(pipeline: Sequence[dict]) -> List[int]:
    """Side of every view a ``MultiView`` pipeline makes, in view order.

    Each view group's size is the ``scale`` of its first ``*ResizedCrop``
    transform, repeated ``num_views`` times, e.g. DINO ViT-B's
    ``[224, 224, 96 x 10]``.

    Args:
        pipeline (Sequence[dict]): A training pipeline (config dicts).

    Returns:
        List[int]: One side length per view.

    Raises:
        ValueError: If the pipeline has no ``MultiView`` transform, or a
            view group has no square ``*ResizedCrop``.
    """
    multi = [t for t in pipeline if t.get('type') == 'MultiView']
    if not multi:
        raise ValueError('the pipeline has no MultiView transform: a '
                         'multi-crop layout needs one (see the DINO configs)')
    counts = multi[0]['num_views']
    groups = multi[0]['transforms']
    if isinstance(counts, int):
        counts = [counts] * len(groups)
    sizes = []
    for count, group in zip(counts, groups):
        crops = [t for t in group if 'ResizedCrop' in str(t.get('type'))]
        side = crops[0].get('scale') if crops else None
        if isinstance(side, (tuple, list)) and len(set(side)) == 1:
            side = side[0]
        if not isinstance(side, int):
            raise ValueError('every MultiView group needs a square '
                             'RandomResizedCrop to size its views; got '
                             f'{group}')
        sizes += [side] * count
    return sizes


@DATASETS.register_module()
class RandomMultiCropDataset(Dataset):
    """Random uint8 images in a multi-crop layout, for Runner-driven checks
    and benchmarks without a data set (e.g. ``tools/analysis/gpu_check.py``).

    Item ``i`` is the same on every call and every process (its generator is
    seeded with ``seed`` and ``i``), so runs, resumes and ranks see
    reproducible batches. Items are what ``MultiView`` + ``PackInputs``
    give: ``dict(inputs=[(C, s, s) per view], data_samples=DataSample())``.

    Args:
        crop_sizes (Sequence[int]): Side of every view (see
            :func:`crop_sizes`).
        channels (int): Image channels. Defaults to 3.
        length (int): Number of items. Defaults to 64.
        seed (int): Seed of the images. Defaults to 0.
    """

    def __init__(self,
                 crop_sizes: Sequence[int],
                 channels: int = 3,
                 length: int = 64,
                 seed: int = 0) -> None:
        if not crop_sizes or min(crop_sizes) < 1 or channels < 1 or \
                length < 1:
            raise ValueError('crop_sizes must be a non-empty list of sides '
                             '>= 1, channels and length >= 1; got '
                             f'{crop_sizes}, {channels}, {length}')
        self.crop_sizes = [int(s) for s in crop_sizes]
        self.channels = channels
        self.length = length
        self.seed = seed
        self.metainfo = dict(synthetic=True)  # what the Runner's loops read

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, idx: int) -> dict:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + idx)
        views = [
            torch.randint(0, 256, (self.channels, s, s), generator=gen,
                          dtype=torch.uint8) for s in self.crop_sizes
        ]
        return dict(inputs=views, data_samples=DataSample())


def drifting_clusters(num_clusters: int, dim: int, rows: int, updates: int,
                      spread: float = 0.03, drift: float = 0.002,
                      cap: float = 0.5, seed: int = 0):
    """A stream of clustered unit vectors whose centres drift slowly: a
    stand-in for the teacher embeddings of a large data set.

    The centres lie in a cap of the sphere (a random pole plus Gaussian
    noise of expected norm ``cap``, renormalised), as embeddings do, so
    means spread uniformly over the sphere start far from all of them. Each
    batch draws ``rows`` points around uniformly chosen centres (Gaussian
    noise of expected norm ``spread``, renormalised); after each
    batch every centre moves by ``drift`` along a fixed random tangent
    direction (and is renormalised).

    Args:
        num_clusters (int): Centres ``C``.
        dim (int): ``D``.
        rows (int): Rows per batch ``N``.
        updates (int): Batches.
        spread (float): Expected distance of a point from its centre.
            Defaults to 0.03 (a cluster fits in the paper's eps = 0.1).
        drift (float): Distance a centre moves per batch. Defaults to 0.002.
        cap (float): Spread of the centres around their pole. Defaults to
            0.5.
        seed (int): Seed. Defaults to 0.

    Yields:
        Tuple[Tensor, Tensor]: The batch ``(N, D)`` and the centres
        ``(C, D)`` it was drawn around.
    """
    gen = torch.Generator().manual_seed(seed)
    normalize = torch.nn.functional.normalize
    pole = normalize(torch.randn(dim, generator=gen), dim=0)
    centres = normalize(pole + torch.randn(num_clusters, dim, generator=gen)
                        * (cap / dim**0.5), dim=1)
    tangent = torch.randn(num_clusters, dim, generator=gen)
    tangent = normalize(
        tangent - (tangent * centres).sum(1, keepdim=True) * centres, dim=1)
    for _ in range(updates):
        idx = torch.randint(num_clusters, (rows, ), generator=gen)
        noise = torch.randn(rows, dim, generator=gen) * (spread / dim**0.5)
        yield normalize(centres[idx] + noise, dim=1), centres
        centres = normalize(centres + drift * tangent, dim=1)


def stream_scale_check(gmm, num_clusters: int, rows: int, updates: int,
                       probe_every: int = 10, seed: int = 0) -> dict:
    """Fit ``gmm`` to :func:`drifting_clusters` and record what the scale
    test asserts: when the used components first reach the number of
    clusters (a component is used when it is the posterior argmax of some
    probe row: 4 rows per cluster, drawn around the current centres), and
    the largest per-update re-seed and merge counts.

    Returns:
        dict: ``rows_to_cover`` (rows seen when used >= clusters, None if
        never), ``used`` (at the end), ``max_reseeded``, ``max_merged``,
        ``updates``, ``rows``.
    """
    gen = torch.Generator().manual_seed(seed + 1)
    normalize = torch.nn.functional.normalize
    dim = gmm.dim
    stats = dict(rows_to_cover=None, used=0, max_reseeded=0.0,
                 max_merged=0.0, updates=updates, rows=rows)
    stream = drifting_clusters(num_clusters, dim, rows, updates, seed=seed)
    for t, (x, centres) in enumerate(stream, 1):
        out = gmm.update(x.to(gmm.mu.device))
        stats['max_reseeded'] = max(stats['max_reseeded'],
                                    out.get('reseeded', 0.0))
        stats['max_merged'] = max(stats['max_merged'], out.get('merged', 0.0))
        if t % probe_every and t != updates:
            continue
        probe = centres.repeat(4, 1)
        probe = normalize(probe + torch.randn(probe.shape, generator=gen) *
                          (0.03 / dim**0.5), dim=1).to(gmm.mu.device)
        used = int(gmm.log_prob(probe).argmax(dim=1).unique().numel())
        stats['used'] = used
        if used >= num_clusters and stats['rows_to_cover'] is None:
            stats['rows_to_cover'] = t * rows
    return stats


def near_directions(directions: torch.Tensor, rows: int, spread: float,
                    gen: torch.Generator) -> torch.Tensor:
    """``(rows, D)`` unit vectors, each within ~``spread`` (Euclidean) of
    one of ``directions`` ``(C, D)``, drawn at random."""
    pick = torch.randint(directions.shape[0], (rows, ), generator=gen)
    dim = directions.shape[1]
    noise = torch.randn(rows, dim, generator=gen) * (spread / dim**0.5)
    return torch.nn.functional.normalize(directions[pick] + noise, dim=1)


def crowd_bank(gmm, directions: torch.Tensor, spread: float,
               gen: torch.Generator) -> None:
    """Put every mean of ``gmm`` within ~``spread`` of one of
    ``directions`` (a collapsed start: crowded early embeddings sampled as
    means), with statistics of 3 rows each and variance 1e-3, consistent
    with the means, none of them checked by merging yet (new means)."""
    mu = near_directions(directions, gmm.mu.shape[0], spread,
                         gen).to(gmm.mu.device)
    gmm.mu.copy_(mu)
    gmm.var.fill_(1e-3)
    gmm.acc_count.fill_(3.0)
    torch.mul(mu, 3.0, out=gmm.acc_sum)
    torch.addcmul(gmm.var, mu, mu, out=gmm.acc_sq_sum).mul_(3.0)
    gmm.renormalise_weights()
    gmm.merge_slack.fill_(UNCHECKED)
