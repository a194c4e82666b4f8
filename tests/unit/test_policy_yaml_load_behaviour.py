"""Reading one YAML document for any document kind: its errors, and its size limit.

Guards :func:`controller.policy.parse.load_yaml_document`: malformed YAML,
empty files and null documents are :class:`PolicyFileError` starting with
the source's name (``<input>`` when none is given), and a document larger than
the caller's ``max_bytes`` is refused even when the loader's own ceiling is
higher.
"""

from __future__ import annotations

import pytest

from controller.policy.parse import PolicyFileError, load_yaml_document


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("name: [1, 2\n", "invalid YAML"),
        ("# nothing here\n", "file is empty; expected a policy document"),
        ("null\n", "document is null; expected a mapping"),
    ],
)
def test_errors_start_with_the_default_source(text: str, reason: str) -> None:
    with pytest.raises(PolicyFileError) as err:
        load_yaml_document(text)
    assert err.value.file == "<input>"
    assert str(err.value).startswith(f"<input>: {reason}")


def test_errors_name_the_given_source_and_kind() -> None:
    with pytest.raises(PolicyFileError) as err:
        load_yaml_document("", source="jobs/train.yaml", kind="job")
    assert str(err.value) == "jobs/train.yaml: file is empty; expected a job document"


def test_the_callers_size_limit_is_enforced() -> None:
    text = "name: " + "x" * 200 + "\n"
    assert load_yaml_document(text, max_bytes=1024) == {"name": "x" * 200}
    with pytest.raises(PolicyFileError) as err:
        load_yaml_document(text, source="big.yaml", max_bytes=100)
    assert err.value.file == "big.yaml"
    assert str(err.value).startswith("big.yaml: invalid YAML")
    assert "larger than the limit of 100" in str(err.value)
