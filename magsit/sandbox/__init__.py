"""Runnable emulators of the Magento 2 and Sitoo v2 REST APIs, written from the references alone."""
