"""Hostile config files (issue 16): `vgw validate` and `vgw run` end with exit 2
and a message for ANY file, in bounded time and memory (daemon/config/yaml_safe.py).

The worst ones run `vgw validate` in a child process with an address-space
limit (1 GiB) and a time limit (60 s, a generous bound against a hang on a busy
2-core machine; the loader needs ~2 s there), so that a regression fails the
test instead of taking the test worker or the host down. The rest run in
process, with both of the loader's event sources (libyaml's and PyYAML's).
"""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.config import yaml_safe as yamlload
from daemon.config import ConfigError, GatewayConfig, load_config, parse_config
from .test_config import DESIGN_EXAMPLE

REPO = Path(__file__).resolve().parents[3]
MEMORY_LIMIT = 1 << 30
TIME_LIMIT = 60


def billion_laughs(levels: int = 9) -> str:
    """Aliases of aliases: 10^levels values from ~1.4 KB (the issue's file)."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    lines += [f"vpc: {{cidrs: *a{levels}}}", f"connections: *a{levels}"]
    return "\n".join(lines) + "\n"


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def validate_in_child(path: Path | str, command: str = "validate") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "daemon", command, "--config", str(path)],
                          cwd=REPO, capture_output=True, text=True, timeout=TIME_LIMIT,
                          preexec_fn=_limits)


CHILD_CASES = {
    # name: (file content or a path, what the message must say)
    "billion laughs": (billion_laughs(), "billion laughs"),
    "nested 5000 deep": ("vpc: " + "[" * 5000 + "]" * 5000 + "\n", "nests more than 32 levels"),
    "mappings 3000 deep": ("vpc: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n", "nests more than 32 levels"),
    "10 MB": ("vpc: {cidrs: [10.0.0.0/16]}\n" + ("# " + "x" * 98 + "\n") * 100_000, "larger than 1,048,576 bytes"),
    "/dev/zero": ("/dev/zero", "larger than 1,048,576 bytes"),
    "60,000 keys": ("".join(f"k{i}: {i}\n" for i in range(60_000)), "has more than 100,000 values"),
}


@pytest.mark.parametrize("case", list(CHILD_CASES))
def test_vgw_validate_ends_with_exit_2_within_limits(case, tmp_path):
    content, expected = CHILD_CASES[case]
    if content.startswith("/dev/"):
        path = content
    else:
        path = tmp_path / "hostile.yaml"
        path.write_text(content)
    result = validate_in_child(path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert expected in result.stderr
    assert result.stderr.count("\n") <= 3    # one problem and the summary line


@pytest.mark.parametrize("case", ["billion laughs", "nested 5000 deep"])
def test_vgw_run_ends_with_exit_2_before_it_starts_anything(case, tmp_path):
    path = tmp_path / "hostile.yaml"
    path.write_text(CHILD_CASES[case][0])
    result = validate_in_child(path, "run")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert CHILD_CASES[case][1] in result.stderr


IN_PROCESS_CASES = {
    # name: (bytes of the file, expected words, line)
    "Latin-1": ("vpc: {cidrs: [10.0.0.0/16]}\nconnections: [{name: caf\xe9}]\n".encode("latin-1"),
                "is not UTF-8 text (byte 0xe9 on line 2)", 2),
    "UTF-16": ("vpc: {cidrs: [10.0.0.0/16]}\n".encode("utf-16"), "is not UTF-8 text", 1),
    "binary": (bytes(range(256)) * 4, "is not UTF-8 text (byte 0x80 on line 2)", 2),
    "NUL byte": (b"vpc: {cidrs: [10.0.0.0/16]}\nconnections: [\x00]\n", "a binary file?", 2),
    "control character": (b"vpc: {cidrs: [10.0.0.0/16]}\x07\n", "does not allow (#x0007)", 1),
    "a string": (b"just a string\n", "must be a YAML mapping", 1),
    "a list": (b"- vpc\n- connections\n", "must be a YAML mapping", 1),
    "a number": (b"42\n", "must be a YAML mapping", 1),
    "recursive alias": (b"vpc: &a {cidrs: [10.0.0.0/16], x: *a}\nconnections: []\n", "recursive alias", 1),
    "recursive list": (b"connections: &c [*c]\nvpc: {cidrs: [10.0.0.0/16]}\n", "recursive alias", 1),
    "5000 digits": (b"vpc: {cidrs: [10.0.0.0/16]}\ncontrol_socket: " + b"1" * 5000 + b"\n",
                    "cannot read the value on line 2", 2),
    "month 99": (b"vpc: !!timestamp 2020-99-99\n", "cannot read the value on line 1", 1),
    "bad base64": (b"vpc: {cidrs: [10.0.0.0/16]}\nconnections: !!binary '====='\n", "", None),
    "python object": (b"vpc: !!python/object/apply:os.system ['true']\n", "could not determine a constructor", 1),
    "unhashable key": (b"? [a, b]\n: c\n", "unhashable key", 1),
    "two documents": (b"vpc: 1\n---\nvpc: 2\n", "expected a single document", 2),
    "undefined alias": (b"vpc: *nothing\n", "undefined alias", 1),
    "merge of a scalar": (b"vpc: {<<: [1, 2]}\n", "expected a mapping for merging", 1),
    "an anchor per value": (("v: [" + ", ".join(f"&a{i} [0,0,0,0,0,0,0,0,0,0]" for i in range(6_000)) + "]\n").encode()
                            + b"w: [" + b", ".join(f"*a{i}".encode() for i in range(6_000)) + b"]\n",
                            "more than 100,000 values", 2),
}


@pytest.fixture(autouse=True)
def walk_guard(monkeypatch):
    """A loader that let an alias bomb through would walk it until memory runs
    out (22 GB in one test worker, seen on the old loader): stop at twice the
    limit instead, so that a regression fails fast."""
    visits = [0]
    real_walk, real_load = yamlload._walk, yamlload.load

    def counted(*args):
        visits[0] += 1
        assert visits[0] <= 2 * yamlload.MAX_VALUES, "the key walker went past the value limit"
        return real_walk(*args)

    def load(*args, **kw):
        visits[0] = 0      # per file
        return real_load(*args, **kw)
    monkeypatch.setattr(yamlload, "_walk", counted)
    monkeypatch.setattr(yamlload, "load", load)


@pytest.fixture(params=["libyaml", "pyyaml"])
def loader(request, monkeypatch):
    """Both event sources: libyaml's parser (when PyYAML has it) and PyYAML's own."""
    if request.param == "pyyaml":
        monkeypatch.setattr(yamlload, "_CParser", None)
    elif yamlload._CParser is None:
        pytest.skip("PyYAML is built without libyaml here")
    return request.param


@pytest.mark.parametrize("case", list(IN_PROCESS_CASES))
def test_hostile_files_are_config_errors_with_a_line(case, tmp_path, loader):
    content, expected, line = IN_PROCESS_CASES[case]
    path = tmp_path / "hostile.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    issues = info.value.issues
    assert expected in str(info.value)
    if line is not None:
        assert issues[0].line == line, issues


def test_a_billion_laughs_is_refused_before_anything_walks_it(monkeypatch, loader):
    """Refused while composing: the key walker and the models never see it."""
    walked = []
    real_walk = yamlload._walk
    monkeypatch.setattr(yamlload, "_walk", lambda *a: walked.append(1) or real_walk(*a))
    with pytest.raises(ConfigError) as info:
        parse_config(billion_laughs(9))
    assert walked == []
    [issue] = info.value.issues
    assert "billion laughs" in issue.message and issue.line is not None


def test_aliases_within_the_limit_still_work(loader):
    """An anchor reused a few times (as examples/ do with merge keys) is fine."""
    text = DESIGN_EXAMPLE.replace("phase1_dh_group_numbers: [14]", "phase1_dh_group_numbers: &groups [14, 19]")
    text = text.replace("        pre_shared_key: example_psk_tunnel2_abcdef\n",
                        "        pre_shared_key: example_psk_tunnel2_abcdef\n        phase1_dh_group_numbers: *groups\n")
    config = parse_config(text)
    assert [t.phase1_dh_group_numbers for t in config.connections[0].tunnels] == [[14, 19], [14, 19]]


def test_depth_limit_leaves_python_recursion_far_away():
    assert yamlload.MAX_DEPTH * 4 < sys.getrecursionlimit() // 4


def test_many_problems_are_counted_and_the_first_hundred_listed(tmp_path):
    text = DESIGN_EXAMPLE + "".join(f"unknown_key_{i}: {i}\n" for i in range(3000))
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    err = info.value
    assert len(err.issues) == 100 and err.total == 3000
    assert str(err).endswith("... and 2,900 more problems (only the first 100 are listed)")


def test_a_huge_value_is_not_echoed_whole():
    text = DESIGN_EXAMPLE.replace("control_socket: /run/vgw/vgw.sock", "control_socket: [" + "x" * 200_000 + "]")
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert len(str(info.value)) < 2000


# --- property tests: whatever the text, a config or a ConfigError ---------------------------

def _outcome(text: str) -> None:
    try:
        assert isinstance(parse_config(text), GatewayConfig)
    except ConfigError as exc:
        assert exc.issues and all(issue.message for issue in exc.issues)


scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                    st.text(max_size=20), st.sampled_from(["10.0.0.0/16", "198.51.100.1", "AES128", "14"]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=5),
    st.dictionaries(st.sampled_from(["vpc", "cidrs", "connections", "name", "tunnels", "outside_ip",
                                     "pre_shared_key", "phase1_dh_group_numbers", "x"]), inner, max_size=5)),
    max_leaves=30)


@pytest.mark.timeout(300)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=values)
def test_random_documents_are_a_config_or_a_config_error(data):
    _outcome(yaml.safe_dump(data))


YAML_BITS = ["&a ", "*a", "<<: ", "!!binary ", "!!python/name:os.system ", "[", "]", "{", "}", ": ", "- ",
             "\t", "\x00", "\ufeff", "%YAML 1.1\n", "---\n", "...\n", "? ", "|\n", ">-\n", "'", '"', "#", "\n",
             "  ", "9" * 5000, "!!timestamp 2020-99-99", "*undefined", "&b [*b]", "\\x85"]


@pytest.mark.timeout(300)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edits=st.lists(st.tuples(st.integers(0, len(DESIGN_EXAMPLE)), st.integers(0, 8),
                                st.one_of(st.sampled_from(YAML_BITS), st.text(max_size=3))), max_size=6))
def test_mutated_configs_are_a_config_or_a_config_error(edits):
    text = DESIGN_EXAMPLE
    for position, cut, insert in edits:
        position = min(position, len(text))
        text = text[:position] + insert + text[position + cut:]
    _outcome(text)


@pytest.mark.timeout(300)
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(levels=st.integers(1, 12), fan=st.integers(1, 12))
def test_alias_pyramids_are_refused_or_loaded_by_their_expanded_size(levels, fan):
    """fan^levels values: refused above the limit, loaded below it (never walked blindly)."""
    lines = ["a0: &a0 [0]"]
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * fan) + "]")
    text = "\n".join(lines) + "\n"
    expanded = sum(fan ** i for i in range(levels + 1))   # roughly: lists and their items
    try:
        doc = yamlload.load(text)
    except yamlload.YamlProblem as problem:
        assert "billion laughs" in problem.message or "more than" in problem.message
        assert expanded > yamlload.MAX_VALUES // 10
    else:
        assert doc is not None and expanded <= 4 * yamlload.MAX_VALUES
