"""What the service says to people, in each language it speaks: one catalogue per
language (``en``, ``es``) and ``app.messages.catalogue`` to pick and fill them."""
