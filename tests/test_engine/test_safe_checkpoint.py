"""SafeCheckpointHook: what mmengine's Runner saves becomes readable by
torch.load(weights_only=True) (torch >= 2.6's default), and a runner that
loads it gets its message hub back as it was."""
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub

from gmproto_mm.engine import (SafeCheckpointHook, restore_history_buffers,
                               to_weights_only)


def runner_checkpoint() -> dict:
    """A checkpoint as mmengine 0.10's Runner.save_checkpoint builds it."""
    hub = MessageHub('safe_checkpoint_test')
    for value in (3.0, 1.5, 2.25):
        hub.update_scalar('train/loss', value)
    hub.update_scalar('train/lr', 0.1)
    hub.update_info('eta', np.float64(12.5))  # LoggerHook stores numpy
    hub.update_info('iter', 3)
    meta = dict(epoch=1, iter=3, cfg='x = 1', seed=0,
                dataset_meta=dict(classes=('a', 'b'),
                                  class_counts=np.array([600, 6])))
    return dict(meta=meta, state_dict={'w': torch.arange(3.)},
                message_hub=hub.state_dict(),
                optimizer=dict(state={}, param_groups=[dict(lr=0.1)]))


def save_and_safe_load(checkpoint: dict, path) -> dict:
    torch.save(checkpoint, path)
    return torch.load(path, weights_only=True)


def test_saved_checkpoint_loads_safely_and_restores_the_message_hub(
        tmp_path):
    checkpoint = runner_checkpoint()
    with pytest.raises(pickle.UnpicklingError, match='Unsupported global'):
        save_and_safe_load(checkpoint, tmp_path / 'plain.pth')

    SafeCheckpointHook().before_save_checkpoint(None, checkpoint)
    loaded = save_and_safe_load(checkpoint, tmp_path / 'safe.pth')
    stored = loaded['message_hub']['log_scalars']['train/loss']
    assert stored['log_history'].tolist() == [3.0, 1.5, 2.25]
    assert loaded['message_hub']['runtime_info']['eta'] == 12.5
    assert loaded['meta']['dataset_meta']['class_counts'].tolist() == [600, 6]
    assert torch.equal(loaded['state_dict']['w'], torch.arange(3.))

    SafeCheckpointHook().after_load_checkpoint(None, loaded)
    hub = MessageHub('safe_checkpoint_resumed')
    hub.load_state_dict(loaded['message_hub'])  # what Runner.resume does
    loss = hub.get_scalar('train/loss')
    assert isinstance(loss, HistoryBuffer)
    original = runner_checkpoint()['message_hub']['log_scalars']['train/loss']
    for got, want in zip(loss.data, original.data):
        np.testing.assert_array_equal(got, want)
        assert got.dtype == want.dtype
    assert loss.mean() == original.mean()
    loss.update(4.0)  # and it goes on logging
    assert loss.current() == 4.0
    assert hub.get_info('iter') == 3


def test_values_without_a_safe_form_are_named():
    class Opaque:
        pass

    checkpoint = dict(meta=dict(extra=[1, Opaque()]), state_dict={})
    converted, unsafe = to_weights_only(checkpoint)
    assert unsafe == ['meta.extra[1] (Opaque)']
    assert converted['meta']['extra'][0] == 1


def test_a_checkpoint_without_stored_buffers_is_left_alone():
    checkpoint = runner_checkpoint()  # e.g. written before the hook
    buffers = dict(checkpoint['message_hub']['log_scalars'])
    restore_history_buffers(checkpoint)
    assert checkpoint['message_hub']['log_scalars'] == buffers
    weights_only = dict(state_dict={'w': torch.zeros(1)})
    restore_history_buffers(weights_only)
    assert set(weights_only) == {'state_dict'}
