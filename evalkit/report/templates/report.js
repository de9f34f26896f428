/* evalkit report: sortable metric table, side-by-side filters and search.
   Reads the page only (the JSON block and data-* attributes); writes text with textContent only,
   never innerHTML. Listeners are attached here: the HTML carries no event-handler attributes. */
(function () {
  "use strict";
  var dataEl = document.getElementById("data");
  var data = dataEl ? JSON.parse(dataEl.textContent) : {};

  // ---------------------------------------------------------------- sortable tables
  function sortValue(cell, numeric) {
    var raw = cell ? cell.getAttribute("data-sort") : null;
    if (raw === null) raw = cell ? cell.textContent : "";
    if (!numeric) return raw.toLowerCase();
    return raw === "" ? null : parseFloat(raw);
  }

  function sortTable(table, th, col) {
    var asc = th.getAttribute("aria-sort") !== "ascending";
    var heads = table.tHead.rows[0].cells;
    for (var i = 0; i < heads.length; i++) heads[i].removeAttribute("aria-sort");
    th.setAttribute("aria-sort", asc ? "ascending" : "descending");
    var numeric = th.getAttribute("data-sort") === "num";
    Array.prototype.forEach.call(table.tBodies, function (tbody) {
      var rows = Array.prototype.filter.call(tbody.rows, function (r) { return !r.classList.contains("group"); });
      rows.sort(function (a, b) {
        var x = sortValue(a.cells[col], numeric), y = sortValue(b.cells[col], numeric);
        if (x === y) return 0;
        if (x === null) return 1;   // missing values last in both directions
        if (y === null) return -1;
        var c = numeric ? x - y : x.localeCompare(y);
        return asc ? c : -c;
      });
      rows.forEach(function (r) { tbody.appendChild(r); });
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
      if (!th.hasAttribute("data-sort")) return;
      th.tabIndex = 0;
      th.addEventListener("click", function () { sortTable(table, th, col); });
      th.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortTable(table, th, col); }
      });
    });
  });

  // ---------------------------------------------------------------- side by side
  var list = document.getElementById("sample-list");
  if (!list) return;
  var rows = Array.prototype.slice.call(list.children);  // original order
  var count = document.getElementById("sample-count");
  var search = document.getElementById("sample-search");
  var buttons = document.querySelectorAll("#sample-controls [data-filter]");
  var showDel = document.getElementById("show-del");
  var state = { filter: "all", query: "", reordered: false };
  var texts = null;  // lower-cased row text, built on first search

  function regression(r) {
    var v = r.getAttribute("data-reg");
    return v === "" || v === null ? null : parseFloat(v);
  }

  function apply() {
    var q = state.query.trim().toLowerCase();
    if (q && !texts) texts = rows.map(function (r) { return r.textContent.toLowerCase(); });
    var order = rows;
    if (state.filter === "regress") {
      order = rows.filter(function (r) { var d = regression(r); return d !== null && d < 0; })
        .sort(function (a, b) { return regression(a) - regression(b); });
    }
    var chosen = new Set(order);
    var shown = 0;
    rows.forEach(function (r, i) {
      var ok;
      if (state.filter === "differ") ok = r.getAttribute("data-differ") === "1";
      else if (state.filter === "flagged") ok = r.getAttribute("data-flagged") === "1";
      else ok = chosen.has(r);
      if (ok && q) ok = texts[i].indexOf(q) !== -1;
      r.hidden = !ok;
      if (ok) shown++;
    });
    if (state.filter === "regress" || state.reordered) {
      var frag = document.createDocumentFragment();
      order.forEach(function (r) { frag.appendChild(r); });
      rows.forEach(function (r) { if (!chosen.has(r)) frag.appendChild(r); });
      list.appendChild(frag);
      state.reordered = state.filter === "regress";
    }
    if (count) {
      count.textContent = "showing " + shown + " of " + rows.length + " prompts" +
        (data.kind === "comparison" && data.baseline !== null ? " (baseline: " + data.baseline + ")" : "");
    }
  }

  Array.prototype.forEach.call(buttons, function (b) {
    b.addEventListener("click", function () {
      state.filter = b.getAttribute("data-filter");
      Array.prototype.forEach.call(buttons, function (o) { o.setAttribute("aria-pressed", String(o === b)); });
      apply();
    });
  });
  var timer = null;
  if (search) {
    search.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () { state.query = search.value; apply(); }, 120);
    });
  }
  if (showDel) {
    showDel.addEventListener("change", function () { list.classList.toggle("hide-del", !showDel.checked); });
  }
  apply();
})();
