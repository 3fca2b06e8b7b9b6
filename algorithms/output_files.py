"""Output files: the files a destination writes (with the files its format writes beside it), and
whether they can be written, checked before a run reads anything."""

from __future__ import annotations

import os

from qgis.core import QgsProcessingException

from ..i18n import tr


def file_path_of_destination(destination: str) -> str | None:
    """The local file an output destination names; None for memory layers and database URIs."""
    text = (destination or "").strip()
    if not text or text.startswith("memory:") or "://" in text.split("|")[0] or text.startswith(
            ("postgres:", "postgis:", "ogr:", "spatialite:", "dbname=")):
        return None
    path = text.split("|")[0]
    if path.startswith("file:"):
        return None
    return path


def check_output_path(path: str, label: str) -> None:
    """Raise a QgsProcessingException naming the problem and the fix when ``path`` cannot be written."""
    folder = os.path.dirname(os.path.abspath(path)) or "."
    if not os.path.isdir(folder):
        raise QgsProcessingException(tr(
            "The folder “{}” for the output “{}” does not exist. Create the folder, or choose a file in "
            "an existing folder.").format(folder, label))
    if os.path.isdir(path):
        raise QgsProcessingException(tr(
            "The output “{}” names a folder (“{}”), not a file. Add a file name, e.g. “{}”.").format(
            label, path, os.path.join(path, "output.gpkg")))
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise QgsProcessingException(tr(
            "The file “{}” for the output “{}” cannot be overwritten (it is read-only). Choose another file, "
            "or make it writable.").format(path, label))
    if not os.path.exists(path) and not os.access(folder, os.W_OK | os.X_OK):
        raise QgsProcessingException(tr(
            "Cannot write in the folder “{}” for the output “{}” (no permission, or a read-only disk). "
            "Choose a folder you can write to.").format(folder, label))


_SIDECARS = {
    ".shp": (".shx", ".dbf", ".prj", ".cpg", ".qix", ".qpj", ".qmd"),
    ".gpkg": ("-wal", "-shm", "-journal"),
    ".sqlite": ("-wal", "-shm", "-journal"),
}


def files_of_output(path: str) -> list[str]:
    """The file an output writes and the files its format writes beside it."""
    stem, extension = os.path.splitext(path)
    sidecars = _SIDECARS.get(extension.lower(), ())
    if extension.lower() == ".shp":
        return [path] + [stem + suffix for suffix in sidecars]
    return [path] + [path + suffix for suffix in sidecars]
