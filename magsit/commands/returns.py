from magsit.commands.common import not_built

command = not_built("sync-returns", "Store returns -> Magento credit memos; Magento refunds -> Sitoo.")
