from magsit.commands.common import not_built

command = not_built("sync-customers", "One customer per e-mail across both systems.")
