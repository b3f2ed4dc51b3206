"""The main job: its TOML config is validated, and its stages are reused only when their
inputs are unchanged."""
import json

import pytest

from sorbet_hw.model.params import ParameterError
from sorbet_hw.flow import SECTIONS, Run, load_config


def write(tmp_path, text):
    path = tmp_path / "run.toml"
    path.write_text(text)
    return path


def test_defaults_and_overrides(tmp_path):
    assert load_config(None) == SECTIONS
    config = load_config(write(tmp_path, '[simulate]\ncount = 50\nsimulators = ["icarus"]\n'))
    assert config["simulate"] == {"count": 50, "simulators": ["icarus"]}
    assert config["synth"] == SECTIONS["synth"]


@pytest.mark.parametrize("text, message", [
    ("[simulation]\ncount = 5\n", "unknown section \\[simulation\\]"),
    ("[simulate]\ncounts = 5\n", "unknown key simulate.counts; known: count, simulators"),
    ("[simulate]\ncount = 0\n", "simulate.count = 0 is out of range 1..100000"),
    ("[simulate]\ncount = \"many\"\n", "simulate.count must be an integer"),
    ("[synth]\ntargets = [\"asic\"]\n", "synth.targets takes generic, ice40, ecp5, got 'asic'"),
    ("[model]\ncheckpoint = \"missing.npz\"\n", "model.checkpoint file missing.npz does not exist"),
    ("[simulate\n", "not valid TOML"),
])
def test_bad_configs_get_one_clear_error(tmp_path, text, message):
    with pytest.raises(ParameterError, match=message):
        load_config(write(tmp_path, text))


def test_missing_config_file(tmp_path):
    with pytest.raises(ParameterError, match="does not exist"):
        load_config(tmp_path / "none.toml")


def test_stages_are_reused_until_their_sections_change(tmp_path):
    calls = []
    config = load_config(None)
    run = Run(config, tmp_path)
    work = lambda: calls.append(1) or {"value": len(calls)}          # noqa: E731
    assert run.stage(1, 2, "synth", ("synth",), work) == {"value": 1}
    assert run.stage(1, 2, "synth", ("synth",), work) == {"value": 1}      # reused
    config["energy"]["sentences"] = 3                                      # another section
    assert Run(config, tmp_path).stage(1, 2, "synth", ("synth",), work) == {"value": 1}
    config["synth"]["place_and_route"] = False
    assert Run(config, tmp_path).stage(1, 2, "synth", ("synth",), work) == {"value": 2}
    assert json.loads((tmp_path / "run" / "synth.json").read_text())["result"] == {"value": 2}

    def interrupted():
        raise KeyboardInterrupt
    config["synth"]["place_and_route"] = True
    with pytest.raises(KeyboardInterrupt):
        Run(config, tmp_path).stage(1, 2, "synth", ("synth",), interrupted)
    # The record of the earlier configuration stays, so nothing looks finished for this one.
    assert Run(config, tmp_path).stage(1, 2, "synth", ("synth",), work) == {"value": 3}


def test_the_main_job_end_to_end_on_a_small_config(tmp_path):
    """Every stage on one block, then the report; a rerun reuses every stage."""
    from sorbet_hw.flow import run_all
    data = tmp_path / "dev.tsv"
    data.write_text("sentence\tlabel\na charming , moving journey .\t1\ndull and lifeless .\t0\n")
    config = load_config(write(tmp_path, f'''
[model]
data = "{data}"
[design]
blocks = ["bspn", "layernorm"]
[simulate]
count = 20
simulators = ["icarus"]
[layer]
replay = false
[synth]
targets = ["generic"]
place_and_route = false
[energy]
sentences = 2
method = "ops"
'''))
    build = tmp_path / "build"
    report = run_all(config, build)
    text = report.read_text()
    for name in ("accuracy.png", "sparsity.png", "energy.png", "cells.png"):
        assert f'src="{name}"' in text and (report.parent / name).stat().st_size > 1000
    # It opens on the summary; its energy is the real-size measurement, named as such.
    assert text.index("<h2>Summary</h2>") < text.index("<h2>Vectors</h2>")
    summary = text[text.index("<h2>Summary</h2>"):text.index("<h2>Vectors</h2>")]
    for what in ("accuracy", "bit exactness", "4 of 4 simulations bit exact",
                 "energy per inference (real size)", "last real-size measurement, commit",
                 "cycles per sentence", "Graded events are an activation-sparse BWN"):
        assert what in summary, what
    assert "slice" not in summary and "offset" not in text
    records = {p.stem: json.loads(p.read_text()) for p in (build / "run").glob("*.json")}
    assert set(records) == {"evaluate", "export", "blocks", "replay", "layer", "synth", "energy"}
    assert records["layer"]["result"] == {"skipped": True}      # the real layer has its own test
    assert records["evaluate"]["result"]["metrics"]["accuracy"] in (0.0, 50.0, 100.0)
    assert [r["block"] for r in records["blocks"]["result"]] == ["bspn", "layernorm"]
    assert all(r["passed"] for r in records["replay"]["result"])
    assert {r["instance"] for r in records["replay"]["result"]} == {"layer0.attention_norm", "layer0.output_norm"}
    assert "| bspn | generic |" in (build / "synth" / "synth.md").read_text()
    assert "<h2>Energy details</h2>" in text and "Method 1, an estimate" in text
    assert not list(build.parent.glob("**/*.partial"))
    mtime = (build / "run" / "synth.json").stat().st_mtime
    run_all(config, build)
    assert (build / "run" / "synth.json").stat().st_mtime == mtime


def test_stage_keys_cover_file_contents_not_just_paths(tmp_path):
    """The same config text over a changed file (same size, same mtime) re-runs the stage,
    and a damaged record is redone rather than trusted."""
    import os
    data = tmp_path / "dev.tsv"
    data.write_text("sentence\tlabel\ngood\t1\n")
    stamp = data.stat().st_mtime_ns
    calls = []
    work = lambda: calls.append(1) or {"value": len(calls)}          # noqa: E731
    config = load_config(None)
    run = Run(config, tmp_path)
    assert run.stage(1, 1, "evaluate", ("model",), work, (data,)) == {"value": 1}
    assert run.stage(1, 1, "evaluate", ("model",), work, (data,)) == {"value": 1}
    data.write_text("sentence\tlabel\ngood\t0\n")                       # one byte changed
    os.utime(data, ns=(stamp, stamp))
    assert run.stage(1, 1, "evaluate", ("model",), work, (data,)) == {"value": 2}
    (tmp_path / "run" / "evaluate.json").write_text('{"key": ')        # damaged
    assert run.stage(1, 1, "evaluate", ("model",), work, (data,)) == {"value": 3}
    assert not list(tmp_path.glob("run/.*partial"))


def test_an_interrupt_a_library_swallows_still_stops_the_stage():
    """Python ignores a KeyboardInterrupt raised inside a gc callback (Dask registers one), so
    the main job remembers Ctrl-C and a stage that finishes after it raises instead of
    recording its result; the previous handler is back afterwards."""
    import os
    import signal
    import time
    from sorbet_hw.flow import _remembered_interrupts
    before = signal.getsignal(signal.SIGINT)
    with _remembered_interrupts() as check:
        assert check({"value": 1}) == {"value": 1}
        swallowed = False
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)                          # the handler runs here, at the latest
        except KeyboardInterrupt:
            swallowed = True                       # what a gc callback's caller does
        assert swallowed
        with pytest.raises(KeyboardInterrupt):
            check({"value": 2})
    assert signal.getsignal(signal.SIGINT) is before


def test_the_summary_says_where_each_figure_comes_from(tmp_path):
    """This run's figures where it made them; the last recorded ones, labelled, where not."""
    from sorbet_hw.report import summary_of
    synth = [{"block": b, "target": "ice40", "device": "iCE40 HX8K", "fmax_mhz": f, "cells": 1}
             for b, f in (("bspn", 57.5), ("softmax", 41.25), ("layernorm", "no fit"))]
    layer = {"cycles": 1234, "tokens": 4, "engine": "event", "lanes": 8, "passed": True}
    s = summary_of({"synth": synth, "layer": layer})
    assert s["cycles"] == ("1,234 cycles for 4 tokens (event engine, 8 lanes)", "this run, bit exact")
    assert ("41.25 to 57.50 MHz: the blocks on the iCE40 HX8K (slowest softmax)",
            "this run: nextpnr, one placement seed") in s["fmax"]
    recorded = summary_of({})
    assert recorded["energy"]["source"].startswith("last real-size measurement, commit ")
    assert recorded["cycles"][1].startswith("last measurement, commit ")
