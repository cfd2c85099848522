from magsit.commands.common import not_built

command = not_built("demo", "Run every job against the built-in sandbox and show what happened.")
