"""The `mi-atlas` command: a thin click layer over the library.

Each subcommand lives in its own module under `mi_atlas.commands` and is imported only when
it is invoked, so `mi-atlas check` never pays for torch and a missing extra only affects the
commands that need it. Exit codes: 0 success, 1 problems in the user's input, 2 usage error.
"""

from __future__ import annotations

import importlib

import click

# command name -> "module:attribute" of a click.Command
COMMANDS: dict[str, str] = {
    "check": "mi_atlas.commands.check:check",
    "add": "mi_atlas.commands.add:add",
    "import-awesome": "mi_atlas.commands.import_awesome:import_awesome",
    "import-bib": "mi_atlas.commands.import_bib:import_bib",
    "export": "mi_atlas.commands.export:export",
    "enrich": "mi_atlas.commands.enrich:enrich_command",
    "list": "mi_atlas.commands.impls:list_",
    "run": "mi_atlas.commands.impls:run",
    "bench": "mi_atlas.commands.impls:bench",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use (click docs, "Lazily loading subcommands")."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        module = importlib.import_module(module_name)
        return getattr(module, attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mi-atlas")
def cli() -> None:
    """Validate, import, export and browse the mi-atlas paper index, and run its methods.

    Example: mi-atlas check --papers papers
    """


def main() -> None:
    cli(prog_name="mi-atlas")


if __name__ == "__main__":
    main()
