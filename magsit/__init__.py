"""magsit keeps a Magento 2 web shop and a Sitoo POS estate in sync."""

__version__ = "0.1.0"
