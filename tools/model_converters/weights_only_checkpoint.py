"""Rewrite a training checkpoint so that torch's safe loader reads it.

    python tools/model_converters/weights_only_checkpoint.py \\
        work_dirs/dino-gmm_vit-tiny-p8_1xb64-3e_fmnist/epoch_3.pth epoch_3_safe.pth

For checkpoints written before ``SafeCheckpointHook`` was in our runtime
(or by a config without it): under torch >= 2.6 mmpretrain's
``get_model(cfg, pretrained=ckpt)``, ``tools/test.py`` and
``tools/train.py --resume`` refuse them (``Unsupported global: ...
HistoryBuffer``). The output holds the same weights, optimizer and
scheduler states, with the message hub stored as that hook stores it
(:func:`gmproto_mm.engine.to_weights_only`); a runner with the hook
restores it on ``--resume``. Read ``src`` only if you trust it: it is
unpickled in full.
"""
import argparse

from mmengine.runner.checkpoint import CheckpointLoader, save_checkpoint

from gmproto_mm.compat import use_full_checkpoint_loader
from gmproto_mm.engine import to_weights_only


def convert(src: str, dst: str) -> dict:
    """Write ``src`` to ``dst`` in the form ``torch.load(weights_only=True)``
    reads.

    Args:
        src (str): A checkpoint mmengine's ``Runner`` wrote.
        dst (str): Output ``.pth`` path (folders are created).

    Returns:
        dict: The saved checkpoint.

    Raises:
        ValueError: If a value of ``src`` has no safe form; the message
            names its key.
    """
    checkpoint = CheckpointLoader.load_checkpoint(src, map_location='cpu')
    out, unsafe = to_weights_only(checkpoint)
    if unsafe:
        raise ValueError(
            f'{src!r} holds values torch.load(weights_only=True) refuses and '
            f'that have no tensor form: {unsafe}. Drop them from the '
            'checkpoint, or load it with '
            'gmproto_mm.compat.use_full_checkpoint_loader()')
    save_checkpoint(out, dst)  # mmengine's: creates the folders
    return out


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument('src', help='training checkpoint (epoch_N.pth)')
    parser.add_argument('dst', help='output checkpoint (.pth)')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    use_full_checkpoint_loader()  # src is unpickled in full, as trusted
    convert(args.src, args.dst)
    print(f'{args.src} -> {args.dst}: readable by '
          'torch.load(weights_only=True)')


if __name__ == '__main__':
    main()
