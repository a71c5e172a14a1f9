"""Config fuzzing: for random override sets, a command succeeds or prints one clear error, never a traceback."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ganscape.cli import main
from ganscape.config import all_keys

KEYS = all_keys() + ["penalty", "trian.steps", "penalty.r1", "penalty.name", "x.y.z", "", "train", "g.arch.x",
                     "eval.metrics", "data"]
ODD_VALUES = ["inf", "-inf", ".nan", "nan", "1e400", "-0", "[", "{", "}", "[1, 2]", "{a: 1}", "{r1: 2}", "r1:",
              "r1:0.5,l2", ":", ",", "none", "null", "~", "true", "no", "!!python/name:os.system", "'", '"', "''",
              "a: b: c", "- x", "0x1F", "1_000", "2**63", "9" * 40, "é", "\u0000", "..", "cuda:99", "meta",
              "%", "*", "&anchor x", "*alias", "? complex", "|", ">", "#comment", "   "]
VALUES = st.one_of(
    st.sampled_from(ODD_VALUES),
    st.integers(min_value=-10**30, max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=20),
    st.lists(st.sampled_from(["fid", "r1", "wgan_gp:1", "x", "1", "none"]), max_size=3).map(",".join),
)
OVERRIDE = st.one_of(st.tuples(st.sampled_from(KEYS), VALUES).map(lambda kv: f"{kv[0]}={kv[1]}"),
                     st.sampled_from(["noequals", "=value", "a==b", "--until", "-x"]))


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(overrides=st.lists(OVERRIDE, max_size=4))
def test_random_overrides_give_a_config_or_one_clear_error(overrides, capsys, tmp_path, monkeypatch):
    """(Run from an empty folder, so that a data.root of '..' lists a few files, not a whole disk.)"""
    monkeypatch.chdir(tmp_path)
    try:
        code = main(["config", "show", *overrides])
    except SystemExit as exit_:  # argparse's own usage errors, for things that look like options
        code = exit_.code
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out
    assert code in (0, 2), (overrides, err)
    if code == 2:
        assert err.startswith(("ganscape: error:", "usage:", "ganscape: warning:")), (overrides, err)
        assert "ganscape: error:" in err or "error:" in err
