"""A tiny instruction dataset for the selection tests."""

from __future__ import annotations

import json
from pathlib import Path

TOPICS = {
    "math": ("Add {a} and {b}.", "The sum of {a} and {b} is {c}."),
    "colour": ("Name a colour number {a}.", "Colour {a} could be blue, green or red; pick {b}."),
    "story": ("Tell a story about {a} cats.", "Once there were {a} cats who lived by the sea and sang {b} songs."),
}


def write_instructions(path: Path, n: int = 30, malformed: bool = True) -> Path:
    """``n`` rows with id, instruction, input, output, topic and judge.score; one malformed line."""
    lines = []
    for i in range(n):
        topic = list(TOPICS)[i % 3]
        ins, out = TOPICS[topic]
        lines.append(json.dumps({"id": f"r{i}", "instruction": ins.format(a=i, b=i + 1), "input": "",
                                 "output": out.format(a=i, b=i + 1, c=2 * i + 1), "topic": topic,
                                 "judge.score": (i * 7) % 10 + 1}))
    if malformed:
        lines.insert(3, '{"id": "broken", "instruction": ')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
