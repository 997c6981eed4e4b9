"""The openai-agents SDK running a one-tool agent against the real server on the embedded default chat model,
Qwen2.5-Coder-0.5B-Instruct: `Agent` with a `@function_tool`, over an `AsyncOpenAI` client pointed at the server,
`Runner.run_sync`, tracing off (it would post traces to OpenAI); once with `OpenAIChatCompletionsModel`
(/v1/chat/completions) and once with `OpenAIResponsesModel`, the SDK's default (/v1/responses).

What the 0.5B model can follow: left to `tool_choice` auto it writes the SDK's strict argument schema back as text
next to its call, and after a tool result (with no user turn after it, which is how the agent loop goes) it
repeats the call. So the agent asks for tool_choice "required" (a grammar makes the first turn one clean
<tool_call>; the SDK then resets tool_choice to auto, as it does by default, so the loop can end), the tool
is not strict (a plain schema), and the result is short. Greedy, the run is: get_weather(Paris), the same call
once more, then a final answer that states the tool's result. The model phrases that answer as a JSON object
({"response": "sunny, 18 degrees Celsius"}): the assertions below check that the tool ran and that the final
answer carries its result, not the answer's wording, which is the model's quality and not the server's."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from agents import (
    Agent,
    ModelSettings,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    Runner,
    ToolCallItem,
    ToolCallOutputItem,
    function_tool,
    set_tracing_disabled,
)
from openai import AsyncOpenAI

from tests.server_process import running_default

MODEL = "qwen2.5-coder-0.5b-instruct"
WEATHER = "sunny, 18 degrees Celsius"


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory, qwen_gguf: Path) -> Iterator[str]:
    with running_default(tmp_path_factory.mktemp("agents-server")) as url:
        yield url


@pytest.mark.parametrize("api", ["chat_completions", "responses"])
def test_one_tool_agent(base_url: str, api: str) -> None:
    set_tracing_disabled(True)
    asked: list[str] = []

    @function_tool(strict_mode=False)
    def get_weather(city: str) -> str:
        """Get the current weather in a city."""
        asked.append(city)
        return WEATHER

    client = AsyncOpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=180)
    model = (OpenAIChatCompletionsModel(model=MODEL, openai_client=client) if api == "chat_completions"
             else OpenAIResponsesModel(model=MODEL, openai_client=client))
    agent = Agent(name="weather", instructions="You are a helpful assistant.", model=model, tools=[get_weather],
                  model_settings=ModelSettings(temperature=0, max_tokens=48, tool_choice="required"))
    result = Runner.run_sync(agent, "What's the weather in Paris?", max_turns=4)
    assert asked and all("Paris" in city for city in asked), asked
    calls = [item for item in result.new_items if isinstance(item, ToolCallItem)]
    outputs = [item for item in result.new_items if isinstance(item, ToolCallOutputItem)]
    assert calls and calls[0].raw_item.name == "get_weather"  # type: ignore[union-attr]
    assert outputs and outputs[0].output == WEATHER
    final = result.final_output
    assert isinstance(final, str) and ("sunny" in final.lower() or "18" in final), final
    assert "get_weather" not in final, final  # the final answer is an answer, not one more call written as text
