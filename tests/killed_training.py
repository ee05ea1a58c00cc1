"""``python killed_training.py MODE N <degrade-lab train args>``: a training run that kills itself with
SIGKILL at a chosen, deterministic moment (used by test_safety.py).

MODE ``in_save``: during the N-th write of last.ckpt, after half of the file reached its temporary file.
MODE ``at_step``: at the end of training step N (after any checkpoint of that step was written).
"""

import os
import signal
import sys

import torch


def die():
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    mode, n, args = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    if mode == "in_save":
        real_save, calls = torch.save, [0]

        def dying_save(obj, f, *rest, **kwargs):
            name = os.fspath(f) if isinstance(f, (str, os.PathLike)) else str(getattr(f, "name", ""))
            last = ".last.ckpt." in name  # the temporary file of last.ckpt (a path or an open handle)
            calls[0] += last
            real_save(obj, f, *rest, **kwargs)
            if last and calls[0] == n:
                if hasattr(f, "flush"):
                    f.flush()
                size = os.path.getsize(name)
                with open(name, "r+b") as handle:
                    handle.truncate(size // 2)
                die()

        torch.save = dying_save
    elif mode == "at_step":
        from degrade_lab.callbacks.run_record import RunRecord

        def on_train_batch_end(self, trainer, *unused):
            if trainer.global_step == n:
                die()

        RunRecord.on_train_batch_end = on_train_batch_end
    else:
        raise SystemExit(f"unknown mode {mode}")
    from degrade_lab.cli import main as cli_main

    sys.argv = ["degrade-lab", "train", *args]
    cli_main()


if __name__ == "__main__":
    main()
