"""Ray actors take two queued calls each; when one dies, both of its calls are retried on one new actor, nothing lost."""

from __future__ import annotations

import textwrap

import ray  # a test dependency (pyproject's test extra)

from losslab import sweep


def test_an_actor_that_dies_loses_no_queued_task(tmp_path):
    (tmp_path / "study.py").write_text(textwrap.dedent('''\
        import os
        from pathlib import Path


        def analyse(*, seed, x):
            marker = Path(__file__).with_name(f"died-{x}-{seed}")
            if (x, seed) == (1, 3) and not marker.exists():  # the worker process dies, once
                marker.write_text("1")
                os._exit(1)
            return {"y": x * 100 + seed}
        '''))
    (tmp_path / "s.toml").write_text('[sweep]\nfunction = "study.py:analyse"\nseeds = 6\nworkers = 2\n[grid]\nx = [1, 2]\n')
    result = sweep.run(tmp_path / "s.toml", backend="ray")
    assert (result.total, result.done, result.failed) == (12, 12, 0)
    frame = sweep.to_frame(tmp_path / "s.sqlite")
    assert frame["key"].is_unique and set(frame["status"]) == {"done"}
    assert {(r.x, r.seed): r.y for r in frame.itertuples()} == {(x, s): x * 100 + s for x in (1, 2) for s in range(6)}
    attempts = {(r.x, r.seed): r.attempts for r in frame.itertuples()}
    assert attempts[(1, 3)] == 2 and max(attempts.values()) == 2  # the dead actor's calls retried once, on a new actor
    assert not ray.is_initialized()  # the Ray the sweep started is stopped
