"""Holding a save back: the edits leave the buffer for the save and come back right after.

QGIS 3.22 offers Python no way to veto a save from ``beforeCommitChanges`` (``setAllowCommit`` is
not in the bindings). :class:`HeldEdits` empties the layer's edit buffer through its undo stack (the
save then writes nothing) and puts the same edits back into the buffer as soon as the event loop
runs, as one edit command: nothing is written, nothing is lost; only the undo history collapses into
one step. The save guard uses it for the units layer, the change log of the accounts' overrides for
the accounts layer.
"""

from __future__ import annotations

from qgis.core import Qgis, QgsFeature, QgsGeometry, QgsMessageLog, QgsVectorLayer
from qgis.PyQt import sip
from qgis.PyQt.QtCore import QTimer

from ..i18n import tr

LOG_TAG = "Territory Planner"


class HeldEdits:
    """The edits of ``layer`` held back from one save (see the module)."""

    def __init__(self, layer: QgsVectorLayer):
        self.layer = layer
        self._held: tuple | None = None

    @property
    def pending(self) -> bool:
        """Edits were held back and are not in the buffer again yet."""
        return self._held is not None

    def possible(self) -> bool:
        """Whether this save's edits can be held back (fields added or deleted in the buffer cannot)."""
        buffer = self.layer.editBuffer()
        return buffer is not None and not buffer.addedAttributes() and not buffer.deletedAttributeIds()

    def hold_back(self) -> None:
        """Empty the edit buffer for this save (it then writes nothing) and refill it right after."""
        buffer = self.layer.editBuffer()
        held = ({int(fid): dict(values) for fid, values in buffer.changedAttributeValues().items()},
                {int(fid): QgsGeometry(g) for fid, g in buffer.changedGeometries().items()},
                list(buffer.deletedFeatureIds()),
                [QgsFeature(f) for f in buffer.addedFeatures().values()])
        self.layer.undoStack().setIndex(0)
        if buffer.isModified():  # edits outside the undo stack: put the rest back now, keep nothing silent
            QgsMessageLog.logMessage("Edits outside the undo stack stay in the save.", LOG_TAG,
                                     Qgis.MessageLevel.Warning)
        self._held = held
        QTimer.singleShot(0, self.restore)

    def restore(self) -> None:
        """Put the held-back edits into the edit buffer again (one edit command)."""
        held, self._held = self._held, None
        if held is None or sip.isdeleted(self.layer):
            return
        values, geometries, deleted, added = held
        layer = self.layer
        if not layer.isEditable() and not layer.startEditing():
            QgsMessageLog.logMessage("The edits of a cancelled save could not be put back.", LOG_TAG,
                                     Qgis.MessageLevel.Critical)
            return
        layer.beginEditCommand(tr("Edits kept after a cancelled save"))
        for fid, changes in values.items():
            layer.changeAttributeValues(fid, changes)
        for fid, geometry in geometries.items():
            layer.changeGeometry(fid, geometry)
        if deleted:
            layer.deleteFeatures(deleted)
        for feature in added:
            layer.addFeature(feature)
        layer.endEditCommand()
