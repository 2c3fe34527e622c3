"""The few Adam steps that make the tests' tiny models give masks that follow the image."""

from __future__ import annotations

from collections.abc import Callable


def fit_on_one_thread(model, next_batch: Callable[[], tuple], steps: int, lr: float = 1e-2):
    """Trains ``model`` for ``steps`` Adam steps on ``next_batch() -> (x, y)``, on one thread
    (tiny convolutions: more threads only contend on a shared machine, and one is deterministic).

    Returns:
        The model, in eval mode.
    """
    import torch

    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(steps):
            x, y = next_batch()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval()
