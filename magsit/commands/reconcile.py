from magsit.commands.common import not_built

command = not_built("reconcile", "Month-end report: Sitoo transactions vs Magento orders.")
