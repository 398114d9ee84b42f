"""The local runtime serves the browser page: the files of web/ and a generated config.json, only
where no route matches, and nothing outside the folder; every other path is still API Gateway's 403."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from local.gateway import ApiGateway, GatewayAnswer
from local.runtime import WEB_DIR, RuntimeConfig
from tests.fake_gateway import fake_gateway

PAGE_CONFIG = {"apiUrl": "http://127.0.0.1:3000", "apiKey": "local-dev-key"}


def gateway(web_dir: Path | None, page_config: dict[str, str] | None = PAGE_CONFIG) -> ApiGateway:
    api, _ = fake_gateway(
        {"local-dev-key": "local"},
        web_dir=web_dir,
        page_config=(lambda: page_config) if page_config is not None else None,
    )
    return api


def get(api: ApiGateway, target: str, method: str = "GET") -> GatewayAnswer:
    return api.handle(method, target, {}, b"", "127.0.0.1")


@pytest.fixture
def site(tmp_path: Path) -> Path:
    web = tmp_path / "web"
    web.mkdir()
    (web / "index.html").write_text("<!doctype html><title>page</title>")
    (web / "app.js").write_text("export {};")
    (web / "style.css").write_text("body {}")
    (web / ".hidden").write_text("secret")
    (web / "sub").mkdir()
    (web / "sub" / "inner.js").write_text("inner")
    (tmp_path / "outside.txt").write_text("outside")
    return web


@pytest.mark.parametrize(
    ("target", "content_type", "name"),
    [
        ("/", "text/html; charset=utf-8", "index.html"),
        ("/index.html", "text/html; charset=utf-8", "index.html"),
        ("/app.js", "text/javascript; charset=utf-8", "app.js"),
        ("/style.css?v=2", "text/css; charset=utf-8", "style.css"),
    ],
)
def test_the_files_of_the_web_folder_are_served_with_their_type_and_no_cache(
    site: Path, target: str, content_type: str, name: str
) -> None:
    answer = get(gateway(site), target)
    assert answer.status == 200
    assert answer.headers["Content-Type"] == content_type
    assert answer.headers["Cache-Control"] == "no-cache"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.body == (site / name).read_bytes()


def test_head_answers_as_get_does(site: Path) -> None:
    api = gateway(site)
    head, full = get(api, "/", "HEAD"), get(api, "/")
    assert (head.status, head.headers) == (full.status, full.headers)  # the server sends no body for HEAD


def test_config_json_names_the_runtimes_api_and_key(site: Path) -> None:
    answer = get(gateway(site), "/config.json")
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.headers["Cache-Control"] == "no-cache"
    assert json.loads(answer.body) == PAGE_CONFIG


@pytest.mark.parametrize(
    "target",
    [
        "/../outside.txt",
        "/%2e%2e/outside.txt",
        "/sub/inner.js",
        "/sub",
        "/.hidden",
        "//etc/passwd",
        "/missing.js",
        "/api/v1/nothing-here",
    ],
)
def test_nothing_but_the_folders_own_files_is_served(site: Path, target: str) -> None:
    # WHEN a path that is not one of the folder's files is asked for
    answer = get(gateway(site), target)
    # THEN it is API Gateway's answer to an unknown path, as before the page existed
    assert answer.status == 403
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert json.loads(answer.body)["detail"] == "Missing Authentication Token"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_only_get_and_head_fetch_the_page(site: Path, method: str) -> None:
    assert get(gateway(site), "/", method).status == 403


def test_without_a_web_folder_nothing_is_served(site: Path) -> None:
    api = gateway(None)
    assert get(api, "/").status == get(api, "/config.json").status == 403
    assert get(gateway(site.parent / "no-such-folder"), "/").status == 403


def test_the_runtime_serves_the_repositorys_page_by_default() -> None:
    assert RuntimeConfig().web_dir == WEB_DIR
    assert {"index.html", "app.js", "style.css"} <= {p.name for p in WEB_DIR.iterdir()}
    index = get(gateway(WEB_DIR), "/")
    assert b'<script type="module" src="app.js"></script>' in index.body
