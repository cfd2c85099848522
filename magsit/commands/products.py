from magsit.commands.common import not_built

command = not_built("sync-products", "Sitoo product master data -> Magento, one way.")
