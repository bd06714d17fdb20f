"""Los mensajes del servicio en español: plantillas que rellena ``str.format``
(``app.messages.catalogue``), con las mismas claves y valores que ``en``."""

MESSAGES: dict[str, str | dict[str, str]] = {
    # Archivos subidos
    "upload_empty": "El archivo subido está vacío.",
    "upload_too_large": "El archivo supera el límite de {limit_mb} MB (MAX_UPLOAD_MB).",
    "image_header_corrupt": "La cabecera de la imagen está dañada ({reason}).",
    "image_corrupt": "La imagen está dañada o incompleta ({reason}).",
    "image_no_pixels": "La imagen no tiene píxeles.",
    "image_elongated": "La imagen mide {width}x{height} píxeles: un lado es {ratio} veces el "
    "otro, más de {max_ratio} veces; los lados de un dibujo escaneado no son tan distintos.",
    "not_an_image": "El archivo no es una imagen en un formato admitido ({accepted}).",
    "image_format": "El formato de imagen {format} no se admite; envíe {accepted}.",
    "image_pixels": "La imagen tiene más píxeles que el límite de {max_pixels} (MAX_IMAGE_PIXELS).",
    "image_size": "La imagen mide {width}x{height} píxeles y supera el límite de "
    "{max_pixels} píxeles (MAX_IMAGE_PIXELS).",
    "decode_memory": "Decodificar esta imagen {format} de {width}x{height} ocuparía unos "
    "{peak_mb} MB, más de los {budget_mb} MB que puede usar la decodificación "
    "(DECODE_MEMORY_MB). Envíela con menos píxeles, o como PNG o JPEG.",
    "label_too_long": "La etiqueta tiene {length} caracteres; admite como máximo {max}.",
    "body_not_utf8": "El cuerpo de la petición no es UTF-8 válido ({reason} en el byte "
    "{position}): envíe JSON codificado en UTF-8.",
    # Textos
    "text_too_long": "El texto tiene {length} caracteres; una búsqueda por palabras lee como "
    "máximo {max} (y el modelo solo sus primeros 77 tokens).",
    "text_empty": "El texto está vacío: describa el dibujo con palabras, por ejemplo «un "
    "círculo cruzado por una barra vertical».",
    "text_search_off": "La búsqueda por palabras está desactivada en este servicio "
    "(TEXT_SEARCH=false). Ponga TEXT_SEARCH=true y reinícielo para buscar por palabras.",
    "text_tower_missing": "La búsqueda por palabras no está disponible: no se puede cargar la "
    "parte de texto de MODEL_NAME ({reason}). Guarde el tokenizador junto al modelo (README: "
    "Offline use), o ponga TEXT_SEARCH=false.",
    # El registro
    "image_not_found": "No hay ninguna marca con el id {id!r} en el registro.",
    "image_not_indexed": "La marca {id!r} aún no está indexada; vuelva a intentarlo en "
    "unos momentos.",
    "duplicate": "El registro ya tiene esta marca: {name}.",
    "name_and_id": "{name} (id {id})",
    "storage_full": "IMAGES_DIR está lleno: la imagen no se añadió; vuelva a intentarlo "
    "cuando un administrador haya liberado espacio.",
    "confirm_delete_all": "Para borrar todas las marcas hace falta confirm=true (DELETE "
    "/images/?confirm=true).",
    "deleted_one": "Se borró {name}.",
    "deleted_all": {
        "one": "Se borró la única marca del registro.",
        "other": "Se borraron las {count} marcas del registro.",
    },
    "samples_note": " Eran las imágenes de ejemplo del repositorio; restáurelas con `{command}`.",
    # Ocupado o no disponible
    "indexing": "Se está indexando el registro ({done} de {total} marcas); vuelva a "
    "intentarlo en unos momentos.",
    "search_busy": {
        "one": "El servicio está ocupado (una búsqueda en curso, SEARCH_QUEUE_SIZE); vuelva "
        "a intentarlo en unos momentos.",
        "other": "El servicio está ocupado ({count} búsquedas en curso, SEARCH_QUEUE_SIZE); "
        "vuelva a intentarlo en unos momentos.",
    },
    "decode_busy": "El servicio está decodificando otras imágenes grandes y ahora no le "
    "queda memoria para esta; vuelva a intentarlo en unos momentos.",
    "folder_missing": "Falta IMAGES_DIR={folder!r}; no se borró nada: móntelo o restáurelo.",
    "folder_foreign": "IMAGES_DIR={folder!r} ya no es la carpeta de esta colección (su "
    "marca .collection-id falta o nombra otra colección); no se cambió nada: monte o "
    "restaure la carpeta de la colección.",
    "host_not_allowed": "Este servicio no responde al nombre {host!r}. Si es el nombre de "
    "este servicio, añádalo a ALLOWED_HOSTS (o defina PUBLIC_BASE_URL).",
    "catalog_locked": "Ahora no se puede escribir el catálogo de INDEX_DIR ({reason}).",
    "catalog_damaged": "El catálogo de INDEX_DIR {catalog!r} está dañado ({reason}): "
    "restáurelo desde una copia de seguridad; no se cambió nada.",
    "database_unreachable": "No se puede acceder a la base de datos ({location}): {reason}",
    # Quién puede cambiar el registro
    "write_cross_site": "Esta petición viene de una página de {origin}, que no es este "
    "servicio ni un origen de CORS_ORIGINS o CORS_ORIGIN_REGEX, así que no puede cambiar el "
    "registro (sea cual sea su red o su clave). Añada el origen de la página a CORS_ORIGINS "
    "si es la aplicación del propio registro.",
    "write_no_key": "Este cliente ({client}) está fuera de WRITE_ALLOWED_NETWORKS "
    "({networks}) y API_KEY no está configurada, así que no puede cambiar el registro. Añada "
    "su red a WRITE_ALLOWED_NETWORKS, o configure API_KEY y envíela en la cabecera "
    "X-API-Key. Detrás de un proxy inverso, vea docs/api.md: Who may change the collection.",
    "write_missing_key": "Este cliente ({client}) está fuera de WRITE_ALLOWED_NETWORKS "
    "({networks}) y no envió la cabecera X-API-Key: para cambiar el registro hace falta la "
    "API_KEY del servicio en X-API-Key, o una dirección de WRITE_ALLOWED_NETWORKS.",
    "write_wrong_key": "Este cliente ({client}) está fuera de WRITE_ALLOWED_NETWORKS "
    "({networks}) y envió una clave equivocada en la cabecera X-API-Key: para cambiar el "
    "registro hace falta la API_KEY del servicio en X-API-Key, o una dirección de "
    "WRITE_ALLOWED_NETWORKS.",
    # Los campos de una petición (el 422 de FastAPI), por el tipo de error de Pydantic.
    "field.missing": "Falta este campo",
    "field.int_parsing": "Debe ser un número entero",
    "field.float_parsing": "Debe ser un número",
    "field.bool_parsing": "Debe ser true o false",
    "field.greater_than_equal": "Debe ser mayor o igual que {ge}",
    "field.less_than_equal": "Debe ser menor o igual que {le}",
    "field.string_too_long": "Admite como máximo {max_length} caracteres",
    "field.string_type": "Debe ser un texto",
    "field.enum": "Debe ser {expected}",
    "field.finite_number": "Debe ser un número finito",
    "field.json_invalid": "El JSON no es válido",
    "field.model_attributes_type": "Debe ser un objeto JSON con campos",
    "field.extra_forbidden": "Este campo no se admite",
}
