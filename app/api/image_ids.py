"""Image ids as clients see them.

An image's id is its file name in IMAGES_DIR. Generated names (``3f2c0e9b….png``) are safe
in a URL as they are; a file copied in by hand may be named ``marca #7.png``, and a client
that puts that in a URL without encoding it loses everything from ``#`` on. So answers
give every id percent-encoded (``marca%20%237.png``; safe names are unchanged), and a
requested id is looked up as sent and, failing that, decoded once more: a client that
sends the id as it got it, and one that encodes it again, both reach the file.
"""

from collections.abc import Callable
from urllib.parse import quote, unquote


def public_id(file_name: str) -> str:
    """The id answers carry for a file: its name, percent-encoded where a URL needs it."""
    return quote(file_name, safe="")


def file_name_of(requested: str, is_stored: Callable[[str], bool]) -> str:
    """The file a requested id names (``requested`` is the path segment, already decoded
    once by the server)."""
    return requested if is_stored(requested) else unquote(requested)
