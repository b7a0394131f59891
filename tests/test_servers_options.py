"""``--api-url`` given several times, and ``api-url = [...]`` in the kiosk file: one server each."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from livecam.cli import build_parser
from livecam.cli.common import api_choice
from livecam.cli.kiosk import add_arguments as add_kiosk_arguments
from livecam.cli.kiosk import api_choice as kiosk_api_choice
from livecam.cli.kiosk import load_kiosk_config
from livecam.connection import ApiSettings
from livecam.errors import ConfigError
from livecam.public.serve import connect

A, B, C = "http://10.0.0.1:9001", "http://10.0.0.2:9001", "http://10.0.0.3:9001"


def run_choice(*argv: str) -> ApiSettings:
    args = build_parser().parse_args(["run", "0", "--headless", *argv])
    return api_choice(args, {})


def kiosk_choice(tmp_path: Path, text: str, *flags: str) -> ApiSettings:
    path = tmp_path / "kiosk.toml"
    path.write_text(text, encoding="utf-8")
    parser = argparse.ArgumentParser()
    add_kiosk_arguments(parser)
    return kiosk_api_choice(load_kiosk_config(parser.parse_args(["--config", str(path), *flags])), {})


def test_each_api_url_flag_is_a_server() -> None:
    choice = run_choice("--api-url", A, "--api-url", B, "--api-url", C, "--model", "m/1")
    assert choice.api_url == (A, B, C) and choice.servers == 3
    with connect(choice) as api:
        assert api.urls == (A, B, C) and api.api_url == A
        assert [c.api_url for c in api.each_server()] == [A, B, C]


def test_one_api_url_is_one_server() -> None:
    with connect(run_choice("--api-url", A, "--model", "m/1")) as api:
        assert api.urls == (A,) and api.api_urls == ()


def test_a_bad_url_among_several_is_named() -> None:
    with pytest.raises(ConfigError, match=r"--api-url: must start with http:// or https:// \(got 'ftp://x'\)"):
        run_choice("--api-url", A, "--api-url", "ftp://x", "--model", "m/1")


def test_the_kiosk_file_takes_one_url_or_a_list(tmp_path: Path) -> None:
    one = kiosk_choice(tmp_path, f'[api]\napi-url = "{A}"\nmodel = "m/1"\n')
    assert one.api_url == (A,)
    several = kiosk_choice(tmp_path, f'[api]\napi-url = ["{A}", "{B}"]\nmodel = "m/1"\n')
    assert several.api_url == (A, B)
    flags = kiosk_choice(tmp_path, f'[api]\napi-url = ["{A}", "{B}"]\n', "--api-url", C, "--api-url", A)
    assert flags.api_url == (C, A)  # flags given replace the file's list


def test_the_kiosk_file_names_a_bad_list(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"api\.api-url: must be a URL or a list of URLs"):
        kiosk_choice(tmp_path, "[api]\napi-url = []\n")


def test_help_says_it_may_be_repeated() -> None:
    parser = build_parser()
    for command in ("run", "annotate", "kiosk"):
        text = parser._subparsers._group_actions[0].choices[command].format_help()  # type: ignore[union-attr,index]
        assert "repeat it for several servers" in " ".join(text.split())


def test_annotate_keeps_enough_workers_for_every_server(tmp_path: Path) -> None:
    from livecam.cli.annotate import check_arguments

    video = tmp_path / "in.avi"
    video.write_bytes(b"")
    args = build_parser().parse_args(
        ["annotate", str(video), "-o", str(tmp_path / "o.mp4"), "--api-url", A, "--api-url", B, "--model", "m/1"]
    )
    job = check_arguments(args, api_choice(args, {}))
    assert job.adaptive and job.per_server == 8 and job.options.in_flight == 16
    args = build_parser().parse_args(
        [
            "annotate",
            str(video),
            "-o",
            str(tmp_path / "o.mp4"),
            "--api-url",
            A,
            "--api-url",
            B,
            "--model",
            "m/1",
            "--in-flight",
            "3",
        ]
    )
    job = check_arguments(args, api_choice(args, {}))
    assert not job.adaptive and job.per_server == 3 and job.options.in_flight == 6
