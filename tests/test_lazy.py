"""edgeunet.lazy: the lazy re-exports of the light packages (prune, train)."""

from __future__ import annotations

import sys

import pytest

from edgeunet.lazy import lazy_exports


def test_lazy_names_import_their_module_on_first_use_only(tmp_path, monkeypatch):
    package = tmp_path / "lazypkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "heavy.py").write_text("def work():\n    return 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    namespace = {"eager": 1}
    getattr_, dir_ = lazy_exports("lazypkg", {"work": ".heavy"}, namespace)
    assert dir_() == ["eager", "work"]
    assert "lazypkg.heavy" not in sys.modules
    work = getattr_("work")
    assert work is sys.modules["lazypkg.heavy"].work and work() == 42
    namespace["later"] = 2
    assert dir_() == ["eager", "later", "work"]
    with pytest.raises(AttributeError, match="module 'lazypkg' has no attribute 'nothing'"):
        getattr_("nothing")
    for name in ("lazypkg.heavy", "lazypkg"):
        sys.modules.pop(name)


def test_prune_and_train_list_and_refuse_names_as_before():
    import edgeunet.prune
    import edgeunet.train

    assert {"prune_checkpoint", "prune_model", "sensitivity", "PruneSettings"} <= set(dir(edgeunet.prune))
    assert {"train", "fit", "evaluate", "TrainSettings"} <= set(dir(edgeunet.train))
    with pytest.raises(AttributeError, match="module 'edgeunet.train' has no attribute 'no_such_name'"):
        edgeunet.train.no_such_name  # noqa: B018
