"""The accounts beside the panel's plan: their loads in the ledger, their overrides painted through the
accounts layer's edit buffer, and their colours on the map.

An account counts for its override territory when it has one, else for its unit's (``core.plan.
accounts``): the ledger carries the accounts aligned by their unit inside the units' workloads and
the overridden ones as fixed loads of their territories. The binding listens to the accounts layer's
``attributeValueChanged`` (the panel's own paints, undo and redo, edits in the attribute table) and
moves an account's workload between its unit and the fixed loads; every paint or reset is one edit
command on the accounts layer's undo stack. An override naming a territory the plan no longer lists
(a build with fewer territories dropped it) counts at its unit, as the toolbox counts it, until the
territory is listed again. Saved override changes go to the plan's change log
(action ``override``, unit = the account's name, or its id). The accounts themselves are read on a worker thread
(``ui.tasks.AccountsTask``) and handed over with :meth:`AccountBinding.adopt`.
"""

from __future__ import annotations

import numpy as np
from qgis.core import Qgis, QgsExpression, QgsProject, QgsVectorLayer
from qgis.PyQt import sip
from qgis.PyQt.QtCore import QObject, pyqtSignal

from ..core.plan.accounts import AccountBook
from ..i18n import tr
from ..layers.account_style import apply_account_style
from ..layers.change_log import ChangeRecorder
from ..layers.edit_checks import is_integer_field, start_editing
from ..layers.signal_links import SignalLinks
from ..layers.style import STYLED_PROPERTY
from ..layers.values import as_number, likely_name_field, text_or_none
from .assignment_service import AssignmentService
from .map_view import stop_map_drawing

#: what the change log calls a paint or reset of overrides
ACTION = "override"


class AccountBinding(QObject):
    """The accounts layer of the service's plan (see the module docstring)."""

    #: overrides or the accounts' loads changed (the overrides view shows them again)
    changed = pyqtSignal()

    def __init__(self, service: AssignmentService, parent: QObject | None = None):
        super().__init__(parent)
        self.service = service
        self.layer: QgsVectorLayer | None = None
        #: grows with every bind: a read started for an earlier binding is not adopted
        self.generation = 0
        self._links = SignalLinks()
        self._recorder: ChangeRecorder | None = None
        #: (territory expression, override column, names, colours) of the style restyle() gave the accounts
        self._styled: tuple | None = None
        self._clear()

    def _clear(self) -> None:
        #: the accounts as read: feature ids, ids, home unit (service index, −1 none), override (code or None)
        self.fids = np.zeros(0, dtype=np.int64)
        self.ids: list[str] = []
        self.home = np.zeros(0, dtype=np.int64)
        self.overrides: list = []
        self.workloads = np.zeros((0, 0))
        self.index_of_fid: dict[int, int] = {}
        #: the accounts that carry an override
        self.overridden: set[int] = set()
        #: the override codes counted as fixed loads (those the plan lists)
        self._fixed_codes: set = set()
        #: the service's measure column of each account measure
        self.columns: list[int] = []
        self._override_index = -1
        self._name_field = ""
        self._measure_indexes: list[int] = []
        self._integer_override = False

    @property
    def is_bound(self) -> bool:
        return self.layer is not None

    @property
    def ready(self) -> bool:
        """The accounts have been read and count in the ledger."""
        return self.is_bound and len(self.fids) > 0

    @property
    def account_measures(self) -> list[str]:
        return [self.service.measures[c] for c in self.columns]

    # -- binding ---------------------------------------------------------------------------------
    def bind(self) -> str | None:
        """Bind to the accounts layer the service's plan names (none: unbind). Returns why the
        accounts cannot be used, or None; the accounts are read by :class:`ui.tasks.AccountsTask`."""
        self.unbind()
        self.generation += 1
        plan = self.service.plan
        if not self.service.is_bound or not plan.accounts_layer:
            return None
        layer = QgsProject.instance().mapLayer(plan.accounts_layer)
        if not isinstance(layer, QgsVectorLayer):
            return tr("The accounts layer of the plan is not in the project; choose it again.")
        fields = layer.fields()
        for name, what in ((plan.account_id_field, tr("account id field")),
                           (plan.override_field, tr("override field"))):
            if not name or fields.lookupField(name) < 0:
                return tr("Choose the accounts' {} (a field of “{}”).").format(what, layer.name())
        self.layer = layer
        self._override_index = fields.lookupField(plan.override_field)
        self._integer_override = is_integer_field(layer, self._override_index)
        # the plan's balance fields come first among the service's measures (the workload index follows)
        self.columns = [k for k, m in enumerate(plan.measures) if m not in self.service.own_measures]
        self._measure_indexes = [fields.lookupField(self.service.measures[c]) for c in self.columns]
        missing = [self.service.measures[c] for c, i in zip(self.columns, self._measure_indexes) if i < 0]
        if missing:
            self.layer = None
            return tr("The balance field “{}” is a field of neither the units nor the accounts.").format(missing[0])
        self._links.link([(layer.attributeValueChanged, self._on_value_changed),
                          (layer.undoStack().indexChanged, lambda _index: self.service.settle()),
                          (self.service.territoriesChanged, self._on_list_changed)])
        if self.service.saving is not None and self.service.saving.recorder is not None:
            self._name_field = likely_name_field(layer)
            self._recorder = ChangeRecorder(layer, plan.override_field, self.account_measures, plan.account_id_field,
                                            self, store=self.service.saving.recorder.store,
                                            territory_of=self._territory_of, name_of=self._name_of)
            # the overrides' log is written at the save or the save is held back, as the units' is
            self._recorder.refuse = self.service.saving.refuse_for(layer)
        return None

    def unbind(self) -> None:
        self._links.cut()
        if self._recorder is not None:
            self._recorder.detach()
            self._recorder = None
        self._colour_by_overrides_alone()
        self.layer = None
        self._clear()

    def _colour_by_overrides_alone(self) -> None:
        """The plan lets go (its units layer is being removed, another plan is chosen, the plugin
        unloads): the accounts' colours stop asking the units layer. That style looks the units layer up
        from QGIS's drawing threads (``overlay_within``): once the layer is gone no account would be
        drawn, and QGIS 3.22 crashes when the layer is deleted while a thread draws. Overridden accounts
        keep their territory's colour, the others are drawn as unassigned."""
        layer, styled, self._styled = self.layer, self._styled, None
        if layer is None or sip.isdeleted(layer) or styled is None:
            return
        territory, override, names, colours = styled
        if layer.customProperty(STYLED_PROPERTY) != territory:
            return  # the user gave the accounts a style of their own since
        stop_map_drawing()  # no drawing thread may still be asking the units layer
        apply_account_style(layer, f"to_string({override})", f"{override} IS NOT NULL", names, colours)

    def adopt(self, accounts, unit_fids: np.ndarray) -> None:
        """Take the accounts read by the task (``layers.accounts.Accounts``; ``unit_fids``: the
        feature ids of the units their ``home`` indexes point at) and count them in the ledger."""
        if not self.is_bound:
            return
        # the task's unit order to the plan's, by feature id
        unit_fids = np.asarray(unit_fids, dtype=np.int64)
        home = np.full(len(accounts.home), -1, dtype=np.int64)
        if len(self.service.fids) and len(unit_fids):
            plan_order = np.argsort(self.service.fids, kind="stable")
            sorted_fids = self.service.fids[plan_order]
            wanted = unit_fids[np.maximum(accounts.home, 0)]
            spot = np.clip(np.searchsorted(sorted_fids, wanted), 0, len(sorted_fids) - 1)
            found = (accounts.home >= 0) & (sorted_fids[spot] == wanted)
            home[found] = plan_order[spot[found]]
        self.fids, self.ids, self.home = accounts.fids, list(accounts.ids), home
        self.workloads = np.asarray(accounts.workloads, dtype=float).reshape(len(home), len(self.columns))
        self.index_of_fid = dict(accounts.index_of_fid)
        names = set(self.service.territory_names)
        unknown = sorted({code for code in accounts.overrides if code is not None and code not in names})
        if unknown:
            self.service.warn(tr(
                "Some accounts are overridden to territories the plan does not have ({}); they count with their "
                "unit's territory until the override names one of the plan's.").format(", ".join(unknown[:10])))
        self.overrides = list(accounts.overrides)
        self._count_all()

    def _count_all(self) -> None:
        ledger = self.service.ledger
        n = len(ledger.labels)
        self.overridden = {a for a, code in enumerate(self.overrides) if code is not None}
        listed = set(self.service.territory_names)
        self._fixed_codes = {self.overrides[a] for a in self.overridden} & listed
        by_override = np.zeros(len(self.home), dtype=bool)
        fixed: dict = {}
        for a in self.overridden:
            code = self.overrides[a]
            if code in listed:
                by_override[a] = True
                fixed.setdefault(code, np.zeros(len(self.service.measures)))[self.columns] += self.workloads[a]
        if self.columns:  # without a measure of the accounts there is nothing of theirs to count
            at_home = ~by_override & (self.home >= 0)
            homes, loads = self.home[at_home], self.workloads[at_home]
            unit_loads = np.column_stack([np.bincount(homes, weights=loads[:, k], minlength=n)[:n]
                                          for k in range(len(self.columns))])
            ledger.set_account_loads(self.columns, unit_loads, fixed)
        self.service.settle()
        self.service.figuresChanged.emit([])
        self.changed.emit()
        self.restyle()

    # -- keeping the ledger in step ------------------------------------------------------------
    def _full(self, values: np.ndarray) -> np.ndarray:
        out = np.zeros(len(self.service.measures))
        out[self.columns] = values
        return out

    def _place(self, a: int, code, sign: float) -> None:
        """Add (sign +1) or take away (−1) account ``a``'s workload where ``code`` puts it."""
        if not self.columns:
            return
        ledger = self.service.ledger
        load = sign * self._full(self.workloads[a])
        if code is not None and code in ledger.territories.names:
            ledger.add_fixed(code, load)
        elif self.home[a] >= 0:
            ledger.add_to_unit(int(self.home[a]), load)

    def _on_value_changed(self, fid: int, index: int, value) -> None:
        a = self.index_of_fid.get(int(fid))
        if a is None:
            return
        if index == self._override_index:
            self._place(a, self.overrides[a], -1.0)
            self.overrides[a] = text_or_none(value)
            self._place(a, self.overrides[a], +1.0)
            if self.overrides[a] is None:
                self.overridden.discard(a)
            else:
                self.overridden.add(a)
                if self.overrides[a] in self.service.ledger.territories.names:
                    self._fixed_codes.add(self.overrides[a])
            self.changed.emit()
        elif index in self._measure_indexes:
            number = as_number(value)
            if number is None or number < 0:
                return  # the toolbox refuses it; here the last valid workload still counts
            self._place(a, self.overrides[a], -1.0)
            self.workloads[a, self._measure_indexes.index(index)] = number
            self._place(a, self.overrides[a], +1.0)

    def _on_list_changed(self) -> None:
        """The territory list changed: an override to a territory no longer listed counts at its unit,
        one to a territory listed again counts for it."""
        if not self.ready:
            return
        listed = set(self.service.territory_names)
        if {self.overrides[a] for a in self.overridden} & listed != self._fixed_codes:
            self._count_all()

    def _territory_of(self, fid: int, value):
        """The territory of account ``fid`` when its override is ``value`` (the change log's words)."""
        if value is not None:
            return value
        a = self.index_of_fid.get(int(fid))
        if a is None or self.home[a] < 0:
            return None
        return self.service.registry[self.service.labels[self.home[a]]]

    def _name_of(self, fid: int) -> str:
        """What the change log calls account ``fid``: its name (a field named like one), else its id."""
        if self._name_field:
            name = text_or_none(self.layer.getFeature(int(fid))[self._name_field])
            if name is not None:
                return name
        a = self.index_of_fid.get(int(fid))
        return self.ids[a] if a is not None else str(int(fid))

    def territory(self, a: int):
        return self._territory_of(int(self.fids[a]), self.overrides[a])

    # -- edits -----------------------------------------------------------------------------------
    def paint(self, fids, name) -> int:
        """Override the accounts ``fids`` to territory ``name`` (None: clear their override), as ONE
        edit command on the accounts layer. Returns how many accounts changed."""
        if not self.ready:
            self.service.warn(tr("Choose an accounts layer and wait until its accounts are read."))
            return 0
        if name is not None and name not in self.service.territory_names:
            self.service.warn(tr("There is no territory “{}”. Create it first.").format(name))
            return 0
        accounts = [self.index_of_fid[int(f)] for f in fids if int(f) in self.index_of_fid]
        accounts = [a for a in accounts if self.overrides[a] != name]
        if not accounts:
            return 0
        text = tr("Override {} account(s) to {}").format(len(accounts), name) if name is not None else \
            tr("Reset the override of {} account(s)").format(len(accounts))
        return self.set_overrides({a: name for a in accounts}, text)

    def set_overrides(self, overrides: dict, text: str, action: str = ACTION, notes: dict | None = None) -> int:
        """Give each account ``a`` of ``overrides`` the override ``overrides[a]`` (a territory name, None:
        none) as ONE edit command ``text`` on the accounts layer; the change log calls it ``action`` and
        notes ``notes[a]`` beside an account. Returns how many accounts changed."""
        accounts = [a for a, name in overrides.items() if self.overrides[a] != name]
        if not accounts:
            return 0
        problem = start_editing(self.layer)
        if problem is not None:
            self.service.warn(problem)
            return 0

        def value(name):
            return None if name is None else (int(name) if self._integer_override else name)

        moves = {a: self._territory_of(int(self.fids[a]), self.overrides[a]) for a in accounts}
        self.layer.beginEditCommand(text)
        try:
            for a in accounts:
                self.layer.changeAttributeValue(int(self.fids[a]), self._override_index, value(overrides[a]),
                                                value(self.overrides[a]))
        except Exception:
            self.layer.destroyEditCommand()
            raise
        self.layer.endEditCommand()
        if self._recorder is not None:  # after the command ends: the log ties the move to its undo step
            self._recorder.note({int(self.fids[a]): (moves[a], self._territory_of(int(self.fids[a]), overrides[a]))
                                 for a in accounts}, action,
                                {int(self.fids[a]): note for a, note in (notes or {}).items()})
        self.service.settle()
        self.layer.triggerRepaint()
        return len(accounts)

    def reset(self, fids=None) -> int:
        """Clear the override of the accounts ``fids`` (default: the accounts layer's selection)."""
        if not self.ready:
            return 0
        if fids is None:
            fids = self.layer.selectedFeatureIds()
            if not fids:
                self.service.warn(tr("Select the accounts whose override to clear."), Qgis.MessageLevel.Info)
                return 0
        return self.paint(fids, None)

    def book(self, names: list, width: int) -> AccountBook:
        """The accounts for a plan whose territories are ``names`` (an override naming none of them counts
        at its unit, as in the table), their workloads in the service's measure columns of ``width``."""
        position = {name: k for k, name in enumerate(names)}
        override = np.fromiter((position.get(code, -1) if code is not None else -1 for code in self.overrides),
                               dtype=np.int64, count=len(self.overrides))
        workloads = np.zeros((len(self.home), width))
        if self.columns:
            workloads[:, self.columns] = self.workloads
        return AccountBook(home=self.home, override=override, workloads=workloads)

    # -- what the panel shows ----------------------------------------------------------------------
    def overrides_of(self, name) -> tuple[list, list]:
        """Territory ``name``'s overrides both ways: (kept, served), each a list of (feature id,
        account id, the other territory, (k,) workloads): the accounts outside its units it keeps,
        and the accounts in its units another territory serves."""
        kept, served = [], []
        if not self.ready or name is None:
            return kept, served
        registry, labels = self.service.registry, self.service.labels
        listed = set(self.service.territory_names)
        for a in sorted(self.overridden):
            code = self.overrides[a]
            if code not in listed:  # counts at its unit
                continue
            home = registry[labels[self.home[a]]] if self.home[a] >= 0 else None
            if code == home:
                continue
            if code == name:
                kept.append((int(self.fids[a]), self.ids[a], home, self.workloads[a]))
            elif home == name:
                served.append((int(self.fids[a]), self.ids[a], code, self.workloads[a]))
        return kept, served

    def restyle(self) -> None:
        """Draw the accounts in their territory's colour, overrides ringed: an account's territory is
        its override, else the territory of the unit it stands in (``overlay_within`` the units)."""
        if not self.is_bound or not self.service.is_bound:
            return
        service = self.service
        override = QgsExpression.quotedColumnRef(service.plan.override_field)
        units = QgsExpression.quotedValue(service.layer.id())
        unit_territory = f"array_first(overlay_within({units}, {QgsExpression.quotedColumnRef(service.field_name)}))"
        names, colours = list(service.territory_names), dict(service.colours.by_name)
        territory = f"coalesce(to_string({override}), to_string({unit_territory}))"
        apply_account_style(self.layer, territory, f"{override} IS NOT NULL", names, colours)
        self._styled = (territory, override, names, colours)
