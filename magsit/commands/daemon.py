from magsit.commands.common import not_built

command = not_built("daemon", "Run the jobs on the [schedule] of the config.")
