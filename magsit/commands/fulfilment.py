from magsit.commands.common import not_built

command = not_built("sync-fulfilment", "Sitoo deliveries and cancellations -> Magento shipments.")
