"""Which kinds of prompt does a bundle complete right? The first line, greedy, with healing.

Each kind has a few prompts and the answers counted right (exact, stripped). It chose the
README's first demo (docs/BENCHMARKS.md, "Measured ability"). Plain greedy (`--branches 1`)
is what `jpilot model generate` does; the server branches on the first token (3).

Run: python bench/prompt_kinds.py [--bundle DIR] [--branches K]
"""

from __future__ import annotations

import argparse

INIT = "class {c}:\n    def __init__(self, {a}, {b}):\n        self.{a} = {a}\n        "
STACK = "class Stack:\n    def __init__(self):\n        self.items = []\n\n    def "
OPEN = "def {f}(path):\n    with open(path{m}) as f:\n        return "
POINT = "class Point:\n    def __init__(self, x, y):\n        self.x = x\n        self.y = y\n\n"
BOX = "class Box:\n    def __init__(self, items):\n        self.items = items\n\n    def "
KINDS: dict[str, list[tuple[str, list[str]]]] = {
    "attribute from a parameter (__init__)": [
        (INIT.format(c="Point", a="x", b="y"), ["self.y = y"]),
        (INIT.format(c="User", a="name", b="email"), ["self.email = email"]),
        (INIT.format(c="Node", a="value", b="next=None"), ["self.next = next"]),
        (INIT.format(c="Config", a="path", b="debug=False"), ["self.debug = debug"]),
    ],
    "return in a with-open block": [
        ("import json\n\n\n" + OPEN.format(f="load", m=""), ["json.load(f)"]),
        (OPEN.format(f="read_text", m=""), ["f.read()"]),
        (OPEN.format(f="read_lines", m=""), ["f.readlines()", "f.read().splitlines()"]),
        (OPEN.format(f="read_bytes", m=", 'rb'"), ["f.read()"]),
    ],
    "main guard": [
        ("def main():\n    print('hi')\n\n\nif __name__ == ", ['"__main__":', "'__main__':"]),
        ('import sys\n\n\ndef main(argv):\n    return 0\n\n\nif __name__ == "__main__":\n    ',
         ["sys.exit(main(sys.argv))", "sys.exit(main(sys.argv[1:]))", "main(sys.argv)"]),
        ("def main():\n    pass\n\n\nif __name__ == '__main__':\n    ", ["main()"]),
    ],
    "dunder methods": [
        (POINT + "    def __repr__(self):\n        return ",
         ['f"Point({self.x}, {self.y})"', "f'Point({self.x}, {self.y})'",
          'f"Point({self.x!r}, {self.y!r})"', 'f"Point(x={self.x}, y={self.y})"']),
        (BOX + "__len__(self):\n        return ", ["len(self.items)"]),
        (BOX + "__iter__(self):\n        return ", ["iter(self.items)"]),
    ],
    "container methods delegating to a list": [
        (STACK + "__len__(self):\n        return ", ["len(self.items)"]),
        (STACK.replace("Stack", "Queue") + "__iter__(self):\n        return ",
         ["iter(self.items)"]),
        (BOX.replace("= items", "= list(items)") + "__contains__(self, item):\n        return ",
         ["item in self.items"]),
        (STACK + "push(self, item):\n        ", ["self.items.append(item)"]),
        (STACK + "pop(self):\n        return ", ["self.items.pop()"]),
        ("class Registry:\n    def __init__(self):\n        self.entries = {}\n\n"
         "    def __getitem__(self, key):\n        return ", ["self.entries[key]"]),
    ],
    "loop header over a list": [
        ("def total(items):\n    result = 0\n    for ", ["item in items:"]),
        ("def names(users):\n    out = []\n    for ", ["user in users:"]),
        ("def show(lines):\n    for i, ", ["line in enumerate(lines):"]),
    ],
    "whole function body from its name": [
        ("import os\n\n\ndef list_python_files(root):\n    ",
         ["return [f for f in os.listdir(root) if f.endswith('.py')]",
          'return [f for f in os.listdir(root) if f.endswith(".py")]']),
        ("def fibonacci(n):\n    if n < 2:\n        return n\n    return ",
         ["fibonacci(n - 1) + fibonacci(n - 2)"]),
        ("def is_even(n):\n    return ", ["n % 2 == 0"]),
        ("def factorial(n):\n    if n == 0:\n        return 1\n    return ",
         ["n * factorial(n - 1)"]),
    ],
    "a docstring's first line": [
        ('def add(a, b):\n    """', ["Add two numbers.", "Return the sum of a and b."]),
        ('def read_text(path):\n    """', ["Read a text file.", "Return the file's text."]),
    ],
}  # fmt: skip


def main() -> None:
    """Complete every prompt and print the right ones per kind."""
    from jpilot.model.default import default_bundle_path
    from jpilot.model.engine import Engine, GenerationConfig

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", help="bundle folder (default: the embedded model)")
    parser.add_argument("--branches", type=int, default=1)
    args = parser.parse_args()
    engine = Engine(args.bundle or default_bundle_path())
    total = right_all = 0
    for kind, cases in KINDS.items():
        right = 0
        for prompt, answers in cases:
            ids, heal = engine.healer.split(engine.tokenizer.encode(prompt))
            config = GenerationConfig(max_new_tokens=32, stop=["\n"], heal=heal,
                                      branches=args.branches)  # fmt: skip
            out = engine.generate(ids, config).text.strip()
            right += out in answers
            print(f"  {'OK' if out in answers else 'no'}  {prompt[-30:]!r} -> {out!r}")
        print(f"{kind}: {right}/{len(cases)}", flush=True)
        total, right_all = total + len(cases), right_all + right
    print(f"all: {right_all}/{total}")


if __name__ == "__main__":
    main()
