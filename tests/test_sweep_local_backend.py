"""The local backend: the factory runs once, its data reaches each worker once, and the config's threads and workers hold.

References: the user's own file logs (pid and event) every factory call, every unpickling of its
data and every task, so what ran where is counted outside the library.
"""

from __future__ import annotations

import os
from pathlib import Path

import losslab.sweep as sweep

STUDY = '''
import os
from pathlib import Path

import torch

LOG = Path(__file__).resolve().parent / "events.log"


def _log(event):
    with open(LOG, "a") as log:
        log.write(f"{os.getpid()} {event}\\n")


class Data:
    """The factory's data; each unpickling is logged (the payload reaches a worker as bytes, unpickled there)."""

    def __init__(self, values):
        self.values = values

    def __setstate__(self, state):
        _log("unpickled")
        self.__dict__.update(state)


def make_data():
    _log("factory")
    return Data(torch.arange(6, dtype=torch.float64))


def analyse(data, *, seed, power):
    _log("task")
    return {"total": float((data.values ** power).sum()) + seed, "threads": torch.get_num_threads()}
'''


def _events(folder: Path) -> list[tuple[int, str]]:
    return [(int(pid), event) for pid, event in (line.split() for line in (folder / "events.log").read_text().splitlines())]


def test_the_factory_runs_once_and_its_data_is_unpickled_once_per_worker(tmp_path):
    (tmp_path / "study.py").write_text(STUDY)
    (tmp_path / "study.toml").write_text('[sweep]\nfunction = "study.py:analyse"\nfactory = "study.py:make_data"\nseeds = 4\n'
                                         'workers = 2\nthreads = 2\n[grid]\npower = [1, 2, 3]\n')
    result = sweep.run(tmp_path / "study.toml")
    assert (result.done, result.failed, result.workers) == (12, 0, 2)
    events = _events(tmp_path)
    assert [pid for pid, e in events if e == "factory"] == [os.getpid()]  # once, in the driver
    tasks = {pid for pid, e in events if e == "task"}
    unpickled = [pid for pid, e in events if e == "unpickled"]
    assert sum(e == "task" for _, e in events) == 12
    assert os.getpid() not in tasks and len(tasks) <= 2
    assert sorted(unpickled) == sorted(set(unpickled)) and set(tasks) <= set(unpickled)  # once per worker, not per task
    assert len(unpickled) <= 2
    frame = sweep.to_frame(tmp_path / "study.sqlite")
    values = [float(v) for v in range(6)]
    for _, row in frame.iterrows():  # the closed form of the analysis on the factory's data
        assert row["total"] == sum(v ** row["power"] for v in values) + row["seed"]
    assert set(frame["threads"]) == {2}  # [sweep] threads: torch threads in every task


def test_the_same_tasks_give_the_same_rows_on_one_or_three_workers(tmp_path):
    (tmp_path / "study.py").write_text(STUDY.replace("data.values ** power", "torch.randn(50, dtype=torch.float64).exp() ** power"))
    (tmp_path / "study.toml").write_text('[sweep]\nfunction = "study.py:analyse"\nfactory = "study.py:make_data"\nseeds = 3\n'
                                         '[grid]\npower = [1, 2]\n')
    one = sweep.run(tmp_path / "study.toml", workers=1, store=tmp_path / "one.sqlite")
    three = sweep.run(tmp_path / "study.toml", workers=3, store=tmp_path / "three.sqlite")
    assert (one.workers, three.workers) == (1, 3) and one.done == three.done == 6
    a, b = sweep.to_frame(tmp_path / "one.sqlite"), sweep.to_frame(tmp_path / "three.sqlite")
    assert a["key"].tolist() == b["key"].tolist() and a["numbers"].tolist() == b["numbers"].tolist()
    assert len(set(a["total"])) == 6  # every task its own numbers (the global RNG seeded by the task's seed)
