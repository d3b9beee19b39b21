"""The README agrees with the code: command table, quick start, CLI subcommands."""

import re
from pathlib import Path

from bot.cli import build_parser
from bot.commands.table import markdown_table

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_readme_command_table_is_the_generated_one():
    block = README.split("<!-- commands:start -->\n")[1].split("<!-- commands:end -->")[0]
    assert block.strip() == markdown_table()


def test_quick_start_has_exactly_two_setup_commands():
    quick = README.split("## Quick start")[1].split("\n## ")[0]
    blocks = re.findall(r"```sh\n(.*?)```", quick, re.S)
    assert len(blocks) == 2
    assert all(len(b.strip().splitlines()) == 1 for b in blocks)
    assert "liqbot demo" in blocks[0] and 'pip install -e ".[test]"' in blocks[1]
    assert blocks[1].strip().endswith("pytest")


def test_every_cli_subcommand_is_documented():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name in sub.choices:
        assert f"liqbot {name}" in README, name
