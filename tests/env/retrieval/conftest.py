"""A small hand-written catalogue (tools real enough to retrieve) and a private cache dir."""

from __future__ import annotations

import pytest

from toolgym.env.retrieval.catalogue import Catalogue
from toolgym.env.types import Task, ToolSpec


def _tool(name: str, desc: str, **params: str) -> ToolSpec:
    return ToolSpec(name, desc, {"type": "object", "properties": {k: {"type": "string", "description": v} for k, v in params.items()}})


TOOLS = (
    _tool("get_weather", "Current weather forecast for a city: temperature, rain and wind.", city="City name"),
    _tool("mv", "Move a file or directory from one location to another.", source="file to move", destination="target"),
    _tool("cd", "Change the current working directory to the specified folder.", folder="folder to enter"),
    _tool("send_email", "Send an email message to a recipient.", to="address", body="message text"),
    _tool("calculate_triangle_area", "Calculate the area of a triangle given its base and height.", base="base", height="height"),
    _tool("stock_price", "Get the latest share price of a listed company.", ticker="ticker symbol"),
    _tool("book_flight", "Book a plane ticket between two airports on a date.", origin="from", destination="to"),
    _tool("translate_text", "Translate text from one language into another.", text="text", target="language code"),
)


def make_tasks(tools=TOOLS) -> list[Task]:
    """Each tool offered by two tasks, so source tasks and dedup are exercised."""
    turns = (({"role": "user", "content": "q"},),)
    return [Task(f"t{i}_{j}", "ast", turns, (t,), ground_truth=({t.name: {}},)) for i, t in enumerate(tools) for j in range(2)]


@pytest.fixture
def tools() -> tuple[ToolSpec, ...]:
    return TOOLS


@pytest.fixture(name="make_tasks")
def make_tasks_fixture():
    return make_tasks


@pytest.fixture
def catalogue() -> Catalogue:
    return Catalogue.from_tasks(make_tasks())


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TOOLGYM_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"
