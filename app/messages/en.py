"""The service's messages in English: templates filled by ``str.format``
(``app.messages.catalogue``); ``es`` has the same keys and values."""

MESSAGES: dict[str, str | dict[str, str]] = {
    # Uploads
    "upload_empty": "The uploaded file is empty.",
    "upload_too_large": "The upload is larger than the limit of {limit_mb} MB (MAX_UPLOAD_MB).",
    "image_header_corrupt": "The image header is corrupt ({reason}).",
    "image_corrupt": "The image is corrupt or truncated ({reason}).",
    "image_no_pixels": "The image has no pixels.",
    "image_elongated": "The image is {width}x{height} pixels: one side is {ratio} times the "
    "other, more than {max_ratio} times; a scanned drawing's sides are not that far apart.",
    "not_an_image": "The file is not an image in a supported format ({accepted}).",
    "image_format": "Image format {format} is not supported; send {accepted}.",
    "image_pixels": "The image has more pixels than the limit of {max_pixels} (MAX_IMAGE_PIXELS).",
    "image_size": "The image is {width}x{height} pixels, over the limit of {max_pixels} "
    "pixels (MAX_IMAGE_PIXELS).",
    "decode_memory": "Decoding this {width}x{height} {format} image would take about "
    "{peak_mb} MB, more than the {budget_mb} MB decoding may use (DECODE_MEMORY_MB). Send it "
    "with fewer pixels, or as a PNG or JPEG.",
    "label_too_long": "The label has {length} characters; a label holds at most {max}.",
    "body_not_utf8": "The request body is not valid UTF-8 ({reason} at byte {position}): "
    "send JSON encoded in UTF-8.",
    # Texts
    "text_too_long": "The text has {length} characters; a text search reads at most {max} "
    "(and the model only its first 77 tokens).",
    "text_empty": "The text is empty: describe the drawing in words, for example 'a circle "
    "crossed by a vertical bar'.",
    "text_search_off": "Text search is off in this service (TEXT_SEARCH=false). Set "
    "TEXT_SEARCH=true and restart it to search by words.",
    "text_tower_missing": "Text search is unavailable: MODEL_NAME's text tower cannot be "
    "loaded ({reason}). Save the checkpoint's tokenizer beside it (README: Offline use), or "
    "set TEXT_SEARCH=false.",
    # The collection
    "image_not_found": "No image with id {id!r} in the collection.",
    "image_not_indexed": "Image {id!r} is not indexed yet; retry shortly.",
    "duplicate": "The collection already holds this image: {name}.",
    "name_and_id": "{name} (id {id})",
    "storage_full": "IMAGES_DIR is full: the image was not added; retry once an operator "
    "has freed space.",
    "confirm_delete_all": "Deleting every image needs confirm=true (DELETE /images/?confirm=true).",
    "deleted_one": "Deleted {name}.",
    "deleted_all": {"one": "Deleted the only image.", "other": "Deleted all {count} images."},
    "samples_note": " These were the repository's samples; restore them with `{command}`.",
    # Busy or unavailable
    "indexing": "The collection is being indexed ({done}/{total} images); retry shortly.",
    "search_busy": {
        "one": "The service is busy (one search in progress, SEARCH_QUEUE_SIZE); retry shortly.",
        "other": "The service is busy ({count} searches in progress, SEARCH_QUEUE_SIZE); "
        "retry shortly.",
    },
    "decode_busy": "The service is decoding other large images and has no memory left for "
    "this one now; retry shortly.",
    "folder_missing": "IMAGES_DIR={folder!r} is missing; nothing was removed: mount or restore it.",
    "folder_foreign": "IMAGES_DIR={folder!r} is no longer this collection's folder (its "
    "marker .collection-id is missing or names another collection); nothing was changed: "
    "mount or restore the collection's folder.",
    "catalog_locked": "The catalog under INDEX_DIR cannot be written now ({reason}).",
    "catalog_damaged": "INDEX_DIR's catalog {catalog!r} is damaged ({reason}): restore it "
    "from a backup; nothing was changed.",
    "database_unreachable": "The database ({location}) cannot be reached: {reason}",
    # Who may change the collection
    "host_not_allowed": "This service does not answer to the host name {host!r}. If it is "
    "this service's name, add it to ALLOWED_HOSTS (or set PUBLIC_BASE_URL).",
    "write_cross_site": "This request comes from a page on {origin}, which is neither this "
    "service nor an origin in CORS_ORIGINS or CORS_ORIGIN_REGEX, so it may not change the "
    "collection (whatever its network or key). Add the page's origin to CORS_ORIGINS if it "
    "is the registry's own frontend.",
    "write_no_key": "This client ({client}) is outside WRITE_ALLOWED_NETWORKS ({networks}) "
    "and API_KEY is not set, so it may not change the collection. Add its network to "
    "WRITE_ALLOWED_NETWORKS, or set API_KEY and send it in the X-API-Key header. Behind a "
    "reverse proxy, see docs/api.md: Who may change the collection.",
    "write_missing_key": "This client ({client}) is outside WRITE_ALLOWED_NETWORKS "
    "({networks}) and sent no X-API-Key header: changing the collection needs the service's "
    "API_KEY in X-API-Key, or a client address in WRITE_ALLOWED_NETWORKS.",
    "write_wrong_key": "This client ({client}) is outside WRITE_ALLOWED_NETWORKS "
    "({networks}) and sent a wrong key in X-API-Key header: changing the collection needs "
    "the service's API_KEY in X-API-Key, or a client address in WRITE_ALLOWED_NETWORKS.",
    # A request's fields (FastAPI's 422), by Pydantic's error type; its context's values.
    "field.missing": "Field required",
    "field.int_parsing": "Input should be a valid integer, unable to parse string as an integer",
    "field.float_parsing": "Input should be a valid number, unable to parse string as a number",
    "field.bool_parsing": "Input should be a valid boolean, unable to interpret input",
    "field.greater_than_equal": "Input should be greater than or equal to {ge}",
    "field.less_than_equal": "Input should be less than or equal to {le}",
    "field.string_too_long": "String should have at most {max_length} characters",
    "field.string_type": "Input should be a valid string",
    "field.enum": "Input should be {expected}",
    "field.finite_number": "Input should be a finite number",
    "field.json_invalid": "JSON decode error",
    "field.model_attributes_type": "Input should be a valid dictionary or object to extract "
    "fields from",
    "field.extra_forbidden": "Extra inputs are not permitted",
}
