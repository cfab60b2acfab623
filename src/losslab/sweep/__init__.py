"""Sweeps: grids of settings × seeds, or the tiles of a big landscape plane, on a local process pool or a Ray cluster.

A sweep is a TOML config (:mod:`losslab.sweep.config`): an experiment, the user's own analysis
(``file.py:function``) or a plane of the user's problem; its tasks run on a backend
(:mod:`losslab.sweep.backends`: ``local``, a process pool with no server, or ``ray``) through one
code path (:mod:`losslab.sweep.tasks`), and every finished task is one row of an embedded SQLite
store (:mod:`losslab.sweep.store`) that survives kills: run the same sweep again and only what is
missing runs. Read a store with :func:`to_frame`, :func:`to_parquet`, :func:`summary` and
:func:`plane_slice`.

Example:
    >>> import tempfile, pathlib, losslab.sweep as sweep
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "study.py").write_text("def analyse(*, seed, width):\\n    return {'score': width * 10 + seed}\\n")
    >>> _ = (folder / "study.toml").write_text('[sweep]\\nfunction = "study.py:analyse"\\nseeds = 2\\nworkers = 1\\n'
    ...                                        '[grid]\\nwidth = [1, 2]\\n')
    >>> result = sweep.run(folder / "study.toml")
    >>> result.done, result.failed
    (4, 0)
    >>> sorted(sweep.to_frame(folder / "study.sqlite")["score"])
    [10, 11, 20, 21]
"""

from .config import SweepConfig, load_config, parse_config
from .export import StoreSummary, plane_slice, read_rows, summary, to_frame, to_parquet
from .runner import SweepRun, run
from .tasks import Task, make_tasks

__all__ = [
    "StoreSummary",
    "SweepConfig",
    "SweepRun",
    "Task",
    "load_config",
    "make_tasks",
    "parse_config",
    "plane_slice",
    "read_rows",
    "run",
    "summary",
    "to_frame",
    "to_parquet",
]
