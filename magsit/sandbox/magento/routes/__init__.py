"""One module per REST resource; each registers its handlers with ``routing.route`` when imported
(``dispatch`` imports them all)."""
