"""Random batches shaped like a config's data, for tests and benchmarks."""
import torch
from mmengine.config import Config
from mmpretrain.structures import DataSample


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
