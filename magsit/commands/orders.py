from magsit.commands.common import not_built

command = not_built("push-orders", "Magento web orders -> Sitoo for store fulfilment.")
