from magsit.commands.common import not_built

command = not_built("sandbox", "Serve the Magento and Sitoo emulators on loopback with demo data.")
