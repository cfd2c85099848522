import click

from magsit.commands.common import not_built


@click.group("events", help="Receive Sitoo events (serve) and apply them (process).")
def command() -> None:
    pass


command.add_command(not_built("serve", "Receive Sitoo events at POST /events."))
command.add_command(not_built("process", "Drain stored events into targeted runs."))
