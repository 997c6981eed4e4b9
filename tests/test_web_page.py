"""The chat page at `/` in a real browser: headless Chromium (Debian's `chromium`, driven by the PyPI `playwright`
package, which downloads no browser of its own) against the real server. Nothing is mocked: answers come from the
embedded default chat model and from a tiny DeepSeek-R1 distill (random weights, so it thinks and never stops
thinking). Screenshots go to $GLM_EDGE_ARTIFACTS (default: pytest's tmp dir)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from glm_edge.web import static_dir
from tests.server_process import running_server

CHROMIUM = Path("/usr/bin/chromium")

# root on this machine (hence no sandbox), no GPU, nothing in the background that would go online
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
KEY = "page-test-key"
R1_ID = "DeepSeek-R1-Distill-Qwen-1.5B"
BUSY, ABORTED = r"(?:engine_)?slots_busy", r"(?:engine_)?requests_aborted(?:_total)?"


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(os.environ["GLM_EDGE_ARTIFACTS"]) if os.environ.get("GLM_EDGE_ARTIFACTS") \
        else tmp_path_factory.mktemp("web-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def default_server(tmp_path_factory: pytest.TempPathFactory, default_gguf: Path) -> Iterator[str]:
    """The embedded default chat model behind an API key, one slot (so a slot left busy would show)."""
    log = tmp_path_factory.mktemp("web-server") / "serve.log"
    with running_server("--no-embedding", "--parallel", "1", "--ctx-size", "2048", "--threads", "2",
                        "--api-key", KEY, log_path=log) as url:
        yield url


@pytest.fixture(scope="module")
def r1_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from glm_edge_convert import synthesize

    folder = tmp_path_factory.mktemp("web-r1")
    gguf = synthesize("qwen2", "tiny", folder / f"{R1_ID}-tiny.gguf", progress=False)
    with running_server(str(gguf), "--no-embedding", "--ctx-size", "1024", "--parallel", "1",
                        log_path=folder / "serve.log") as url:
        yield url


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium): the browser tests drive "
                    "/usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")  # a fresh user-data dir
    with sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(str(profile), executable_path=str(CHROMIUM), headless=True,
                                                    args=CHROMIUM_ARGS, viewport={"width": 1200, "height": 800})
        ctx.set_default_timeout(30_000)
        yield ctx
        ctx.close()


@pytest.fixture()
def page(context: Any) -> Iterator[Any]:
    page = context.new_page()
    errors: list[str] = []

    def console(msg: Any) -> None:
        # Failed loads are HTTP statuses, checked where they matter (the 401 before the key is given, the 404
        # of the hostile <img src="x">). Chromium checks the CSP on the event handlers of the inert document
        # that DOMPurify parses, and logs that as a violation from purify.min.js: nothing ran; a handler that
        # reached the page's own DOM would be reported from the page.
        if msg.type != "error" or msg.text.startswith("Failed to load resource"):
            return
        if "Content Security Policy" in msg.text and msg.location["url"].endswith("/static/vendor/purify.min.js"):
            return
        errors.append(f"{msg.text} ({msg.location['url']})")

    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", console)
    yield page
    page.close()
    assert not errors, errors  # a script error, or markup that tried to run code in the page


def open_page(page: Any, url: str) -> None:
    """Load the page with empty storage for that server (each server is its own origin)."""
    page.goto(url)
    page.evaluate("localStorage.clear()")
    page.reload()
    page.wait_for_selector("body[data-state=idle]")


def chat_ids(url: str) -> list[str]:
    res = httpx.get(f"{url}/models", headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
    return [m["id"] for m in res.json()["data"] if m["object"] == "chat.completion"]


def sse_deltas(body: str) -> tuple[str, str]:
    """(content, reasoning) joined from the deltas of one SSE body, as the server sent them."""
    content, reasoning = "", ""
    for line in body.splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            for choice in json.loads(line[6:]).get("choices", []):
                content += choice["delta"].get("content") or ""
                reasoning += choice["delta"].get("reasoning_content") or ""
    return content, reasoning


def stored_messages(page: Any) -> list[dict[str, Any]]:
    return page.evaluate("""() => {
        const id = JSON.parse(localStorage.getItem('glm-edge.current'));
        return JSON.parse(localStorage.getItem('glm-edge.conversations')).find(c => c.id === id).messages;
    }""")


def send_and_wait(page: Any, text: str) -> tuple[Any, str]:
    """Type a message, press Enter, wait for the stream to end; (the request, the SSE body the page received)."""
    with page.expect_request("**/v1/chat/completions") as request, \
            page.expect_response("**/v1/chat/completions") as response:
        page.fill("#input", text)
        page.press("#input", "Enter")
    body = response.value.text()  # the whole stream, once it has ended
    page.wait_for_selector("body[data-state=idle]")
    return request.value, body


def set_field(page: Any, selector: str, value: str) -> None:
    page.fill(selector, value)
    page.dispatch_event(selector, "change")


def metric(url: str, pattern: str) -> float:
    """The one sample whose name matches `pattern` (glm_edge_slots_busy and glm_edge_engine_slots_busy alike)."""
    text = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {KEY}"}, timeout=30).text
    found = re.findall(rf"^glm_edge_{pattern}(?:\{{[^}}]*\}})?\s+(\S+)$", text, re.M)
    assert len(found) == 1, f"/metrics has {len(found)} samples matching glm_edge_{pattern}:\n{text}"
    return float(found[0])


def test_key_models_and_streamed_markdown_answer(page: Any, default_server: str, artifacts: Path) -> None:
    open_page(page, default_server)
    assert "API key" in page.inner_text("#status")  # the server asks for a key, the picker is empty
    assert page.eval_on_selector_all("#model option", "os => os.length") == 0
    set_field(page, "#api-key", KEY)
    page.wait_for_selector("#model option", state="attached")
    ids = chat_ids(default_server)
    assert page.eval_on_selector_all("#model option", "os => os.map(o => o.value)") == ids
    model = ids[0]
    set_field(page, "#temperature", "0")
    set_field(page, "#max-tokens", "200")
    page.click("#settings summary")  # the system prompt and tools sit in a folded panel
    set_field(page, "#system", "You are a concise assistant. Answer with code in a fenced Markdown block.")

    request, body = send_and_wait(page, "Write a Python function add(a, b) that returns a + b.")
    assert request.headers["authorization"] == f"Bearer {KEY}"
    sent = json.loads(request.post_data)
    assert sent["model"] == model and sent["stream"] is True
    assert sent["temperature"] == 0 and sent["max_tokens"] == 200
    assert sent["messages"] == [
        {"role": "system", "content": "You are a concise assistant. Answer with code in a fenced Markdown block."},
        {"role": "user", "content": "Write a Python function add(a, b) that returns a + b."}]

    streamed, _ = sse_deltas(body)
    assert streamed.strip()
    assistant = stored_messages(page)[-1]
    assert assistant["role"] == "assistant" and assistant["content"] == streamed  # every delta appended once
    answer = page.locator(".msg.assistant .content").last
    assert answer.inner_text().strip()
    fences = re.findall(r"```[^\n]*\n(.*?)\n```", streamed, re.S)
    if "instruct" in model.lower() or fences:  # an instruct model answers this with a code block
        assert fences, f"{model} wrote no fenced code block: {streamed!r}"
        code = answer.locator("pre code.hljs").first
        assert code.inner_text().strip() == fences[0].strip()
        assert code.locator("span[class^=hljs-]").count() > 0  # highlighted, not just escaped
    page.screenshot(path=str(artifacts / "default-model-answer.png"), full_page=True)

    # what was rendered while streaming equals a fresh render of the stored message; the key and the
    # conversation survive a reload
    streamed_html = answer.inner_html()
    page.reload()
    page.wait_for_selector("body[data-state=idle]")
    assert page.input_value("#api-key") == KEY and page.input_value("#max-tokens") == "200"
    assert page.locator("#conversations li").count() == 1
    assert page.locator(".msg.assistant .content").last.inner_html() == streamed_html


def test_stop_aborts_the_stream_and_frees_the_slot(page: Any, default_server: str, artifacts: Path) -> None:
    open_page(page, default_server)
    set_field(page, "#api-key", KEY)
    page.wait_for_selector("#model option", state="attached")
    set_field(page, "#temperature", "0")
    set_field(page, "#max-tokens", "1500")
    aborted_before = metric(default_server, ABORTED)
    page.fill("#input", "Count from 1 to 500, one number per line, with no other text.")
    page.press("#input", "Enter")
    page.wait_for_selector("body[data-state=streaming]")
    assert page.is_visible("#stop") and not page.is_visible("#send")
    page.wait_for_function("() => document.querySelector('.msg.assistant:last-child .content').innerText.length > 20")
    page.click("#stop")
    page.wait_for_selector("body[data-state=idle]")
    stopped_at = time.monotonic()
    assert page.is_visible("#send") and not page.is_visible("#stop")
    assert page.inner_text(".msg.assistant:last-child .note") == "stopped"
    shown = page.inner_text(".msg.assistant:last-child .content")
    assistant = stored_messages(page)[-1]
    assert assistant["stopped"] is True and assistant["content"] and "finish_reason" not in assistant
    page.screenshot(path=str(artifacts / "stopped-stream.png"), full_page=True)

    # the engine aborted the request (not left to run its 1500 tokens) and freed its only slot, and the next
    # request is served (the waits are bounds for a hung server, not speed checks)
    while metric(default_server, BUSY) != 0:
        assert time.monotonic() - stopped_at < 30, "the slot is still busy 30 s after the stop"
        time.sleep(0.1)
    assert metric(default_server, ABORTED) == aborted_before + 1
    res = httpx.post(f"{default_server}/v1/chat/completions", headers={"Authorization": f"Bearer {KEY}"},
                     json={"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}, timeout=120)
    assert res.status_code == 200, res.text
    assert page.inner_text(".msg.assistant:last-child .content") == shown  # nothing arrived after the stop


WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "The city name"}},
                   "required": ["city"]}}}


def sse_tool_calls(body: str) -> list[tuple[str, str]]:
    """(name, arguments) of each streamed tool call, joined from its deltas."""
    calls: dict[int, list[str]] = {}
    for line in body.splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            for choice in json.loads(line[6:]).get("choices", []):
                for delta in choice["delta"].get("tool_calls") or []:
                    call = calls.setdefault(delta["index"], ["", ""])
                    call[0] += delta.get("function", {}).get("name") or ""
                    call[1] += delta.get("function", {}).get("arguments") or ""
    return [(name, arguments) for name, arguments in (calls[i] for i in sorted(calls))]


def test_tools_offered_and_tool_calls_shown(page: Any, default_server: str, artifacts: Path) -> None:
    open_page(page, default_server)
    set_field(page, "#api-key", KEY)
    page.wait_for_selector("#model option", state="attached")
    model = page.input_value("#model")
    set_field(page, "#temperature", "0")
    set_field(page, "#max-tokens", "96")
    page.click("#settings summary")
    set_field(page, "#tools", "not json")
    page.fill("#input", "What's the weather in Paris?")
    page.press("#input", "Enter")
    assert page.inner_text("#status").startswith("Tools:")  # refused before anything is sent
    assert page.locator(".msg").count() == 0

    set_field(page, "#tools", json.dumps([WEATHER_TOOL]))
    request, body = send_and_wait(page, "What's the weather in Paris?")
    assert json.loads(request.post_data)["tools"] == [WEATHER_TOOL]
    calls = sse_tool_calls(body)
    if "qwen" in model.lower():  # the Qwen default calls get_weather for this (tests/test_server_qwen_default.py)
        assert [name for name, _ in calls] == ["get_weather"], body
    shown = page.locator(".msg.assistant:last-child .tool-call")
    assert shown.count() == len(calls)
    for i, (name, arguments) in enumerate(calls):
        assert shown.nth(i).locator(".tool-name").inner_text() == name
        assert json.loads(shown.nth(i).locator(".tool-arguments").inner_text()) == json.loads(arguments)
    assert [(c["function"]["name"], c["function"]["arguments"]) for c in stored_messages(page)[-1].get(
        "tool_calls", [])] == calls
    page.screenshot(path=str(artifacts / "tool-call-streamed.png"), full_page=True)


def test_reasoning_in_a_collapsible_block(page: Any, r1_server: str, artifacts: Path) -> None:
    open_page(page, r1_server)
    assert page.eval_on_selector_all("#model option", "os => os.map(o => o.value)") == [R1_ID]
    set_field(page, "#temperature", "0")
    set_field(page, "#max-tokens", "48")
    # note whether the block was ever open while the stream ran (it opens while the model thinks)
    page.evaluate("""() => {
        window.__openWhileStreaming = false;
        new MutationObserver(() => {
            const block = document.querySelector('.msg.assistant:last-child details.reasoning');
            if (block && block.open && document.body.dataset.state === 'streaming') window.__openWhileStreaming = true;
        }).observe(document.getElementById('log'), {subtree: true, childList: true, attributes: true});
    }""")
    request, body = send_and_wait(page, "Why is the sky blue?")
    assert page.evaluate("() => window.__openWhileStreaming") is True
    assert "authorization" not in request.headers  # no key given, none sent
    content, reasoning = sse_deltas(body)
    assert reasoning and not content  # random weights never write </think>
    stored = stored_messages(page)[-1]
    assert stored["reasoning"] == reasoning and stored["content"] == ""

    block = page.locator(".msg.assistant:last-child details.reasoning")
    assert block.is_visible() and block.get_attribute("open") is None  # folded once the answer is done
    assert not page.is_visible(".msg.assistant:last-child .reasoning-text")
    page.click(".msg.assistant:last-child details.reasoning summary")
    assert block.get_attribute("open") is not None
    assert page.is_visible(".msg.assistant:last-child .reasoning-text")
    assert block.locator(".reasoning-text").text_content() == reasoning
    page.screenshot(path=str(artifacts / "r1-reasoning.png"), full_page=True)

    # a second turn sends the first answer back without its reasoning
    request, _ = send_and_wait(page, "And at sunset?")
    messages = json.loads(request.post_data)["messages"]
    assert [m["role"] for m in messages] == ["user", "user"]  # the empty answer (all reasoning) is left out


def test_a_refused_request_shows_the_servers_error(page: Any, r1_server: str) -> None:
    """The R1 distills take no tools: the 400's message is shown in the answer's place and never sent back."""
    open_page(page, r1_server)
    page.click("#settings summary")
    set_field(page, "#tools", json.dumps([WEATHER_TOOL]))
    request, _ = send_and_wait(page, "What's the weather in Paris?")
    direct = httpx.post(f"{r1_server}/v1/chat/completions", json=json.loads(request.post_data), timeout=60)
    assert direct.status_code == 400
    error = page.locator(".msg.assistant.error .content")
    assert error.inner_text() == f"400: {direct.json()['error']['message']}"
    set_field(page, "#tools", "")
    set_field(page, "#max-tokens", "8")
    request, _ = send_and_wait(page, "Hello")
    assert [m["role"] for m in json.loads(request.post_data)["messages"]] == ["user", "user"]
    assert page.locator(".msg.assistant").count() == 2 and page.locator(".msg.assistant.error").count() == 1


HOSTILE = """Here is the code:

```python
def add(a, b):
    return a + b
```

| a | b |
|---|---|
| 1 | 2 |

<img src="x" onerror="window.__pwned = 'img'">
<script>window.__pwned = 'script'</script>
[click](javascript:window.__pwned='link') and <a href="https://example.com/" onclick="window.__pwned='a'">a site</a>
<iframe src="javascript:window.__pwned='iframe'"></iframe>
"""


def stored_conversations(*conversations: tuple[str, list[dict[str, Any]]]) -> str:
    items = [{"id": f"c{i}", "title": title, "updated": i, "messages": messages}
             for i, (title, messages) in enumerate(conversations)]
    return json.dumps(items)


def test_markdown_is_highlighted_and_sanitised_and_conversations_are_kept(page: Any, r1_server: str,
                                                                          artifacts: Path) -> None:
    open_page(page, r1_server)
    tool_call = {"id": "call_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    data = stored_conversations(
        ("hostile", [{"role": "user", "content": "show me"}, {"role": "assistant", "content": HOSTILE}]),
        ("weather", [{"role": "user", "content": "Weather in Paris?"},
                     {"role": "assistant", "content": "", "tool_calls": [tool_call]}]))
    page.evaluate("([data]) => { localStorage.setItem('glm-edge.conversations', data);"
                  " localStorage.setItem('glm-edge.current', JSON.stringify('c0')); }", [data])
    page.reload()
    page.wait_for_selector("body[data-state=idle]")

    answer = page.locator(".msg.assistant .content").first
    code = answer.locator("pre code.hljs.language-python")
    assert code.inner_text() == "def add(a, b):\n    return a + b"
    assert code.locator("span.hljs-keyword").all_inner_texts()[:2] == ["def", "return"]
    assert answer.locator("table td").all_inner_texts() == ["1", "2"]
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.hover(".msg.assistant pre")
    page.click(".msg.assistant pre button.copy")
    assert page.evaluate("() => navigator.clipboard.readText()") == "def add(a, b):\n    return a + b"
    assert answer.locator("a[href='https://example.com/']").get_attribute("onclick") is None
    assert answer.locator("a[href='https://example.com/']").get_attribute("rel") == "noopener noreferrer"
    html = answer.inner_html()
    assert "<script" not in html and "onerror" not in html and "onclick" not in html
    assert "<iframe" not in html
    assert page.eval_on_selector_all(".msg.assistant .content [href], .msg.assistant .content [src]",
                                     "els => els.filter(e => /^\\s*javascript:/i.test(e.getAttribute('href') ||"
                                     " e.getAttribute('src'))).length") == 0
    assert answer.locator("img").count() == 1 and answer.locator("img").get_attribute("onerror") is None
    page.wait_for_timeout(300)  # give an <img onerror> time to fire if it had survived
    assert page.evaluate("window.__pwned") is None
    page.screenshot(path=str(artifacts / "markdown-sanitised.png"), full_page=True)

    # the list: switch, new, delete; each survives a reload
    assert page.locator("#conversations li .open").all_inner_texts() == ["hostile", "weather"]
    page.click("#conversations li[data-id=c1] .open")
    call = page.locator(".msg.assistant .tool-call")
    assert call.locator(".tool-name").inner_text() == "get_weather"
    assert json.loads(call.locator(".tool-arguments").inner_text()) == {"city": "Paris"}
    assert page.locator(".msg.user").inner_text() == "Weather in Paris?"
    page.screenshot(path=str(artifacts / "tool-call.png"), full_page=True)
    page.click("#new-chat")
    assert page.locator(".msg").count() == 0 and page.locator("#conversations li").count() == 3
    page.click("#conversations li[data-id=c0] .delete")
    page.reload()
    page.wait_for_selector("body[data-state=idle]")
    ids = page.eval_on_selector_all("#conversations li", "lis => lis.map(li => li.dataset.id)")
    assert len(ids) == 2 and "c0" not in ids and "c1" in ids
    stored = json.loads(page.evaluate("localStorage.getItem('glm-edge.conversations')"))
    assert [c["id"] for c in stored] == ids


def test_page_and_vendored_files_are_served(default_server: str) -> None:
    page = httpx.get(default_server, timeout=30)
    assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    for name in re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text):
        res = httpx.get(default_server + name, timeout=30)  # open without the key, like the page
        assert res.status_code == 200 and len(res.content) > 500, name


def test_vendored_files_are_the_published_ones() -> None:
    """Each vendored library is the npm file its README names, byte for byte, with its licence beside it."""
    vendor = static_dir() / "vendor"
    rows = re.findall(r"^\| `([^`]+)` \| `([^`]+)`.*\| ([^|]+) \| `([0-9a-f]{64})` \|$",
                      (vendor / "README.md").read_text(), re.M)
    assert {name for name, *_ in rows} == {p.name for p in vendor.iterdir()
                                           if p.suffix in (".js", ".css")}
    for name, package, licences, sha256 in rows:
        assert hashlib.sha256((vendor / name).read_bytes()).hexdigest() == sha256, name
        for licence in re.findall(r"`([^`]+LICENSE[^`]*)`", licences):
            assert (vendor / licence).stat().st_size > 500, licence
