"""Tests of carpay/settings.py: what the settings mean when they are left unset."""

from __future__ import annotations

import pytest

from carpay.settings import REMOTE_CONFIRMATIONS, Settings


def test_blocks_are_final_at_once_on_the_embedded_node_and_after_12_elsewhere(tmp_path):
    assert Settings(data_dir=tmp_path).final_after == 0
    remote = Settings(data_dir=tmp_path, rpc_url="http://127.0.0.1:9")
    assert remote.final_after == REMOTE_CONFIRMATIONS == 12
    qbft = Settings(data_dir=tmp_path, rpc_url="http://127.0.0.1:9", confirmations=0)
    assert qbft.final_after == 0


def test_confirmations_come_from_the_environment_and_are_never_negative(tmp_path, monkeypatch):
    monkeypatch.setenv("CARPAY_CONFIRMATIONS", "3")
    assert Settings(data_dir=tmp_path).final_after == 3
    monkeypatch.setenv("CARPAY_CONFIRMATIONS", "-1")
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        Settings(data_dir=tmp_path)
