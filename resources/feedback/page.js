// The feedback page's behaviour: select a unit (or an account) on the map or in a list, request to add
// or drop it with a reason, see the workload after the requests, save them as a CSV file for the manager.
// Runs from file:// without any network: no fetch, no external resource; every text from the
// data is put in the page with textContent, never as HTML.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("page-data").textContent);
  var words = data.words;
  var HEADER = ["territory", "unit", "unit_name", "kind", "action", "reason", "submitted_by",
                "submitted_at", "plan_id"];
  var STORE = "territory-feedback:" + data.plan_id + ":" + data.territory;
  var items = {};
  (data.units || []).forEach(function (unit) { unit.kind = "unit"; items["unit:" + unit.id] = unit; });
  (data.accounts || []).forEach(function (account) {
    account.kind = "account";
    items["account:" + account.id] = account;
  });
  var requests = [];
  var selected = null;

  function $(id) { return document.getElementById(id); }

  function keyOf(element, prefix) {
    prefix = prefix || "";
    if (element.hasAttribute("data-" + prefix + "unit")) {
      return "unit:" + element.getAttribute("data-" + prefix + "unit");
    }
    if (element.hasAttribute("data-" + prefix + "account")) {
      return "account:" + element.getAttribute("data-" + prefix + "account");
    }
    return null;
  }

  function shapesOf(key) {
    var parts = key.split(":");
    var kind = parts.shift();
    var id = parts.join(":");
    return Array.prototype.filter.call(document.querySelectorAll("[data-" + kind + "]"), function (element) {
      return element.getAttribute("data-" + kind) === id;
    });
  }

  function fill(text, value) {
    // a function, so that "$&" and the like in a name are not read as replacement patterns
    return text.replace("{}", function () { return value; });
  }

  function say(text, bad) {
    var box = $("message");
    box.textContent = text;
    box.className = bad ? "message bad" : "message";
  }

  function select(key) {
    if (!key || !items[key]) { return; }
    if (selected) { shapesOf(selected).forEach(function (el) { el.classList.remove("selected"); }); }
    selected = key;
    shapesOf(key).forEach(function (el) { el.classList.add("selected"); });
    var item = items[key];
    var where = item.kind === "account"
      ? (item.own ? words.account_yours : fill(words.account_other, item.territory_label))
      : (item.own ? words.yours : fill(words.bordering, item.territory_label));
    // the id in brackets after a name; a unit without a name is called by its id alone ("Unit 13009")
    var named = item.name === fill(words.unnamed_unit, item.id) || item.name === item.id
      ? item.name : item.name + " (" + item.id + ")";
    $("selected").textContent = named + " — " + where;
    $("request-drop").disabled = !item.own;
    $("request-add").disabled = item.own;
    say("");
  }

  function request(action) {
    if (!selected) { say(words.select_first, true); return; }
    var item = items[selected];
    if ((action === "drop") !== Boolean(item.own)) { return; }
    var reason = $("request-reason").value.trim();
    if (!reason) { say(words.reason_first, true); $("request-reason").focus(); return; }
    requests = requests.filter(function (r) { return r.key !== selected; });
    requests.push({key: selected, kind: item.kind, id: item.id, action: action, reason: reason});
    $("request-reason").value = "";
    remember();
    render();
    say(words.added);
  }

  function remove(key) {
    requests = requests.filter(function (r) { return r.key !== key; });
    remember();
    render();
  }

  function cell(text, className) {
    var td = document.createElement("td");
    td.textContent = text;
    if (className) { td.className = className; }
    return td;
  }

  function percent(value) {
    return (value >= 0 ? "+" : "") + (100 * value).toFixed(1) + " %";
  }

  function render() {
    var body = $("requests").querySelector("tbody");
    body.textContent = "";
    document.querySelectorAll(".req-add, .req-drop").forEach(function (el) {
      el.classList.remove("req-add", "req-drop");
    });
    requests.forEach(function (r) {
      var item = items[r.key];
      var row = document.createElement("tr");
      row.appendChild(cell(item.name));
      row.appendChild(cell(r.action === "add" ? words.add : words.drop));
      row.appendChild(cell(r.reason, "reason"));
      var td = document.createElement("td");
      var button = document.createElement("button");
      button.type = "button";
      button.textContent = words.remove;
      button.addEventListener("click", function () { remove(r.key); });
      td.appendChild(button);
      row.appendChild(td);
      body.appendChild(row);
      shapesOf(r.key).forEach(function (el) { el.classList.add(r.action === "add" ? "req-add" : "req-drop"); });
    });
    $("no-requests").hidden = requests.length > 0;
    $("save-feedback").disabled = requests.length === 0;
    var asked = {};
    requests.forEach(function (r) { asked[r.key] = r.action; });
    function unitInAfter(id) {
      var key = "unit:" + id;
      return asked[key] ? asked[key] === "add" : Boolean(items[key].own);
    }
    function inBefore(r) {
      // where the item would be without its own request: a unit where it is; an account kept by a
      // territory stays there, any other follows its unit (and a request on that unit)
      var item = items[r.key];
      if (r.kind === "account" && !item.override && item.unit && items["unit:" + item.unit]) {
        return unitInAfter(item.unit);
      }
      return Boolean(item.own);
    }
    data.measures.forEach(function (measure, a) {
      var after = measure.sum;
      requests.forEach(function (r) {
        var w = items[r.key].workloads;
        var wanted = r.action === "add";
        // a unit's workload holds the accounts that follow it; an account moves on its own
        if (w && wanted !== inBefore(r)) { after += (wanted ? 1 : -1) * w[a]; }
      });
      var deviation = measure.target > 0 ? (after - measure.target) / measure.target : 0;
      var row = $("measure-" + a);
      row.querySelector(".after").textContent = after.toLocaleString(undefined, {maximumFractionDigits: 1});
      var shown = row.querySelector(".after-dev");
      shown.textContent = percent(deviation);
      shown.className = "num after-dev " + (Math.abs(deviation) <= measure.tolerance + 1e-9 ? "ok" : "bad");
    });
  }

  function csvCell(value) {
    var text = value === null || value === undefined ? "" : String(value);
    // a spreadsheet would run a cell starting with = + - @ as a formula: a leading ' keeps it text
    if (/^[=+\-@\t\r]/.test(text)) { text = "'" + text; }
    return "\"" + text.replace(/"/g, "\"\"") + "\"";
  }

  function save() {
    var by = $("submitted-by").value.trim();
    if (!by) { say(words.name_first, true); $("submitted-by").focus(); return; }
    var at = new Date().toISOString();
    var lines = [HEADER.join(",")];
    requests.forEach(function (r) {
      lines.push([data.territory, r.id, items[r.key].name, r.kind, r.action, r.reason, by, at, data.plan_id]
        .map(csvCell).join(","));
    });
    var blob = new Blob(["\ufeff" + lines.join("\r\n") + "\r\n"], {type: "text/csv;charset=utf-8"});
    var link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = "feedback_" + data.file_code + ".csv";
    document.body.appendChild(link);
    link.click();
    setTimeout(function () { URL.revokeObjectURL(link.href); link.remove(); }, 2000);
    say(fill(words.saved, link.download));
  }

  function remember() {
    try {
      window.localStorage.setItem(STORE, JSON.stringify({requests: requests, by: $("submitted-by").value}));
    } catch (error) { /* storage off (private window): the requests live until the page closes */ }
  }

  function recall() {
    try {
      var kept = JSON.parse(window.localStorage.getItem(STORE) || "null");
      if (!kept) { return; }
      requests = (kept.requests || []).filter(function (r) { return items[r.key]; });
      if (kept.by) { $("submitted-by").value = kept.by; }
    } catch (error) { requests = []; }
  }

  $("map").addEventListener("click", function (event) {
    var shape = event.target.closest("[data-unit], [data-account]");
    if (shape) { select(keyOf(shape)); }
  });
  document.querySelectorAll("tr[data-row-unit], tr[data-row-account]").forEach(function (row) {
    row.addEventListener("click", function () { select(keyOf(row, "row-")); });
    row.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); select(keyOf(row, "row-")); }
    });
  });
  $("request-drop").addEventListener("click", function () { request("drop"); });
  $("request-add").addEventListener("click", function () { request("add"); });
  $("save-feedback").addEventListener("click", save);
  $("submitted-by").addEventListener("change", remember);
  recall();
  render();
}());
