from magsit.commands.common import not_built

command = not_built("sync-stock", "Sitoo stock -> Magento MSI source items.")
