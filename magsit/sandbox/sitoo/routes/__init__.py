"""Sitoo's REST paths, one module per resource; each module's ``routes`` are plain functions that
take the ``SitooState`` first (``control`` also has routes bound to the sandbox ``Control``)."""
