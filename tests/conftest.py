"""Fixtures shared by several test modules."""

from __future__ import annotations

import socket

import pytest
import torch


@pytest.fixture
def no_network(monkeypatch):
    """Any socket connection or DNS look-up fails and is recorded (the list of attempts is returned)."""
    attempts: list = []

    def refuse(*args, **kwargs):
        attempts.append(args[1:] if args and isinstance(args[0], socket.socket) else args)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


@pytest.fixture(scope="module")
def one_thread():
    """Toy models gain nothing from threads, and two threads on a busy 2-core machine run ~10x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def srf_init(tmp_path_factory):
    """A toy RVE-Sim train split and a toy SFT checkpoint trained on it, shared by the self-reflective
    trainer's tests (test_monitor.py, test_srf_reward.py): ``(train folder, checkpoint folder)``."""
    from revise.sim import generate_dataset
    from revise.train.sft import train_sft
    from toymodel import toy_config

    root = tmp_path_factory.mktemp("srf-init")
    data = root / "train"
    generate_dataset(data, per_dimension=1, seed=4, split="train", size=32, frames=16)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train_sft(data, root / "init", toy_config(vlm_steps=30, gen_steps=20, checkpoint_every=100), progress=False)
    finally:
        torch.set_num_threads(before)
    return data, root / "init"
