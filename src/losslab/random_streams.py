"""Independent random streams from one seed: a named child stream per purpose.

Every random choice in losslab takes one user ``seed`` and draws from the child stream of its
*purpose* (model init, fixed features, directions, Lanczos start, ...), never from the seed
itself. The child of ``(seed, purpose, *keys)`` is NumPy's ``SeedSequence(seed,
spawn_key=(PURPOSES[purpose], *keys))`` — exactly the ``SeedSequence`` that
``SeedSequence(seed).spawn(...)`` hands out at those spawn keys (O'Neill's hashing of the
entropy with the spawn key; NumPy NEP 19). So

* the same seed, purpose and keys give the same numbers, on every run and machine;
* two purposes (or two keys of one purpose) draw from statistically independent streams,
  even for the same seed: the Lanczos start of ``eigs(seed=0)`` is not the ``init(seed=0)``
  point, the random features of ``RandomFeatures(seed=0)`` are not its ``init(seed=0)`` weights;
* the spawn key of a purpose is fixed in :data:`PURPOSES` and never renumbered, so adding a
  purpose changes no other purpose's numbers.

Why: with ``torch.Generator().manual_seed(seed)`` everywhere, ``eigs(..., seed=0)`` at
``problem.init(0)`` started Lanczos from θ itself, and missed eigenvalues (issue #10).

Example:
    >>> g = generator(0, "lanczos")
    >>> bool(torch.equal(torch.randn(3, generator=g), torch.randn(3, generator=generator(0, "lanczos"))))
    True
    >>> child_seed(0, "init") != child_seed(0, "lanczos")
    True
"""

from __future__ import annotations

import numpy as np
import torch

from ._checks import LosslabError, seed_int

__all__ = ["PURPOSES", "child_seed", "generator", "numpy_generator"]

#: purpose → its fixed spawn key. Append new purposes with new keys; never reuse or renumber one.
PURPOSES: dict[str, int] = {
    "init": 0,  # a model's initial parameters: Model.init, a wrapped Module's re-initialisation
    "features": 1,  # fixed random features: RandomFeatures' W and b
    "directions": 2,  # random landscape directions: random_direction, plane
    "lanczos": 3,  # Lanczos / ARPACK start vectors: eigs, eigenvector_directions
    "chords": 4,  # chord endpoints and symmetry draws of the convexity search
    "minibatches": 5,  # minibatch permutations: train, train_ensemble
    "probes": 6,  # Rademacher probes: hutchinson, hutchpp, xtrace, frobenius_norm, spectral_density; classify's gradient scale (key 1)
    "data": 7,  # a data set's samples (inputs, labels, label noise)
    "target": 8,  # a random target function: teacher weights, sparse monomials, a multi-index subspace
    "noise": 9,  # label-noise re-draws in experiments (bias–variance)
    "affine_check": 10,  # random points and directions of the numerical affine check (affine_defect)
    "restarts": 11,  # seeds of further starts: multi-start runs, the convexity search's extra centres
    "masks": 12,  # dropout masks (the regularization experiment)
}


def _sequence(seed: object, purpose: str, keys: tuple[object, ...]) -> np.random.SeedSequence:
    seed = seed_int("seed", seed)
    if purpose not in PURPOSES:
        raise LosslabError(f"unknown random-stream purpose {purpose!r}: expected one of {', '.join(map(repr, PURPOSES))}")
    for key in keys:
        if isinstance(key, bool) or not isinstance(key, (int, np.integer)) or key < 0:
            raise LosslabError(f"expected stream keys to be integers >= 0, got {key!r} for purpose {purpose!r}")
    return np.random.SeedSequence(seed, spawn_key=(PURPOSES[purpose], *(int(k) for k in keys)))


def child_seed(seed: int, purpose: str, *keys: int) -> int:
    """The seed of the child stream ``(seed, purpose, *keys)``: an int in [0, 2**63 − 1].

    The first 64-bit word of ``SeedSequence(seed, spawn_key=(PURPOSES[purpose], *keys))``'s
    state, its top bit dropped (a valid losslab seed). Use it where a seed is handed on, e.g.
    the k-th restart's seed ``child_seed(seed, "restarts", k)``.

    Args:
        seed: the user's seed, an integer in [0, 2**63 − 1].
        purpose: a key of :data:`PURPOSES`.
        *keys: integers >= 0 that index streams within the purpose (repeat r, start k, ...).

    Raises:
        LosslabError: for an unknown purpose, a bad seed or a negative/non-integer key.
    """
    word = _sequence(seed, purpose, keys).generate_state(1, np.uint64)[0]
    return int(word) >> 1


def generator(seed: int, purpose: str, *keys: int, device: torch.device | str | None = None) -> torch.Generator:
    """A ``torch.Generator`` on ``device`` (default the CPU) seeded with ``child_seed(seed, purpose, *keys)``.

    losslab draws on the CPU and moves the numbers, so the same seed gives the same numbers on
    every device; a generator on another device (``device="cuda"``) draws different numbers.
    """
    seeded = child_seed(seed, purpose, *keys)
    try:
        return torch.Generator(device="cpu" if device is None else device).manual_seed(seeded)
    except (RuntimeError, TypeError) as err:
        raise LosslabError(f"expected a device with a random generator (\"cpu\", or \"cuda\" when CUDA is present), got device={device!r} "
                           f"({str(err).splitlines()[0][:80]})") from None


def numpy_generator(seed: int, purpose: str, *keys: int) -> np.random.Generator:
    """``numpy.random.default_rng`` on the child ``SeedSequence`` ``(seed, purpose, *keys)``."""
    return np.random.default_rng(_sequence(seed, purpose, keys))
