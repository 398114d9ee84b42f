"""The CLI's command line: flags before or after the command, the environment, usage errors."""

from __future__ import annotations

import io

import pytest

from async_reports_client.cli import build_parser, main


def test_global_flags_work_before_or_after_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ASYNC_REPORTS_URL", raising=False)
    before = build_parser().parse_args(["--url", "http://a", "-q", "status", "X"])
    after = build_parser().parse_args(["status", "X", "--url", "http://a", "-q"])
    assert (before.url, before.quiet) == (after.url, after.quiet) == ("http://a", True)
    neither = build_parser().parse_args(["status", "X"])
    assert (neither.url, neither.quiet, neither.retries) == (None, False, 4)


def test_the_environment_supplies_url_and_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASYNC_REPORTS_URL", "https://api.example/v1")
    monkeypatch.setenv("ASYNC_REPORTS_API_KEY", "k")
    args = build_parser().parse_args(["status", "X"])
    assert (args.url, args.api_key) == ("https://api.example/v1", "k")
    assert build_parser().parse_args(["status", "X", "--url", "http://b"]).url == "http://b"


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--url", "ftp://x", "status", "X"], "must be http(s)"),
        (["--url", "http://127.0.0.1:9", "submit", "--type", "T", "--date", "D", "--wait", "--via", "webhook",
          "--listen", "nonsense"], "--listen must be HOST:PORT"),
    ],
)  # fmt: skip
def test_bad_arguments_exit_2_with_a_reason(argv: list[str], says: str) -> None:
    err = io.StringIO()
    assert main(argv, stderr=err) == 2
    assert says in err.getvalue()


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["wait", "X", "--via", "carrier-pigeon"])
    assert exited.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
