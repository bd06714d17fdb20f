"""Domain errors. They carry a message for the user and nothing about HTTP:
``app.api.http_errors`` is the one place that maps them to status codes. Errors a
client's user reads carry a catalogue ``Message`` (written in the request's language);
start-up errors, read by an operator in a log, plain English."""

from app.messages.catalogue import Language, Message, render


class ServiceError(Exception):
    """Base class of every error the service reports to a client or an operator."""

    # Where the documentation says what to do about it, for errors an operator meets: a
    # file and one of its headings (``tests/test_docs.py`` checks that both exist).
    help_page: str | None = None
    help_section: str | None = None

    def __init__(self, message: str | Message, see: tuple[str, str] | None = None) -> None:
        if see is not None:  # another page and heading than the class's
            self.help_page, self.help_section = see
        self.text = message
        self.message = message if isinstance(message, str) else render(message)
        super().__init__(self.message)

    def in_language(self, language: Language) -> str:
        return self.message if isinstance(self.text, str) else render(self.text, language)

    def for_operator(self) -> str:
        """The message on one line, with where the documentation says what to do."""
        line = " ".join(self.message.split())
        if self.help_page is None or self.help_section is None:
            return line
        return f'{line} (see {self.help_page}: "{self.help_section}")'


class ConfigError(ServiceError):
    """A setting is missing or invalid; raised at start-up."""

    help_page = "docs/operations.md"
    help_section = "Settings"


class ModelLoadError(ServiceError):
    """The CLIP checkpoint named by MODEL_NAME cannot be loaded."""

    help_page = "README.md"
    help_section = "Offline use"


class TextModelLoadError(ModelLoadError):
    """The text encoder named by TEXT_MODEL_NAME cannot be loaded."""

    help_page = "docs/api.md"
    help_section = "Search by words"


class InvalidImageError(ServiceError):
    """The bytes are empty, corrupt or truncated."""


class UnsupportedImageFormatError(ServiceError):
    """The bytes are not an image, or an image in a format we do not accept."""


class ImageTooLargeError(ServiceError):
    """The upload exceeds MAX_UPLOAD_MB or the image exceeds MAX_IMAGE_PIXELS."""


class InvalidTextError(ServiceError):
    """A text search's text is empty or too long."""


class TextSearchDisabledError(ServiceError):
    """Text search was asked for while TEXT_SEARCH=false."""


class ImageNotFoundError(ServiceError):
    """No image of the collection has this id."""


class DuplicateImageError(ServiceError):
    """The collection already holds an image with exactly these bytes."""

    def __init__(self, message: Message, existing_id: str) -> None:
        super().__init__(message)
        self.existing_id = existing_id


class StorageFullError(ServiceError):
    """IMAGES_DIR has no space left for an upload."""


class ConfirmationRequiredError(ServiceError):
    """A destructive request was sent without its confirmation."""


class InvalidLabelError(ServiceError):
    """An image's label is too long."""


class WriteRefusedError(ServiceError):
    """This client may not change the collection (its network, or the page that sent it)."""


class WrongApiKeyError(ServiceError):
    """API_KEY is set and the client sent no key, or a wrong one."""


class ServiceBusyError(ServiceError):
    """The service cannot answer now; the client should retry after ``retry_after_s``."""

    def __init__(self, message: Message, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class IndexNotReadyError(ServiceBusyError):
    """The collection is still being indexed for the first time."""


class FolderUnavailableError(ServiceBusyError):
    """IMAGES_DIR is missing while the service runs (an unmounted share), or is no longer
    the collection's folder (moved, swapped for another collection's)."""

    def __init__(self, message: Message) -> None:
        super().__init__(message, retry_after_s=30)


class StoreDamagedError(ServiceError):
    """The store's files are damaged where a request read them (a bad page of the
    catalog): the operator restores them from a backup; retrying does not help."""

    help_page = "docs/operations.md"
    help_section = "Backups"


class StoreUnavailableError(ServiceBusyError):
    """The store (its database, or the catalog's write lock) cannot be reached or
    written now; the client may retry."""

    help_page = "docs/operations.md"
    help_section = "Postgres"

    def __init__(self, message: Message) -> None:
        super().__init__(message, retry_after_s=5)
