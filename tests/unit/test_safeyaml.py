"""The safe YAML loader: YAML 1.2 scalars, no aliases or merges, bounded size and depth."""

from __future__ import annotations

import math
import resource
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller import safeyaml
from controller.errors import excerpt
from controller.safeyaml import YamlError, load_yaml, read_yaml_text

# The C event parser when PyYAML has libyaml, and the pure-Python one: both must agree.
LOADERS = [safeyaml._PyLoader, safeyaml._Loader]


@pytest.fixture(params=LOADERS, ids=lambda cls: cls.__name__)
def loader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(safeyaml, "_Loader", request.param)
    yield


def error_of(text: str, **kw: int) -> YamlError:
    with pytest.raises(YamlError) as info:
        load_yaml(text, **kw)
    message = str(info.value)
    assert "\n" not in message and len(message) < 300, message
    return info.value


@pytest.mark.usefixtures("loader")
@pytest.mark.parametrize(
    ("text", "value"),
    [
        # YAML 1.1 would read these as 90, 16, 15, 8, 1000, True, False, True.
        ("1:30", "1:30"),
        ("0x10", "0x10"),
        ("0o17", "0o17"),
        ("010", "010"),
        ("1_000", "1_000"),
        ("yes", "yes"),
        ("off", "off"),
        ("y", "y"),
        ("2001-12-14", "2001-12-14"),  # not a timestamp
        ("true", True),
        ("FALSE", False),
        ("0", 0),
        ("-17", -17),
        ("+3", 3),
        ("4791", 4791),
        ("9223372036854775808", 9223372036854775808),
        ("1e308", 1e308),
        ("1E3", 1000.0),
        ("0.5", 0.5),
        (".5", 0.5),
        ("1.", 1.0),
        ("-.inf", -math.inf),
        ("~", None),
        ("null", None),
        ("", None),
        ("'5'", "5"),
        ("!!str 5", "5"),
        ("!!float 5", 5.0),
    ],
)
def test_yaml_1_2_core_scalars(text: str, value: object) -> None:
    got = load_yaml(f"v: {text}")
    assert isinstance(got, dict)
    assert got["v"] == value and type(got["v"]) is type(value)


@pytest.mark.usefixtures("loader")
def test_nan_is_a_float() -> None:
    got = load_yaml("v: .nan")
    assert isinstance(got, dict) and math.isnan(got["v"])


@pytest.mark.usefixtures("loader")
@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("a: &x 1\nb: 2", "anchors (&'x') are not allowed"),
        ("a: *x", "aliases (*'x') are not allowed"),
        ("<<: {a: 1}\nb: 2", "merge keys (<<) are not allowed"),
        ("!!merge <<: {a: 1}\nb: 2", "merge keys (<<) are not allowed"),
        ("a: 1\na: 2", "key 'a' given twice (first on line 1)"),
        ("a: 1\n'a': 2", "key 'a' given twice"),
        ("a: 1\n!!str a: 2", "key 'a' given twice"),
        ("1: a\n1.0: b", "given twice"),
        ("{a: 1, a: 2}", "key 'a' given twice"),
        ("m: {x: 1, x: 2}", "key 'x' given twice"),
        ("? [a]\n: 1", "mapping keys must be plain values"),
        ("a: !!python/object/apply:os.system [ls]", "is not allowed"),
        ("a: !!binary aGVsbG8=", "tag 'tag:yaml.org,2002:binary' is not allowed"),
        ("a: !!set {x}", "is not allowed"),
        ("a: !!timestamp 2001-12-14", "is not allowed"),
        ("a: !custom x", "tag '!custom' is not allowed"),
        ("a: !!int 0x10", "'0x10' is not a decimal integer"),
        ("a: !!bool yes", "'yes' is not true or false"),
        ('a: "\\ud800"', "surrogate | invalid Unicode"),  # ours, or libyaml's own
        ("a: " + "9" * 101, "decimal integer of 101 characters is too long"),
        ("a: 1\n---\nb: 2", "expected a single document"),
        ("a: \x1b]0;owned\x07", "character 27 at offset 3 is not allowed"),
        ("[1, 2", "line "),
    ],
)
def test_refused_documents_say_why_in_one_line(text: str, fragment: str) -> None:
    message = str(error_of(text))
    assert any(alternative in message for alternative in fragment.split(" | ")), message


@pytest.mark.usefixtures("loader")
def test_error_positions_are_one_based() -> None:
    err = error_of("a: 1\nb: 2\nb: 3\n")
    assert (err.line, err.column) == (3, 1)
    assert str(err).startswith("line 3, column 1: ")


def test_alias_bomb_is_refused_without_expanding() -> None:
    # The classic "billion laughs": 9 levels of 9 aliases would be 9**9 strings.
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in "bcdefghi":
        prev = chr(ord(level) - 1)
        lines.append(f"{level}: &{level} [{','.join(['*' + prev] * 9)}]")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    err = error_of("\n".join(lines))
    assert "anchors (&'a') are not allowed" in str(err)
    # Generous bounds: the expansion would take gigabytes and many seconds.
    assert time.perf_counter() - started < 1.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50_000  # KiB


@pytest.mark.usefixtures("loader")
@pytest.mark.parametrize("opening", ["[", "{a: ", "- "])
def test_deep_nesting_is_an_error_not_a_recursion_error(opening: str) -> None:
    text = opening * 5000  # "- - - ..." nests block sequences on one line
    err = error_of(text)
    assert "nested more than 32 levels deep" in str(err)
    assert load_yaml("[" * 32 + "]" * 32) == eval("[" * 31 + "[]" + "]" * 31)
    assert "nested more than 4" in str(error_of("[[[[[1]]]]]", max_depth=4))


def test_size_is_bounded(tmp_path: Path) -> None:
    assert "document of 2001 bytes is larger than the limit of 2000" in str(
        error_of("#" * 2001, max_bytes=2000)
    )
    assert "larger than the limit of 2000" in str(error_of("é" * 1001, max_bytes=2000))
    big = tmp_path / "big.yaml"
    big.write_bytes(b"a: 1\n" + b"#" * 5000)
    with pytest.raises(YamlError, match="file is larger than the limit of 4096 bytes"):
        read_yaml_text(big, max_bytes=4096)


def test_file_decoding(tmp_path: Path) -> None:
    path = tmp_path / "doc.yaml"
    path.write_bytes("\ufeffname: é\n".encode())
    assert load_yaml(read_yaml_text(path)) == {"name": "é"}
    path.write_bytes(b"name: \xff\n")
    with pytest.raises(YamlError, match=r"not UTF-8 text \(byte 6\)"):
        read_yaml_text(path)
    with pytest.raises(OSError):
        read_yaml_text(tmp_path / "missing.yaml")


def test_error_excerpts_are_short() -> None:
    err = error_of("a: !" + "x" * 100_000 + " 1")
    assert len(str(err)) < 200
    assert excerpt("x" * 10**6) == repr("x" * 60) + "... (1000000 characters)"
    assert len(excerpt(10**4000)) < 100
    assert len(excerpt([list(range(1000))] * 1000)) < 200
