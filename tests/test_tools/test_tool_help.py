"""Every argument of the command-line tools has a help text."""
import argparse
import glob
import os.path as osp

import pytest
import torch

from tests.conftest import REPO_ROOT, load_tool

TOOLS = sorted(
    osp.relpath(p, REPO_ROOT)
    for pattern in ('tools/*.py', 'tools/analysis/*.py',
                    'tools/model_converters/*.py')
    for p in glob.glob(osp.join(REPO_ROOT, pattern)))


class _Captured(Exception):
    """Raised instead of parsing: carries the parser."""

    def __init__(self, parser):
        super().__init__()
        self.parser = parser


def tool_parser(path: str, monkeypatch) -> argparse.ArgumentParser:
    """The parser the tool builds, captured when it starts parsing (tools
    are scripts, not a package: imported by path)."""
    def capture(self, *args, **kwargs):
        raise _Captured(self)

    try:
        module = load_tool(path)
    finally:
        torch.set_flush_denormal(False)  # train.py / test.py set it
    monkeypatch.setattr(argparse.ArgumentParser, 'parse_args', capture)
    monkeypatch.setattr(argparse.ArgumentParser, 'parse_known_args', capture)
    entry = getattr(module, 'parse_args', None) or module.main
    with pytest.raises(_Captured) as captured:
        entry()
    return captured.value.parser


def test_every_tool_is_found():
    for name in ('tools/train.py', 'tools/test.py', 'tools/demo.py',
                 'tools/analysis/seed_study.py',
                 'tools/model_converters/export_backbone.py'):
        assert name in TOOLS


@pytest.mark.parametrize('path', TOOLS)
def test_every_argument_has_help(path, monkeypatch):
    parser = tool_parser(path, monkeypatch)
    missing = [
        '/'.join(action.option_strings) or action.dest
        for action in parser._actions
        if not isinstance(action, argparse._HelpAction) and
        not (action.help or '').strip()]
    assert not missing, f'{path}: no help for {missing}'
    assert parser.format_help()  # --help renders (no stray % in a help)
