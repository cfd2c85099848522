from magsit.commands.common import not_built

command = not_built("audit", "Find data gaps between the two catalogues before they break orders.")
