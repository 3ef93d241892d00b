"""A few real training steps on a tiny SQuAD slice: loss falls, runs are seeded, resume works."""

from __future__ import annotations

from pathlib import Path

import torch

from rag.reading.train import TrainConfig, train
from tests.unit.test_reading import squad_file

# 10 articles x 3 questions: 2 held out for val, 2 for calib; 18 windows, 3 steps an epoch.
CFG = TrainConfig(epochs=4, batch_size=6, lr=1e-4, warmup=0.1, max_len=64, holdout=2)


def test_a_few_steps_lower_the_loss_and_are_reproducible(tmp_path: Path) -> None:
    data = squad_file(tmp_path).parent
    report = train(data, tmp_path / "a", CFG, checkpoint_every=100, log=lambda _m: None)
    assert report["steps"] == 12
    assert report["loss_end"] < 0.8 * report["loss_start"]
    first = torch.load(tmp_path / "a" / "weights.pt")
    train(data, tmp_path / "b", CFG, checkpoint_every=100, log=lambda _m: None)
    second = torch.load(tmp_path / "b" / "weights.pt")
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_a_finished_run_resumes_from_its_checkpoint_without_training_again(
    tmp_path: Path,
) -> None:
    data = squad_file(tmp_path).parent
    log: list[str] = []
    train(data, tmp_path / "r", CFG, checkpoint_every=5, log=log.append)
    assert (tmp_path / "r" / "checkpoint.pt").is_file()
    again = train(data, tmp_path / "r", CFG, checkpoint_every=5, log=log.append)
    assert again["steps"] == 12 and any("resumed at step 12" in m for m in log)
