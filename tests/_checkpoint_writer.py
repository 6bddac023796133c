"""Child process of the checkpoint kill test (a helper script, not a test module).

Starting a fresh Python with numpy for each of 200+ kills would take most of
the test's time, so this process imports once and forks one writer per kill.
It talks line by line on stdin/stdout:

    (startup)              -> "ready <seconds one save took>"
    "spawn <first_epoch>"  -> "pid <pid>"   a forked child now saves epochs
                                            first_epoch, first_epoch + 1, ... forever
    "reap <pid>"           -> "exit <code>" after the parent has killed the child
                                            (-9 means SIGKILL, as expected)
    "quit"                 -> exits

Usage: python tests/_checkpoint_writer.py ROOT KEY_DIR
Checkpoint of epoch e: params W1 = arange(N) + e (float32, 2 MB), b1,
optimizer W1.m = -W1 (2 MB), val_accuracy = ((e * 7919) % 10000) / 10000.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

from hpsearch.checkpoints import Checkpoint, FileSystemCheckpointStorage, checkpoint_name

STAGE = 1
TRIAL = 42
WEIGHT_SHAPE = (500, 1000)


def accuracy_of(epoch: int) -> float:
    return ((epoch * 7919) % 10000) / 10000


def make_checkpoint(base: np.ndarray, epoch: int) -> Checkpoint:
    weights = base + np.float32(epoch)
    return Checkpoint(
        params={"W1": weights, "b1": np.full(WEIGHT_SHAPE[1], epoch, dtype=np.float32)},
        optimizer={"W1": {"m": -weights, "t": epoch, "learning_rate": 1e-3}, "b1": {}},
        epoch=epoch,
        metrics={"val_accuracy": accuracy_of(epoch)},
        extra={"trial_id": TRIAL, "stage": STAGE},
    )


def save_epoch(storage: FileSystemCheckpointStorage, key_dir: str, base: np.ndarray, epoch: int):
    name = checkpoint_name(accuracy_of(epoch), STAGE, TRIAL, epoch)
    storage.save(key_dir, name, make_checkpoint(base, epoch))


def write_forever(storage: FileSystemCheckpointStorage, key_dir: str, base, epoch: int) -> None:
    try:
        while True:
            save_epoch(storage, key_dir, base, epoch)
            epoch += 1
    finally:
        os._exit(3)  # only reached on an error: the parent expects death by SIGKILL


def main() -> None:
    storage = FileSystemCheckpointStorage(Path(sys.argv[1]))
    key_dir = sys.argv[2]
    base = np.arange(np.prod(WEIGHT_SHAPE), dtype=np.float32).reshape(WEIGHT_SHAPE)
    started = time.perf_counter()
    save_epoch(storage, key_dir, base, 0)
    print(f"ready {time.perf_counter() - started:.6f}", flush=True)
    for line in sys.stdin:
        command, *args = line.split()
        if command == "spawn":
            pid = os.fork()
            if pid == 0:
                write_forever(storage, key_dir, base, int(args[0]))
            print(f"pid {pid}", flush=True)
        elif command == "reap":
            _, status = os.waitpid(int(args[0]), 0)
            print(f"exit {os.waitstatus_to_exitcode(status)}", flush=True)
        else:
            return


if __name__ == "__main__":
    main()
