"""Options declared once: every field of every options class round-trips through the command
line, the remote command line and sweep files (the fields are iterated, so a new field is
covered without a new test); the declared checks fail with messages that say what to fix."""

import argparse
import dataclasses
import re
from dataclasses import dataclass, fields, replace
from pathlib import Path

import pytest

from sc2deploy.cli import build_parser, commands
from sc2deploy.errors import UsageError
from sc2deploy.measure.options import ProfileOptions, RemoteOptions, ServerOptions
from sc2deploy.options import (add_arguments, from_mapping, from_namespace, option, spec_of,
                               sweep_key, sweep_keys, to_argv, to_mapping)

BUNDLE = Path("/bundles/b")
COMMAND = {ProfileOptions: "profile", ServerOptions: "profile-server", RemoteOptions: "profile"}
# Values that other fields' checks need (the cross-field checks of __post_init__).
NEEDS = {"model_host_time": {"energy": "model", "device_profile": "rpi4"}}


def raw_sample(o, default):
    """A command-line value other than the default, made from the declaration alone."""
    if o.repeat:
        return ("-i", "x y")  # values starting with '-' and holding spaces survive
    if o.choices:
        return next(c for c in reversed(o.choices) if c != default)
    if o.type is int:
        value = int(o.minimum or 0) + 3
        return value + 1 if value == default else value
    if o.type is float:
        value = float(o.above if o.above is not None else o.minimum or 0) + 0.25
        return value + 1 if value == default else value
    if o.type is Path:
        return Path("/x/y z")
    if o.type in (None, str):
        return "-x y"
    raise AssertionError(f"no sample for type {o.type}: extend raw_sample")


def sample(f):
    """A field value other than the default, as the field's parser would make it."""
    o = spec_of(f)
    return (not f.default) if o.type is bool else o.parse(raw_sample(o, f.default))


def base(cls) -> dict:
    return {"bundle": BUNDLE} if "bundle" in {f.name for f in fields(cls)} else {}


def one_field(cls, f):
    """Options of ``cls`` with ``f`` set to its sample (and what it needs), else defaults."""
    return cls(**{**base(cls), **NEEDS.get(f.name, {}), f.name: sample(f)})


def parsed(cls, ns):
    """The ``cls`` part of the options the command of ``cls`` parsed (its nested field)."""
    command = commands()[COMMAND[cls]].options
    whole = from_namespace(command, ns)
    return next(getattr(whole, f.name) for f in fields(command) if spec_of(f).nested is cls)


def settable(cls):
    return [f for f in fields(cls) if not spec_of(f).positional]


CASES = [pytest.param(cls, f, id=f"{cls.__name__}.{f.name}")
         for cls in COMMAND for f in settable(cls)]
PROFILE = [pytest.param(f, id=f.name) for f in settable(ProfileOptions)]


def test_every_field_is_declared_and_every_flag_is_unique():
    for cls in COMMAND:
        for f in fields(cls):
            assert spec_of(f).help, f"{cls.__name__}.{f.name} has no help"
    for command in set(COMMAND.values()):
        flags = [spec_of(f).flag for cls, c in COMMAND.items() if c == command
                 for f in fields(cls) if spec_of(f).flag]
        assert len(flags) == len(set(flags)), flags


@pytest.mark.parametrize("cls,f", CASES)
def test_cli_round_trip(cls, f):
    """The real CLI parser reads back what to_argv wrote, for every field with a flag."""
    options = one_field(cls, f)
    argv = to_argv(options, remote=False)
    if spec_of(f).flag is None:  # API only (e.g. progress): not on the command line
        assert not any(a.startswith(f"--{f.name.replace('_', '-')}") for a in argv)
        return
    prefix = [] if base(cls) else [str(BUNDLE)]
    ns = build_parser().parse_args([COMMAND[cls], *prefix, *argv, "-o", "r.json"])
    assert parsed(cls, ns) == options
    assert parsed(cls, ns) != cls(**base(cls), **NEEDS.get(f.name, {}))  # it did change


@pytest.mark.parametrize("f", PROFILE)
def test_remote_round_trip(f, tmp_path):
    """The device parses the remote command line back to the same options (bundle and
    images are the copies the caller passes), or the value is refused as local."""
    options = one_field(ProfileOptions, f)
    o = spec_of(f)
    refused = o.local(getattr(options, f.name)) if o.local else None
    if refused:
        with pytest.raises(UsageError, match=re.escape(refused)):
            to_argv(options)
        return
    argv = to_argv(options)
    if o.flag is None:  # API only: the device's command uses the default
        return
    if not o.remote:
        assert not any(a.split("=")[0] == o.flag for a in argv)
    device = dict(bundle=tmp_path / "bundle", images=tmp_path / "images")
    ns = build_parser().parse_args(["profile", str(device["bundle"]), "--images",
                                    str(device["images"]), *argv, "-o",
                                    str(tmp_path / "r.json")])
    assert parsed(ProfileOptions, ns) == replace(options, **device)


@pytest.mark.parametrize("f", PROFILE)
def test_sweep_round_trip(f):
    """A sweep file's profile mapping gives the same options; fields without a key are
    refused as keys, naming the known ones."""
    key = sweep_key(f)
    if key is None:
        with pytest.raises(UsageError, match=rf"t: unknown keys \['{f.name}'\]; known: "):
            from_mapping(ProfileOptions, {f.name: 1}, "t", bundle=BUNDLE)
        return
    options = one_field(ProfileOptions, f)
    mapping = to_mapping(options)
    assert mapping[key] == spec_of(f).sweep_show(getattr(options, f.name))
    assert from_mapping(ProfileOptions, mapping, "t", bundle=BUNDLE) == options


def test_a_new_option_is_one_field():
    @dataclass(frozen=True)
    class Extended(ProfileOptions):
        knob_ms: float = option(1.5, flag="--knob", type=float, metavar="MS", above=0,
                                help="a new knob (default: {default} ms)")

    parser = argparse.ArgumentParser()
    add_arguments(parser, Extended)
    assert "a new knob (default: 1.5 ms)" in parser.format_help()
    options = Extended(bundle=BUNDLE, knob_ms=4.0)
    assert "--knob=4.0" in to_argv(options)
    assert from_namespace(Extended, parser.parse_args(to_argv(options, remote=False))) == options
    assert "knob_ms" in sweep_keys(Extended)
    assert from_mapping(Extended, {"knob_ms": 4}, "t", bundle=BUNDLE) == options
    with pytest.raises(UsageError, match=r"^--knob must be > 0, got -1"):
        Extended(bundle=BUNDLE, knob_ms=-1)


def test_help_states_the_declared_defaults():
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices
    text = " ".join(sub["profile"].format_help().split())
    assert "power sampling interval (default: 10 ms)" in text
    assert "(default: 2 s)" in text and "(default: /; a fixture tree in tests)" in text
    assert "images decoded before measuring (default: 3)" in \
        " ".join(sub["profile-server"].format_help().split())


# --- validation ----------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,message", [
    ({"runs": 0}, r"^--runs must be >= 1, got 0$"),
    ({"warmup": -1}, r"^--warmup must be >= 0, got -1$"),
    ({"duration_s": 0}, r"^--duration must be > 0 s, got 0$"),
    ({"threads": 0}, r"^--threads must be >= 1, got 0$"),
    ({"energy": "solar"}, r"^unknown --energy 'solar'; known: auto, jetson, rpi5, ina2xx"),
    ({"coder": "zip"}, r"^unknown --coder 'zip'; known: constriction, c$"),
    ({"runs": 3, "duration_s": 2.0}, r"^give --runs or --duration, not both$"),
    ({"baselines": "no"}, r"^baselines must be true or false, got 'no'$"),
    ({"runs": "3"}, r"^--runs must be an integer, got '3'$"),
    ({"idle_s": None}, r"^--idle must be a number, got None$"),
])
def test_api_values_are_checked(kwargs, message):
    with pytest.raises(UsageError, match=message):
        ProfileOptions(bundle=BUNDLE, **kwargs)


def test_server_options_are_checked():
    with pytest.raises(UsageError, match=r"^--runs must be >= 1, got 0$"):
        ServerOptions(bundle=BUNDLE, runs=0)
    with pytest.raises(UsageError, match=r"^--warmup must be >= 0, got -2$"):
        ServerOptions(bundle=BUNDLE, warmup=-2)


@pytest.mark.parametrize("data,message", [
    ({"speed": 1}, r"^s\.yaml: profile: unknown keys \['speed'\]; known: \['baselines', "),
    ({"runs": "3"}, r"^s\.yaml: profile: runs must be an integer, got '3'$"),
    ({"runs": True}, r"^s\.yaml: profile: runs must be an integer, got True$"),
    ({"idle_s": "2"}, r"^s\.yaml: profile: idle_s must be a number, got '2'$"),
    ({"baselines": "no"}, r"^s\.yaml: profile: baselines must be true or false, got 'no'$"),
    ({"energy": "solar"}, r"^s\.yaml: profile: unknown energy 'solar'; known: auto, "),
    ({"runs": 0}, r"^s\.yaml: profile: runs must be >= 1, got 0$"),
    ({"server_ms": -1}, r"^s\.yaml: profile: --server-ms must be >= 0, got -1.0$"),
    ({"runs": 3, "duration_s": 2}, r"^s\.yaml: profile: give --runs or --duration, not both$"),
    ({"model_host_time": True}, r"^s\.yaml: profile: --model-host-time applies to modeled"),
    ([1, 2], r"^s\.yaml: profile: expected a mapping with keys from \['baselines'"),
])
def test_sweep_values_are_checked(data, message):
    with pytest.raises(UsageError, match=message):
        from_mapping(ProfileOptions, data, "s.yaml: profile", bundle=BUNDLE)


def test_sweep_null_means_the_default_and_ints_are_numbers():
    options = from_mapping(ProfileOptions, {"threads": None, "idle_s": 0, "server_ms": 12},
                           "t", bundle=BUNDLE)
    assert options.threads is None and options.idle_s == 0.0 and isinstance(options.idle_s, float)
    assert options.server == {"source": "given", "ms": 12.0,
                              "from": "given by the user (--server-ms)"}


def parse_profile(*args):
    ns = build_parser().parse_args(["profile", str(BUNDLE), *args, "-o", "r.json"])
    return parsed(ProfileOptions, ns)


@pytest.mark.parametrize("args", [["--runs", "3", "--duration", "2"],
                                  ["--server-ms", "3", "--server-results", "s.json"]])
def test_exclusive_flags_are_refused_by_the_parser(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_profile(*args)
    assert exit_info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_command_line_shapes_convert_and_fail_clearly(tmp_path):
    options = parse_profile("--sample-interval", "50", "--pmic-command", "'/opt/my tool' adc",
                            "--no-baselines")
    assert options.sample_interval_s == 0.05 and options.baselines is False
    assert options.pmic_command == ("/opt/my tool", "adc")
    assert "--pmic-command='/opt/my tool' adc" in to_argv(options)
    with pytest.raises(UsageError, match=r"^--pmic-command 'vcgencmd \"x' is invalid \(No "
                                         r"closing quotation\): expected CMD"):
        parse_profile("--pmic-command", 'vcgencmd "x')
    with pytest.raises(UsageError, match=r"^--server-ms must be >= 0, got -1.0$"):
        parse_profile("--server-ms=-1")


def test_server_results_are_measured_and_stay_local(tmp_path):
    from tests.helpers.results_factory import make_result

    from sc2deploy.results.schema import write_results

    doc = dict(make_result(kind="server"), decoder={"present": False, "note": "head-only"})
    path = write_results(doc, tmp_path / "server.json")
    options = parse_profile("--server-results", str(path))
    assert options.server["source"] == "measured" and str(path) in options.server["from"]
    with pytest.raises(UsageError, match=r"^--server-results names a local file; with --host "
                                         r"give --server-ms$"):
        to_argv(options)
    device = make_result(kind="device")
    write_results(device, tmp_path / "device.json")
    with pytest.raises(UsageError, match="is not a profile-server result"):
        parse_profile("--server-results", str(tmp_path / "device.json"))


@pytest.mark.parametrize("kwargs,message", [
    ({"link": "links/mine.yaml"}, r"^--link FILE is local; with --host use a built-in link"),
    ({"sysfs_root": Path("tree")}, r"^--sysfs-root names a local folder; it cannot be "
                                        r"used with --host$"),
])
def test_local_values_are_refused_remotely(kwargs, message):
    options = ProfileOptions(bundle=BUNDLE, **kwargs)
    with pytest.raises(UsageError, match=message):
        to_argv(options)
    assert to_argv(options, remote=False)  # the full command line here is fine


def test_remote_argv_leaves_out_what_the_caller_passes():
    argv = to_argv(ProfileOptions(bundle=BUNDLE, images=Path("/imgs"), label="-a b"))
    assert str(BUNDLE) not in argv and not any(a.startswith("--images") for a in argv)
    assert "--label=-a b" in argv and "--sample-interval=10.0" in argv
    assert "--no-baselines" not in argv and "--model-host-time" not in argv
    assert dataclasses.is_dataclass(RemoteOptions) and to_argv(RemoteOptions()) == \
        ["--remote-python=python3"]
