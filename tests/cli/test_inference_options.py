"""`predict` and `predict-large` read the shared inference options the same way."""

from __future__ import annotations

import pytest

from unetkit.cli import build_parser

SHARED = ["--tile", "508", "--overlap", "0.25", "--batch", "3", "--tta", "--device", "cpu",
          "--nan-policy", "nearest", "--precision", "bf16"]
EXPECTED = {"tile": 508, "overlap": 0.25, "batch": 3, "tta": True, "device": "cpu", "nan_policy": "nearest",
            "precision": "bf16"}


def _parse(command: str, shared: list[str]):
    positional = ["a.tif"] if command == "predict-large" else ["images/"]
    return build_parser().parse_args([command, *positional, "--model", "m.pt", "--out", "o.npy", *shared])


@pytest.mark.parametrize("command", ["predict", "predict-large"])
def test_shared_options_parse_to_the_same_values(command):
    args = _parse(command, SHARED)
    assert {key: getattr(args, key) for key in EXPECTED} == EXPECTED


@pytest.mark.parametrize("command", ["predict", "predict-large"])
def test_unset_options_defer_to_the_checkpoint(command):
    args = _parse(command, [])
    assert (args.tile, args.overlap, args.batch, args.nan_policy, args.precision) == (None,) * 5
    assert args.tta is None and args.device == "auto"


def test_a_precision_outside_the_choices_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_info:
        _parse("predict", ["--precision", "fp8"])
    assert exit_info.value.code == 2
    assert "--precision" in capsys.readouterr().err


@pytest.mark.parametrize(("flags", "expected"), [([], None), (["--tta"], True), (["--no-tta"], False)])
@pytest.mark.parametrize("command", ["predict", "predict-large"])
def test_cli_tta_flags(command, flags, expected):
    assert _parse(command, flags).tta is expected


def test_a_mistyped_option_is_one_line_naming_the_command_and_the_nearest_option(capsys):
    """`predict --tille 512` printed the top-level usage and `unetkit: error`; `--tile abc` ten lines of usage."""
    from unetkit.cli import main

    for argv, words in ((["predict", "img", "--model", "m", "--out", "o", "--tille", "512"],
                         ["unetkit predict: error: unrecognized arguments: --tille 512",
                          "--tille: did you mean --tile?"]),
                        (["predict", "img", "--modle", "m", "--out", "o"],
                         ["the following arguments are required: --model", "--modle: did you mean --model?"]),
                        (["predict", "img", "--model", "m", "--out", "o", "--tile", "abc"],
                         ["unetkit predict: error: argument --tile: invalid int value: 'abc'"])):
        with pytest.raises(SystemExit) as stop:
            main(argv)
        err = capsys.readouterr().err
        assert stop.value.code == 2 and len(err.strip().splitlines()) == 1, err
        for word in words:
            assert word in err, err


def test_an_option_given_before_its_command_says_where_it_belongs(capsys):
    """`unetkit --quiet predict ...` said "unrecognized arguments: --quiet; did you mean --quiet?"."""
    from unetkit.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["--quiet", "predict", "img", "--model", "m", "--out", "o"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "--quiet is an option of the command: give it after the command name" in err
