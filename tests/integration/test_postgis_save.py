"""Saving a plan on PostGIS when things go wrong (issue 13): the server stops while saving, and two
analysts edit the same units table through two connections of their own.

Each test copies the Georgia counties into a table of its own on a throw-away server started by
this module (tests/integration/postgis_server.py) and reads results straight from the database.
"""

from __future__ import annotations

import pytest
from dock_helpers import run_synchronously, set_up_dock
from postgis_server import PostgisServer, PostgisUnavailableError
from qgis.core import Qgis, QgsProject, QgsVectorLayer
from qgis.PyQt.QtCore import QCoreApplication
from territory_planner.layers import change_log
from territory_planner.layers.save_guard import CANCEL, KEEP_MINE, TAKE_THEIRS
from territory_planner.resources import sample_data
from territory_planner.ui.assignment_service import AssignmentService
from territory_planner.ui.settings import PlanSettings
from territory_planner.ui.territory_list import TerritoryListEditor

HOSTILE_USER = "<script>alert(1)</script>'; DROP TABLE units; --\"quoted\""
HOSTILE_TERRITORY = "'; DROP TABLE territory_changes; --"
MARKUP_TERRITORY = '<b>"North"</b>'


@pytest.fixture(scope="module")
def postgis():
    server = PostgisServer()
    try:
        server.start()
    except PostgisUnavailableError as error:
        server.stop()
        pytest.skip(f"PostgreSQL/PostGIS could not run here: {error}")
    yield server
    server.stop()


_TABLES = iter(range(1, 1000))


@pytest.fixture
def units(postgis):
    """A fresh units table: 159 counties, ``territory`` North (fid ≤ 80) or South."""
    name = f"units_{next(_TABLES)}"
    postgis.load(sample_data("georgia_counties.gpkg"), name)
    postgis.sql(f"ALTER TABLE {name} ADD COLUMN territory text; "
                f"UPDATE {name} SET territory = CASE WHEN fid <= 80 THEN 'North' ELSE 'South' END")
    postgis.sql("DROP TABLE IF EXISTS territory_changes")
    return name


def open_layer(postgis, table: str, host: str = "127.0.0.1", name: str = "units") -> QgsVectorLayer:
    layer = QgsVectorLayer(postgis.uri(table, 26916, host=host), name, "postgres")
    assert layer.isValid(), layer.error().summary()
    QgsProject.instance().addMapLayer(layer)
    return layer


def database(postgis, table: str, fids) -> dict[int, str]:
    """The territories of ``fids`` as the database holds them (psql, no QGIS in between)."""
    listed = ",".join(str(int(f)) for f in fids)
    rows = postgis.sql(f"SELECT fid, coalesce(territory, '') FROM {table} WHERE fid IN ({listed}) ORDER BY fid")
    return {int(line.split("|", 1)[0]): line.split("|", 1)[1] for line in rows.splitlines()}


def logged(postgis, where: str = "true") -> list[tuple]:
    exists = postgis.sql("SELECT to_regclass('public.territory_changes') IS NOT NULL").strip()
    if exists != "t":
        return []
    rows = postgis.sql(f"SELECT unit, from_territory, to_territory, user_name FROM territory_changes "
                       f"WHERE {where} ORDER BY unit")
    return [tuple(line.split("|")) for line in rows.splitlines()]


def fips(layer: QgsVectorLayer, fids) -> dict[int, str]:
    return {f.id(): f["fips"] for f in layer.getFeatures() if f.id() in set(fids)}


@pytest.fixture
def services(qgis_new_project):
    made = []

    def make() -> AssignmentService:
        service = AssignmentService(QgsProject.instance())
        made.append(service)
        return service

    yield make
    for service in made:
        service.unbind()
        service.deleteLater()


def bind(service: AssignmentService, layer: QgsVectorLayer) -> None:
    assert service.bind(layer, PlanSettings(territory_field="territory", measures=["population"],
                                            unit_name_field="fips"))


class Chooser:
    """Answers the conflict question like a user would, and remembers what it was shown."""

    def __init__(self, answer: str):
        self.answer = answer
        self.asked: list[list] = []

    def __call__(self, conflicts, can_cancel):
        assert can_cancel
        self.asked.append(list(conflicts))
        return self.answer


# -- the server stops while saving ------------------------------------------------------------------
def test_server_stopped_while_saving_keeps_the_edits_and_saves_once_after_restart(postgis, units, qgis_iface):
    from territory_planner.ui.dock import TerritoryDock

    qgis_iface.messageBar().clear_messages()
    dock = TerritoryDock(qgis_iface)
    dock.controller.run_task = run_synchronously
    try:
        layer = open_layer(postgis, units)
        set_up_dock(dock, layer, measures=["population"])
        assert dock.service.is_bound
        painted = [3, 4, 5]
        dock.service.set_active("South")
        assert dock.paint(painted) == 3

        postgis.halt()
        try:
            assert not layer.commitChanges(), "a save to a stopped server cannot succeed"
            QCoreApplication.processEvents()
            # every edit is still in the buffer, the layer still shows it, QGIS kept its error
            assert layer.isEditable() and layer.isModified()
            index = layer.fields().lookupField("territory")
            buffered = layer.editBuffer().changedAttributeValues()
            assert {fid: values[index] for fid, values in buffered.items()} == {f: "South" for f in painted}
            assert layer.commitErrors()
            errors = qgis_iface.messageBar().get_messages(Qgis.MessageLevel.Critical)
            assert any("The database did not accept the changes:" in m and
                       "Your edits are kept; save again when the server is back." in m for m in errors), errors
            assert any("connection" in m for m in errors), "the message gives the database's reason"
        finally:
            postgis.resume()

        assert database(postgis, units, painted) == {f: "North" for f in painted}, "nothing was written"
        assert logged(postgis) == [], "the change log holds nothing of the failed save"
        # the layer still shows the edits over the database's values
        assert {f.id(): f["territory"] for f in layer.getFeatures() if f.id() in painted} == \
            {f: "South" for f in painted}

        assert layer.commitChanges(), layer.commitErrors()
        assert not layer.isModified()
        assert database(postgis, units, painted) == {f: "South" for f in painted}
        # the log names units by the plan's unit-name field (the sample's county names, which the panel
        # guesses), in every row alike (issue 25)
        rows = logged(postgis)
        names = {f.id(): f["name"] for f in layer.getFeatures() if f.id() in painted}
        assert sorted((r[0], r[1], r[2]) for r in rows) == sorted((names[f], "North", "South") for f in painted)
        # saving again writes nothing twice
        assert layer.startEditing() and layer.commitChanges()
        assert len(logged(postgis)) == 3
    finally:
        dock.unload()
        dock.deleteLater()


def test_a_save_whose_change_log_cannot_be_written_is_refused_with_the_edits_kept(postgis, units, services):
    """The log is written at the save or the save does not happen: a log that refuses rows (a
    constraint here; a revoked right or a full disk alike) leaves the units as they were in the database
    and every edit in the buffer, and says why; once the log takes rows again, one save writes both."""
    layer = open_layer(postgis, units)
    service = services()
    bind(service, layer)
    messages = []
    service.message.connect(lambda text, level: messages.append((text, level)))
    assert service.assign([10], "South") == 1
    assert layer.commitChanges()
    assert len(logged(postgis)) == 1
    postgis.sql("ALTER TABLE territory_changes ADD CONSTRAINT refuse CHECK (false) NOT VALID")
    assert service.assign([11, 12], "South") == 2
    layer.commitChanges()
    QCoreApplication.processEvents()  # the held-back edits come back into the buffer
    assert database(postgis, units, [11, 12]) == {11: "North", 12: "North"}, "nothing reached the units"
    assert len(logged(postgis)) == 1, "nothing reached the log"
    index = layer.fields().lookupField("territory")
    assert layer.isEditable() and {fid: values[index] for fid, values in
                                   layer.editBuffer().changedAttributeValues().items()} == {11: "South", 12: "South"}
    refused = [text for text, level in messages if level == Qgis.MessageLevel.Critical]
    assert any(text.startswith("Nothing was saved: the change log public.territory_changes cannot be written")
               and "refuse" in text and "Your edits are kept" in text for text in refused), messages
    assert service.saving.recorder.backlog == [], "nothing kept in memory for later"

    postgis.sql("ALTER TABLE territory_changes DROP CONSTRAINT refuse")
    assert layer.commitChanges(), layer.commitErrors()
    assert database(postgis, units, [11, 12]) == {11: "South", 12: "South"}
    names = fips(layer, [10, 11, 12])
    rows = logged(postgis)
    assert sorted(r[0] for r in rows) == sorted(names.values()), "every saved change logged once"
    assert {(r[1], r[2]) for r in rows if r[0] in (names[11], names[12])} == {("North", "South")}


def test_a_save_is_refused_when_the_log_can_be_read_but_not_written(postgis, units, services):
    """The log is a table the analyst may read but not write (a view here, as a database kept for
    reporting offers): the save is refused before anything is written, and says why."""
    layer = open_layer(postgis, units)
    service = services()
    bind(service, layer)
    messages = []
    service.message.connect(lambda text, level: messages.append(text))
    columns = ", ".join(f"''::text AS {name}" for name in change_log.COLUMNS)
    postgis.sql(f"CREATE VIEW territory_changes AS SELECT DISTINCT {columns}, 0.0::float8 AS population")
    try:
        assert service.assign([20], "South") == 1
        layer.commitChanges()
        QCoreApplication.processEvents()
        assert database(postgis, units, [20]) == {20: "North"}, "nothing reached the units"
        assert layer.isModified(), "the edit is still in the buffer"
        assert any(text.startswith("Nothing was saved") and "cannot be written" in text for text in messages), \
            messages
    finally:
        postgis.sql("DROP VIEW territory_changes")
    assert layer.commitChanges(), layer.commitErrors()
    assert database(postgis, units, [20]) == {20: "South"} and len(logged(postgis)) == 1


# -- two analysts on one table ------------------------------------------------------------------------
def two_sessions(postgis, units, services):
    """Analyst A (TCP) and analyst B (Unix socket): two layers, two connections, both loaded now."""
    first = open_layer(postgis, units, name="units (A)")
    second = open_layer(postgis, units, host=postgis.socket_dir, name="units (B)")
    b = services()
    bind(b, second)
    return first, second, b


def save_as_a(layer: QgsVectorLayer, changes: dict[int, str]) -> None:
    """Analyst A edits in plain QGIS (attribute table, no panel) and saves."""
    assert layer.startEditing()
    index = layer.fields().lookupField("territory")
    for fid, value in changes.items():
        assert layer.changeAttributeValue(fid, index, value)
    assert layer.commitChanges(), layer.commitErrors()


def test_keep_mine_overwrites_only_after_being_told_which_units(postgis, units, services):
    first, second, b = two_sessions(postgis, units, services)
    save_as_a(first, {20: "South"})  # A moves unit 20 after B loaded it
    chooser = Chooser(KEEP_MINE)
    b.conflict_chooser = chooser
    assert TerritoryListEditor(b).new(MARKUP_TERRITORY)
    assert b.assign([20, 21], MARKUP_TERRITORY) == 2  # B moves 20 (conflict) and 21 (A did not touch it)
    assert second.commitChanges(), second.commitErrors()
    assert len(chooser.asked) == 1
    (conflict,) = chooser.asked[0]
    assert (conflict.fid, conflict.unit) == (20, fips(second, [20])[20])
    assert (conflict.loaded, conflict.theirs, conflict.mine) == ("North", "South", MARKUP_TERRITORY)
    assert conflict.who is None and conflict.when is None, "A did not use the panel: no log row to name them"
    assert database(postgis, units, [20, 21]) == {20: MARKUP_TERRITORY, 21: MARKUP_TERRITORY}
    # B's log records the move over A's value
    assert (fips(second, [20])[20], "South", MARKUP_TERRITORY) in [r[:3] for r in logged(postgis)]


def test_take_theirs_keeps_their_units_and_saves_the_rest(postgis, units, services, monkeypatch):
    first, second, b = two_sessions(postgis, units, services)
    a = services()
    bind(a, first)  # A uses the panel: the change log names A
    monkeypatch.setattr(change_log, "current_user", lambda: HOSTILE_USER)
    assert TerritoryListEditor(a).new(HOSTILE_TERRITORY)
    assert a.assign([30], HOSTILE_TERRITORY) == 1
    assert first.commitChanges(), first.commitErrors()
    monkeypatch.setattr(change_log, "current_user", lambda: "analyst B")

    chooser = Chooser(TAKE_THEIRS)
    b.conflict_chooser = chooser
    assert b.assign([30, 31], "South") == 2
    assert second.commitChanges(), second.commitErrors()
    (conflict,) = chooser.asked[0]
    assert (conflict.fid, conflict.theirs, conflict.mine) == (30, HOSTILE_TERRITORY, "South")
    assert conflict.who == HOSTILE_USER
    assert conflict.when and conflict.when[:4].isdigit()
    assert database(postgis, units, [30, 31]) == {30: HOSTILE_TERRITORY, 31: "South"}
    assert b.ledger.territory_of_fid(30) == HOSTILE_TERRITORY, "B's panel now shows their territory"
    assert not second.isModified()
    # the hostile names were stored as values, not run: every table is still there
    assert postgis.sql(f"SELECT count(*) FROM {units}").strip() == "159"
    rows = logged(postgis)
    names = fips(second, [30, 31])
    assert sorted(r[:3] for r in rows) == sorted([(names[30], "North", HOSTILE_TERRITORY),
                                                  (names[31], "North", "South")]), "B logged no move of unit 30"
    assert [r[3] for r in rows if r[0] == names[30]] == [HOSTILE_USER]


def test_cancel_save_writes_nothing_and_keeps_the_edits(postgis, units, services):
    first, second, b = two_sessions(postgis, units, services)
    save_as_a(first, {40: "South"})
    chooser = Chooser(CANCEL)
    b.conflict_chooser = chooser
    messages = []
    b.message.connect(lambda text, level: messages.append(text))
    assert TerritoryListEditor(b).new(MARKUP_TERRITORY)
    assert b.assign([40, 41], MARKUP_TERRITORY) == 2
    second.commitChanges()
    QCoreApplication.processEvents()  # the held-back edits return to the buffer
    assert database(postgis, units, [40, 41]) == {40: "South", 41: "North"}, "nothing was written"
    assert logged(postgis) == []
    assert second.isEditable() and second.isModified()
    shown = {f.id(): f["territory"] for f in second.getFeatures() if f.id() in (40, 41)}
    assert shown == {40: MARKUP_TERRITORY, 41: MARKUP_TERRITORY}, "the edits are kept"
    assert b.ledger.territory_of_fid(40) == MARKUP_TERRITORY
    assert any("cancelled" in m and fips(second, [40])[40] in m for m in messages), messages
    # deciding later: the next save asks again
    chooser.answer = KEEP_MINE
    assert second.commitChanges(), second.commitErrors()
    assert len(chooser.asked) == 2
    assert database(postgis, units, [40, 41]) == {40: MARKUP_TERRITORY, 41: MARKUP_TERRITORY}


def test_no_conflict_when_the_other_analyst_changed_different_units(postgis, units, services):
    first, second, b = two_sessions(postgis, units, services)
    save_as_a(first, {50: "South", 51: "South"})
    chooser = Chooser(CANCEL)
    b.conflict_chooser = chooser
    assert b.assign([52, 53], "South") == 2
    assert second.commitChanges(), second.commitErrors()
    assert chooser.asked == []
    assert database(postgis, units, [50, 51, 52, 53]) == {f: "South" for f in (50, 51, 52, 53)}


def test_without_a_chooser_a_conflicting_save_is_cancelled(postgis, units, services):
    """Never a silent overwrite: a service nobody answers for (scripts, tests) cancels."""
    first, second, b = two_sessions(postgis, units, services)
    save_as_a(first, {60: "South"})
    assert TerritoryListEditor(b).new("North 2")
    assert b.assign([60], "North 2") == 1
    second.commitChanges()
    QCoreApplication.processEvents()
    assert database(postgis, units, [60]) == {60: "South"}
    assert second.isModified()


def test_the_conflict_dialog_lists_units_as_text_and_returns_the_choice(qgis_app):
    from territory_planner.layers.save_guard import Conflict
    from territory_planner.ui.save_conflict_dialog import SaveConflictDialog

    conflicts = [Conflict(7, "<script>alert(1)</script>", "North", HOSTILE_TERRITORY, MARKUP_TERRITORY,
                          who=HOSTILE_USER, when="2026-11-30T12:00:00+00:00"),
                 Conflict(8, "13013", "North", None, "South", deleted=True)]
    dialog = SaveConflictDialog(conflicts)
    cells = [[dialog.table.item(r, c).text() for c in range(dialog.table.columnCount())]
             for r in range(dialog.table.rowCount())]
    assert cells[0] == ["<script>alert(1)</script>", HOSTILE_TERRITORY, MARKUP_TERRITORY, HOSTILE_USER,
                        "2026-11-30T12:00:00+00:00"]
    assert cells[1][1] == "(deleted)" and cells[1][3] == "not recorded"
    assert [b.text() for b in (dialog.keep_button, dialog.take_button, dialog.cancel_button)] == \
        ["Keep mine", "Take theirs", "Cancel save"]
    dialog.take_button.click()
    assert dialog.choice == TAKE_THEIRS and dialog.result() == dialog.DialogCode.Accepted
    without_cancel = SaveConflictDialog(conflicts, can_cancel=False)
    assert not without_cancel.cancel_button.isVisibleTo(without_cancel)
    assert without_cancel.choice == TAKE_THEIRS, "closing the window overwrites nothing"


# -- credentials ---------------------------------------------------------------------------------------
def test_credentials_never_reach_messages_logs_or_the_change_log(postgis, units, services, tmp_path, request):
    """A password in the layer's connection (the test server trusts every login, so any password
    works) appears in no message of a failed save or a conflict, no log line, no change-log row and
    not in the project file; with the authentication manager the URI holds only the config id."""
    from qgis.core import QgsApplication, QgsAuthMethodConfig, QgsDataSourceUri

    secret = "pw-S3cr3t-7781"
    manager = QgsApplication.authManager()
    if not manager.masterPasswordIsSet():
        manager.setMasterPassword("territory-tests", True)
    config = QgsAuthMethodConfig("Basic")
    config.setName("territory test login")
    config.setConfig("username", postgis.user)
    config.setConfig("password", secret)
    assert manager.storeAuthenticationConfig(config)[0]
    uri = QgsDataSourceUri(postgis.uri(units, 26916))
    uri.setAuthConfigId(config.id())
    with_auth = QgsVectorLayer(uri.uri(False), "units (auth)", "postgres")
    assert with_auth.isValid(), with_auth.error().summary()
    assert secret not in with_auth.source()
    QgsProject.instance().addMapLayer(with_auth)
    layer_id = with_auth.id()

    def forget_login():
        # the layer first: while it lives QGIS may read its login again (on QGIS 3.40 a removed
        # config is reported as an error in a later test); and the login goes even when a check fails
        QgsProject.instance().removeMapLayer(layer_id)
        manager.removeAuthenticationConfig(config.id())

    request.addfinalizer(forget_login)

    plain = QgsDataSourceUri(postgis.uri(units, 26916, host=postgis.socket_dir))
    plain.setPassword(secret)
    second = QgsVectorLayer(plain.uri(False), "units (password)", "postgres")
    assert second.isValid()
    QgsProject.instance().addMapLayer(second)

    logged_lines: list[str] = []

    def record(message, tag, level):
        logged_lines.append(message)

    log = QgsApplication.messageLog()
    log.messageReceived.connect(record)
    request.addfinalizer(lambda: log.messageReceived.disconnect(record))  # the log outlives the test
    messages: list[str] = []
    b = services()
    bind(b, second)
    b.message.connect(lambda text, level: messages.append(text))
    b.conflict_chooser = Chooser(KEEP_MINE)

    save_as_a(with_auth, {70: "South"})  # a conflict, then a failed save, then a save
    assert TerritoryListEditor(b).new("West")
    assert b.assign([70, 71], "West") == 2
    postgis.halt()
    try:
        assert not second.commitChanges()
        QCoreApplication.processEvents()
    finally:
        postgis.resume()
    assert second.commitChanges(), second.commitErrors()
    QCoreApplication.processEvents()
    assert any("did not accept" in m for m in messages) and any("someone else" in m for m in messages), messages
    assert not [m for m in messages + logged_lines if secret in m]
    assert secret not in postgis.sql("SELECT string_agg(t::text, ' ') FROM territory_changes t")
    project = tmp_path / "plan.qgs"
    assert QgsProject.instance().write(str(project))
    QgsProject.instance().removeMapLayer(second.id())
    assert secret not in project.read_text(encoding="utf-8").split("<projectlayers>")[0], \
        "the plan's settings carry no password"


# -- files: GeoPackage and shapefile ---------------------------------------------------------------------
@pytest.mark.parametrize("driver", ["GPKG", "ESRI Shapefile"])
def test_two_sessions_on_one_file_are_told_of_conflicts_too(services, tmp_path, driver):
    import shutil
    import subprocess

    from territory_planner.compat import STRING, make_field

    source = tmp_path / "source.gpkg"
    shutil.copy(sample_data("georgia_counties.gpkg"), source)
    if driver == "GPKG":
        uri = f"{source}|layername=georgia_counties"
    else:
        shapefile = tmp_path / "georgia.shp"
        subprocess.run(["ogr2ogr", "-f", driver, str(shapefile), str(source)], check=True, capture_output=True)
        uri = str(shapefile)
    first = QgsVectorLayer(uri, "A", "ogr")
    assert first.isValid()
    assert first.startEditing()
    assert first.addAttribute(make_field("territory", STRING, 80))
    index = first.fields().lookupField("territory")
    for feature in first.getFeatures():
        first.changeAttributeValue(feature.id(), index, "North" if feature.id() <= 80 else "South")
    assert first.commitChanges(), first.commitErrors()
    second = QgsVectorLayer(uri, "B", "ogr")
    QgsProject.instance().addMapLayers([first, second])
    b = services()
    bind(b, second)
    save_as_a(first, {5: "South"})
    chooser = Chooser(TAKE_THEIRS)
    b.conflict_chooser = chooser
    assert TerritoryListEditor(b).new("West")
    assert b.assign([5, 6], "West") == 2
    assert second.commitChanges(), second.commitErrors()
    assert [(c.fid, c.theirs, c.mine) for c in chooser.asked[0]] == [(5, "South", "West")]
    fresh = QgsVectorLayer(uri, "fresh", "ogr")
    assert {f.id(): f["territory"] for f in fresh.getFeatures() if f.id() in (5, 6)} == {5: "South", 6: "West"}


def test_the_first_save_after_a_server_restart_still_finds_conflicts(postgis, units, services):
    """A save fails on the stopped server; after the restart the provider's first read on the
    connection the restart broke comes back empty: the check must not take that for "nothing
    changed" and let the save overwrite."""
    first, second, b = two_sessions(postgis, units, services)
    save_as_a(first, {80: "South"})
    assert TerritoryListEditor(b).new("West")
    assert b.assign([80], "West") == 1
    postgis.halt()
    try:
        assert not second.commitChanges()
        QCoreApplication.processEvents()
    finally:
        postgis.resume()
    chooser = Chooser(TAKE_THEIRS)
    b.conflict_chooser = chooser
    assert second.commitChanges(), second.commitErrors()
    assert [(c.fid, c.theirs) for c in chooser.asked[0]] == [(80, "South")]
    assert database(postgis, units, [80]) == {80: "South"}


def test_a_unit_the_other_analyst_deleted_is_a_conflict_too(postgis, units, services):
    first, second, b = two_sessions(postgis, units, services)
    chooser = Chooser(KEEP_MINE)
    b.conflict_chooser = chooser
    assert b.assign([90, 91], "North") == 2
    postgis.sql(f"DELETE FROM {units} WHERE fid = 90")  # after B painted it, before B saves
    assert second.commitChanges(), second.commitErrors()
    (conflict,) = chooser.asked[0]
    assert (conflict.fid, conflict.deleted, conflict.theirs) == (90, True, None)
    assert database(postgis, units, [90, 91]) == {91: "North"}


def test_in_qgis_the_plugin_asks_with_the_dialog(postgis, units, qgis_iface, qgis_processing, qgis_new_project):
    """The plugin's own service asks through the conflict dialog (answered here like a user would)."""
    from qgis.core import QgsApplication
    from qgis.PyQt.QtCore import QTimer
    from qgis.PyQt.QtWidgets import QApplication
    from territory_planner import classFactory

    registry = QgsApplication.processingRegistry()
    if registry.providerById("territory") is not None:  # registered by another test's fixture
        registry.removeProvider(registry.providerById("territory"))
    plugin = classFactory(qgis_iface)
    plugin.initGui()
    seen: list[list[str]] = []

    def answer():
        dialogs = [w for w in QApplication.topLevelWidgets()
                   if w.objectName() == "territoryConflictDialog" and w.isVisible()]
        if not dialogs:
            QTimer.singleShot(50, answer)
            return
        table = dialogs[0].table
        seen.extend([table.item(r, c).text() for c in range(table.columnCount())] for r in range(table.rowCount()))
        dialogs[0].keep_button.click()

    try:
        first = open_layer(postgis, units, name="units (A)")
        second = open_layer(postgis, units, host=postgis.socket_dir, name="units (B)")
        service = plugin.service
        bind(service, second)
        save_as_a(first, {25: "South"})
        assert TerritoryListEditor(service).new("West")
        assert service.assign([25], "West") == 1
        qgis_iface.messageBar().clear_messages()
        QTimer.singleShot(50, answer)
        assert second.commitChanges(), second.commitErrors()
        QCoreApplication.processEvents()
        critical = qgis_iface.messageBar().get_messages(Qgis.MessageLevel.Critical)
        assert not [m for m in critical if "did not accept" in m], "a save that succeeded is not reported failed"
        assert seen == [[fips(second, [25])[25], "South", "West", "not recorded", "not recorded"]]
        assert database(postgis, units, [25]) == {25: "West"}
    finally:
        plugin.unload()


def test_a_script_saving_twice_in_a_row_after_a_cancel_is_asked_again(postgis, units, services):
    """No event loop between two saves (a script): the held-back edits return before the second."""
    first, second, b = two_sessions(postgis, units, services)
    save_as_a(first, {100: "North"})
    chooser = Chooser(CANCEL)
    b.conflict_chooser = chooser
    assert TerritoryListEditor(b).new("West")
    assert b.assign([100, 101], "West") == 2
    assert second.commitChanges(False)  # cancelled: an empty save
    assert database(postgis, units, [100, 101]) == {100: "North", 101: "South"}
    chooser.answer = KEEP_MINE
    assert second.commitChanges(False), second.commitErrors()
    assert len(chooser.asked) == 2
    assert database(postgis, units, [100, 101]) == {100: "West", 101: "West"}
    QCoreApplication.processEvents()
    assert not second.isModified(), "nothing is put back twice"


def test_the_reason_of_a_failed_save_leaves_out_the_sql_and_its_values():
    from territory_planner.layers.save_guard import provider_reason

    query = ('Erroneous query: UPDATE "public"."units" SET "territory"=\'<b>[x]</b>\' WHERE "fid"=3 '
             "returned 7 [server closed the connection unexpectedly\n\tThis probably means the server terminated]")
    assert provider_reason(query) == ("server closed the connection unexpectedly This probably means the server "
                                      "terminated")
    refused = ('Connection to database failed\nconnection to server at "127.0.0.1", port 5 failed: '
               "Connection refused\n\tIs the server running?")
    assert provider_reason(refused) == \
        'Connection to database failed connection to server at "127.0.0.1", port 5 failed: Connection refused'
    assert "<b>" not in provider_reason("Query failed: UPDATE units SET territory='<b>' WHERE fid=1\nmore")
