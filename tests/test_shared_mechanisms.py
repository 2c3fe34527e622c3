"""The one-of-each mechanisms: atomic writer, timing harness, size-multiple rule, session factory, provenance."""

from __future__ import annotations

import collections
import os
import stat
import time

import numpy as np
import pytest

from edgeunet import __version__
from edgeunet.atomic import atomic_dir, atomic_path, remove_stale_tmp, staging_dir, write_json, write_text
from edgeunet.env import cpu_info, provenance
from edgeunet.errors import MissingFileError, UserError
from edgeunet.sizes import check_multiple, nearest_valid, round_up, size_error
from edgeunet.timing import TimingSettings, is_noisy, ratio_stats, time_interleaved, verdict


@pytest.fixture
def umask_022():
    before = os.umask(0o022)
    yield
    os.umask(before)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_file_gets_the_umask_permissions(tmp_path, umask_022):
    write_json(tmp_path / "a.json", {"x": 1})
    assert _mode(tmp_path / "a.json") == 0o644
    os.umask(0o077)
    write_text(tmp_path / "b.txt", "b")
    assert _mode(tmp_path / "b.txt") == 0o600


def test_atomic_path_leaves_the_old_file_on_error(tmp_path):
    target = tmp_path / "keep.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_atomic_path_into_a_folder_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="is a folder"), atomic_path(tmp_path):
        pass


def test_write_json_refuses_nan_and_writes_nothing(tmp_path):
    with pytest.raises(ValueError):
        write_json(tmp_path / "n.json", {"x": float("nan")})
    assert list(tmp_path.iterdir()) == []


def test_atomic_dir_replaces_a_folder_whole_and_keeps_it_on_error(tmp_path, umask_022):
    target = tmp_path / "out"
    with atomic_dir(target) as tmp:
        (tmp / "a").write_text("1")
    assert (target / "a").read_text() == "1" and _mode(target) == 0o755
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "b").write_text("2")
        raise RuntimeError("failed check")
    assert sorted(p.name for p in target.iterdir()) == ["a"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_stale_staging_folders_of_dead_processes_are_removed(tmp_path):
    target = tmp_path / "out"
    dead = tmp_path / ".out.tmp-999999999"
    dead.mkdir()
    (dead / "junk").write_text("x")
    mine = staging_dir(target)
    assert not dead.exists() and mine.is_dir()
    assert remove_stale_tmp(target) == []  # our own staging folder is not stale


def test_sizes_name_the_nearest_valid_values():
    assert nearest_valid(17, 16) == (16, 32)
    assert nearest_valid(5, 16) == (16,)
    assert size_error(17, 16, "--img-size").endswith("use 16 or 32")
    with pytest.raises(UserError, match="use 16 or 32"):
        check_multiple(17, 16, "--img-size")
    with pytest.raises(UserError, match="use 16$"):
        check_multiple(5, 16, "--img-size")
    with pytest.raises(UserError, match="positive"):
        check_multiple(0, 16)
    assert check_multiple(48, 16) == 48 and round_up(17, 16) == 32 and round_up(0, 16) == 0


def test_ratio_is_the_median_of_per_round_ratios():
    reference = np.array([10, 20, 10, 20, 10])
    row = np.array([5, 10, 5, 10, 50])  # twice as fast but for one stalled round
    stats = ratio_stats(reference, row)
    assert stats["ratio"] == pytest.approx(2.0) and stats["rounds"] == 5


def test_verdict_needs_an_interval_clear_of_one():
    assert verdict({"ratio": 1.5, "ratio_q25": 1.3, "ratio_q75": 1.6}, noisy=False) == "faster"
    assert verdict({"ratio": 0.7, "ratio_q25": 0.6, "ratio_q75": 0.8}, noisy=False) == "slower"
    assert verdict({"ratio": 1.0, "ratio_q25": 0.9, "ratio_q75": 1.1}, noisy=False) == "same"
    assert verdict({"ratio": 1.5, "ratio_q25": 1.3, "ratio_q75": 1.6}, noisy=True) == "no verdict"
    assert is_noisy({"p50": 1.0, "p90": 2.0}) and not is_noisy({"p50": 1.0, "p90": 1.1})


def test_two_rows_alternate():
    calls: list[str] = []
    rows = time_interleaved([lambda: calls.append("a"), lambda: calls.append("b")],
                            TimingSettings(warmup=0, min_time=0.0, min_rounds=4))
    assert calls == ["a", "b", "b", "a", "a", "b", "b", "a"] and [r["iterations"] for r in rows] == [4, 4]


def test_more_rows_follow_every_neighbour_in_a_repeatable_order():
    """A fixed or rotating order keeps one row behind the same neighbour; shuffled rounds do not."""
    def schedule() -> list[str]:
        calls: list[str] = []
        fns = [lambda name=name: calls.append(name) for name in "abcd"]
        rows = time_interleaved(fns, TimingSettings(warmup=0, min_time=0.0, min_rounds=40))
        assert [r["iterations"] for r in rows] == [40] * 4 and rows[0]["verdict"] == "reference"
        return calls

    calls = schedule()
    rounds = [calls[i:i + 4] for i in range(0, len(calls), 4)]
    assert all(sorted(r) == list("abcd") for r in rounds)  # every row once per round
    follows = collections.Counter((r[k - 1], r[k]) for r in rounds for k in range(1, 4))
    for row in "abcd":
        before = {prev: n for (prev, cur), n in follows.items() if cur == row}
        assert len(before) == 3 and max(before.values()) < 0.6 * sum(before.values()), (row, before)
    assert schedule() == calls  # seeded: the same schedule every run


def test_interleaved_timing_ranks_a_slower_callable_slower():
    rows = time_interleaved([lambda: time.sleep(0.004), lambda: time.sleep(0.001)],
                            TimingSettings(warmup=1, min_time=0.0, min_rounds=15))
    assert rows[1]["ratio"] > 1.5 and rows[1]["latency_ms"]["min"] < rows[0]["latency_ms"]["min"]


def test_timing_settings_are_validated():
    with pytest.raises(UserError, match="--min-iters"):
        TimingSettings(min_rounds=0)
    with pytest.raises(UserError, match="--warmup"):
        TimingSettings(warmup=-1)


def test_session_factory_names_a_missing_file_and_a_broken_one(tmp_path):
    from edgeunet.runtime.session import ort_session

    with pytest.raises(MissingFileError):
        ort_session(tmp_path / "missing.onnx")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(UserError, match="not a loadable ONNX model"):
        ort_session(broken)


def test_session_factory_spins_within_a_call_by_default_and_each_mode_sets_its_entries():
    pytest.importorskip("onnxruntime")
    from edgeunet.runtime.session import session_options

    def entry(options, key):
        try:
            return options.get_session_config_entry(key)
        except RuntimeError:  # onnxruntime's answer for a key that was never set
            return None

    def entries(options):
        return {key: entry(options, key) for key in ("session.intra_op.allow_spinning", "session.force_spinning_stop")}

    # run: threads spin between the nodes of a call and stop when it returns; always: ONNX Runtime's default
    assert entries(session_options(2)) == {"session.intra_op.allow_spinning": None, "session.force_spinning_stop": "1"}
    assert entries(session_options(2, "always")) == {"session.intra_op.allow_spinning": None,
                                                     "session.force_spinning_stop": None}
    assert entries(session_options(2, "off"))["session.intra_op.allow_spinning"] == "0"
    assert entries(session_options(2, False)) == entries(session_options(2, "off"))  # the booleans of 0.1
    assert entries(session_options(2, True)) == entries(session_options(2, "always"))
    with pytest.raises(UserError, match="use run, always, off"):
        session_options(2, "fast")


def test_provenance_names_version_cpu_and_libraries():
    facts = provenance(threads=2)
    assert facts["edgeunet"] == __version__ and facts["threads"] == 2
    assert facts["cpu"]["model"] and isinstance(facts["cpu"]["flags"], list)
    assert "onnxruntime" in facts["versions"] and "torch" in facts["versions"]
    assert set(cpu_info()["flags"]) <= set(__import__("edgeunet.env", fromlist=["ISA_FLAGS"]).ISA_FLAGS)
