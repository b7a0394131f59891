import argparse
from pathlib import Path

import pytest

from livecam.cli.kiosk import add_arguments as add_kiosk_arguments
from livecam.cli.kiosk import load_kiosk_config
from livecam.cli.kiosk_file import describe, find_line
from livecam.errors import ConfigError
from livecam.kiosk.config import KioskConfig
from livecam.kiosk.keys import QuitSequence, SequenceMatcher

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "kiosk.toml"


def load(tmp_path: Path, text: str, *flags: str) -> KioskConfig:
    path = tmp_path / "kiosk.toml"
    path.write_text(text, encoding="utf-8")
    parser = argparse.ArgumentParser()
    add_kiosk_arguments(parser)
    return load_kiosk_config(parser.parse_args(["--config", str(path), *flags]))


def test_the_example_file_loads() -> None:
    parser = argparse.ArgumentParser()
    add_kiosk_arguments(parser)
    config = load_kiosk_config(parser.parse_args(["--config", str(EXAMPLE)]))
    assert config.kiosk.web == ("127.0.0.1", 8080)


def test_values_from_every_table(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
# a lobby screen
[source]
input = "rtsp://cam.local/stream"
fps = 25

[api]
api-url = "http://127.0.0.1:9001"
model = "coco/1"
api-key = "sk-SECRET"

[overlay]
classes = ["person", "car"]
confidence = 55
labels = false
colors = { person = "#ff8800", car = [0, 0, 255] }
caption = "Lobby"

[display]
size = "1920x1080"
rotation = 270
mirror = true

[kiosk]
watchdog = 5
quit = "esc esc q"
web = "0.0.0.0:8080"
web-fps = 5
""",
    )
    assert config.source.input == "rtsp://cam.local/stream" and config.source.fps == 25.0
    assert config.api.model == "coco/1" and config.api.api_key == "sk-SECRET"
    assert config.overlay.classes == ("person", "car") and config.overlay.confidence == 55.0
    assert config.overlay.labels is False and config.overlay.hud is False
    assert config.overlay.colors == {"person": (0, 136, 255), "car": (255, 0, 0)}  # BGR
    assert config.display.size == (1920, 1080) and config.display.orientation.rotation == 270
    assert config.kiosk.quit.codes == (27, 27, ord("q"))
    assert config.kiosk.web == ("0.0.0.0", 8080) and config.kiosk.web_fps == 5.0
    assert "sk-SECRET" not in repr(config) and "sk-SECRET" not in str(describe(config))


def test_flags_override_the_file(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        '[display]\nrotation = 90\n[kiosk]\nweb = "8080"\n',
        "--rotation",
        "180",
        "--no-mirror",
        "--web",
        "127.0.0.1:9999",
        "--classes",
        "dog, cat",
        "--color",
        "dog=#00ff00",
        "--hud",
    )
    assert config.display.rotation == 180 and config.display.mirror is False
    assert config.kiosk.web == ("127.0.0.1", 9999)
    assert config.overlay.classes == ("dog", "cat") and config.overlay.hud is True
    assert config.overlay.colors == {"dog": (0, 255, 0)}


def test_web_defaults_to_loopback_and_off(tmp_path: Path) -> None:
    assert load(tmp_path, "").kiosk.web is None
    assert load(tmp_path, '[kiosk]\nweb = "8080"\n').kiosk.web == ("127.0.0.1", 8080)


def test_unknown_key_is_named_with_its_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"kiosk.toml line 5: display.rotate: unknown key.*'rotation'"):
        load(tmp_path, '[source]\ninput = "0"\n\n[display]\nrotate = 90\n')


def test_key_in_the_wrong_table_suggests_the_right_one(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError,
        match=r"line 2: api.confidence: unknown key here \(did you mean "
        r"'overlay.confidence'\?\)",
    ):
        load(tmp_path, "[api]\nconfidence = 50\n")


def test_unknown_table_is_named_with_its_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"line 3: displya: unknown table \(did you mean 'display'\?\)"):
        load(tmp_path, "[source]\n\n[displya]\nrotation = 90\n")


@pytest.mark.parametrize(
    "text, message",
    [
        ("[display]\nrotation = 45\n", r"line 2: display.rotation: must be one of 0, 90, 180, 270 \(got 45\)"),
        ('[display]\nrotation = "90"\n', r"line 2: display.rotation: must be one of .* \(got '90'\)"),
        ('[display]\nmirror = "yes"\n', r"line 2: display.mirror: must be true or false \(got 'yes'\)"),
        ("[kiosk]\nwatchdog = true\n", r"line 2: kiosk.watchdog: must be a number \(got true\)"),
        ("[kiosk]\n\nweb-fps = 0\n", r"line 3: kiosk.web-fps: must be at least 0.5"),
        ("[api]\nin-flight = 1.5\n", r"line 2: api.in-flight: must be a whole number"),
        ('[overlay]\nclasses = "person"\n', r"line 2: overlay.classes: must be a list of class names"),
        ('[display]\nsize = "big"\n', r"line 2: display.size: must be WIDTHxHEIGHT"),
        ('[kiosk]\nweb = "host:port"\n', r"line 2: kiosk.web: must be HOST:PORT"),
        ('[kiosk]\nquit = "ctrl+q"\n', r"line 2: kiosk.quit: .*without Ctrl"),
        ('[overlay.colors]\nperson = "#ff00zz"\n', r"line 2: overlay.colors.person: must be a colour"),
        ('[overlay]\ncolors = { person = "red" }\n', r"line 2: overlay.colors.person: must be a colour"),
        ('source = "0"\n', r"line 1: source: must be a table \[source\]"),
    ],
    ids=lambda v: v if len(v) < 30 else None,
)
def test_bad_values_are_rejected_with_key_and_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, text)


def test_every_problem_is_listed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, "[display]\nrotation = 45\nmirror = 1\n[kiosk]\nbogus = 1\n")
    lines = str(caught.value).splitlines()
    assert [line.split(": ")[1] for line in lines] == ["display.rotation", "display.mirror", "kiosk.bogus"]


def test_bad_flag_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--rotation: must be one of 0, 90, 180, 270 \(got 45\)"):
        load(tmp_path, "", "--rotation", "45")
    with pytest.raises(ConfigError, match=r"--color: use CLASS=#RRGGBB"):
        load(tmp_path, "", "--color", "person")


def test_toml_syntax_error_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"not valid TOML.*line 2"):
        load(tmp_path, "[display]\nrotation = = 90\n")


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_kiosk_arguments(parser)
    with pytest.raises(ConfigError, match="cannot read kiosk config"):
        load_kiosk_config(parser.parse_args(["--config", str(tmp_path / "nope.toml")]))


def test_find_line_handles_dotted_keys_and_quoted_headers() -> None:
    text = 'title = "x"\n[ "display" ]\nsize = "1x1"\n[kiosk]\n"web-fps" = 3\ndisplay.mirror = true\n'
    assert find_line(text, ("display", "size")) == 3
    assert find_line(text, ("kiosk", "web-fps")) == 5
    assert find_line(text, ("kiosk", "display", "mirror")) == 6
    assert find_line(text, ("nowhere", "at-all")) is None


def test_quit_sequence_typed_within_the_window_quits() -> None:
    matcher = SequenceMatcher(QuitSequence.parse("qqq"))
    assert not matcher.feed(ord("q"), 0.0)
    assert not matcher.feed(ord("Q"), 0.5)
    assert matcher.feed(ord("q") | 0x40000, 1.0)  # modifier bits are ignored
    slow = SequenceMatcher(QuitSequence.parse("qqq"))
    assert not any(slow.feed(ord("q"), t) for t in (0.0, 1.5, 3.0))
    other = SequenceMatcher(QuitSequence.parse("esc esc q"))
    assert not any(other.feed(k, 0.1) for k in (ord("q"), ord("q"), 27, 27))
    assert other.feed(ord("q"), 0.2)


def test_quit_sequence_none_never_quits() -> None:
    matcher = SequenceMatcher(QuitSequence.parse("none"))
    assert not any(matcher.feed(k, 0.0) for k in (ord("q"), 27, ord("q"), ord("q")))


def test_the_collect_table_takes_the_collect_flags_names(tmp_path: Path) -> None:
    from livecam.public.collecting import collect_config

    config = load(
        tmp_path,
        '[collect]\ndir = "/data/collect"\nstrategy = ["empty", "classes"]\nclasses = ["person"]\n'
        "band = [0.2, 0.5]\nmax-per-minute = 3\n",
        "--collect-max-total",
        "50",
    )
    collect = collect_config(vars(config.collect))
    assert collect is not None and collect.directory == Path("/data/collect")
    assert collect.strategies == ("empty", "classes") and collect.classes == ("person",)
    assert collect.band == (0.2, 0.5) and collect.max_per_minute == 3 and collect.max_total == 50
    assert collect_config(vars(load(tmp_path, "").collect)) is None
    example = load_kiosk_config(build_example_args())
    assert example.collect.dir is None and example.collect.strategy == ("low-confidence", "vanished")


def build_example_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_kiosk_arguments(parser)
    return parser.parse_args(["--config", str(EXAMPLE)])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[collect]\nstrategy = "blurry"\n', "collect.strategy: unknown 'blurry'"),
        ('[collect]\nband = "0.6-0.2"\n', "collect.band: must satisfy 0 <= LOW <= HIGH <= 1"),
        ("[collect]\nmax-per-hour = -1\n", "collect.max-per-hour: must be between 0"),
        ("[collect]\nfolder = 'x'\n", "collect.folder: unknown key"),
    ],
)
def test_bad_collect_values_are_named_with_key_and_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")) as info:
        load(tmp_path, text)
    assert " line " in str(info.value)


def test_collect_flags_without_a_folder_are_refused() -> None:
    from livecam.public.collecting import collect_config

    with pytest.raises(ConfigError, match="--collect-max-total: only with --collect DIR"):
        collect_config({"max_total": 5})


def test_in_flight_takes_the_same_values_as_the_run_command(tmp_path: Path) -> None:
    from livecam.cli import kiosk
    from livecam.connection import AUTO_MAX_IN_FLIGHT

    auto = load(tmp_path, '[api]\nin-flight = "auto"\n')
    assert auto.api.in_flight == "auto"
    pipeline = kiosk.live_config(auto)
    assert pipeline.adaptive and pipeline.in_flight == AUTO_MAX_IN_FLIGHT
    fixed = kiosk.live_config(load(tmp_path, "[api]\nin-flight = 2\n", "--in-flight", "24"))
    assert (fixed.in_flight, fixed.adaptive) == (24, False)
    with pytest.raises(ConfigError, match=r"--in-flight: must be at least 1 and at most 32"):
        load(tmp_path, "", "--in-flight", "0")
