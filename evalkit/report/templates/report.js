/* evalkit report: sortable tables, side-by-side filters and search, the two-target pager.
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

  // ---------------------------------------------------------------- two-target pager (sweeps)
  // Answers live in the "pairs-data" JSON block, parsed the first time the section is near the
  // screen. Everything is written with createElement + textContent; classes are fixed strings.
  var pairView = document.getElementById("pair-view");
  if (pairView) setupPager();

  function setupPager() {
    var pairs = null;
    var selA = document.getElementById("pair-a"), selB = document.getElementById("pair-b");
    var pos = document.getElementById("pair-pos");
    var onlyDiffer = document.getElementById("pair-differ"), onlyFlagged = document.getElementById("pair-flagged");
    var at = 0;

    function el(tag, cls, text) {
      var e = document.createElement(tag);
      if (cls) e.className = cls;
      if (text !== undefined && text !== null) e.textContent = text;
      return e;
    }
    function withEscapes(parent, text) {  // a literal backslash-n/r/t is marked, as on the server side
      var re = /\\[nrt]/g, last = 0, m;
      while ((m = re.exec(text)) !== null) {
        if (m.index > last) parent.appendChild(document.createTextNode(text.slice(last, m.index)));
        parent.appendChild(el("mark", "esc", m[0]));
        last = m.index + m[0].length;
      }
      if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)));
    }
    function textBox(text, span) {
      var box = el("div", "txt");
      text = text || "";
      if (span && span[0] >= 0 && span[1] <= text.length && span[0] < span[1]) {
        withEscapes(box, text.slice(0, span[0]));
        var mk = el("mark", "copy");
        withEscapes(mk, text.slice(span[0], span[1]));
        box.appendChild(mk);
        withEscapes(box, text.slice(span[1]));
      } else {
        withEscapes(box, text);
      }
      return box;
    }
    function column(ti, pi) {
      var col = el("div", "ans c" + (ti % 8));
      var head = el("h4", null, "#" + ti + " " + pairs.targets[ti]);
      col.appendChild(head);
      var a = pairs.answers[ti][pi];
      if (!a) { col.appendChild(el("p", "muted", "no answer for this prompt")); return col; }
      col.appendChild(textBox(a.p, a.s));
      var sm = el("p", "sm");
      a.f.forEach(function (f) { sm.appendChild(el("span", "flag", f)); });
      a.m.forEach(function (kv) { sm.appendChild(el("span", null, kv[0] + " " + kv[1])); });
      col.appendChild(sm);
      if (a.n !== null && a.n !== undefined && pairs.train[a.n] !== undefined) {
        col.appendChild(el("h4", "near", "closest training answer " + a.n + (a.d ? " (edit distance " + a.d + ")" : "") +
          (a.x === false ? " — the nearest of the best-ranked candidates, not proven the nearest" : "")));
        col.appendChild(textBox(pairs.train[a.n], a.t));
      } else {
        col.appendChild(el("p", "sm muted", "closest training answer: not recorded for this answer"));
      }
      return col;
    }
    function eligible() {
      var ta = +selA.value, tb = +selB.value, out = [];
      for (var i = 0; i < pairs.prompts.length; i++) {
        var a = pairs.answers[ta][i], b = pairs.answers[tb][i];
        if (onlyDiffer.checked && (!a || !b || a.p === b.p)) continue;
        if (onlyFlagged.checked && !((a && a.f.length) || (b && b.f.length))) continue;
        out.push(i);
      }
      return out;
    }
    function render() {
      if (!pairs) return;
      var idx = eligible();
      while (pairView.firstChild) pairView.removeChild(pairView.firstChild);
      if (!idx.length) {
        pos.textContent = "no prompt matches";
        pairView.appendChild(el("p", "muted", "No prompt matches these filters."));
        return;
      }
      at = Math.max(0, Math.min(at, idx.length - 1));
      var pi = idx[at], pr = pairs.prompts[pi];
      pos.textContent = "prompt " + (at + 1) + " of " + idx.length;
      var head = el("p", "shead");
      head.appendChild(el("code", null, pr.id));
      head.appendChild(document.createTextNode(" "));
      head.appendChild(el("span", "muted", pr.suite));
      pairView.appendChild(head);
      var prompt = textBox(pr.prompt);
      prompt.className = "prompt txt";
      pairView.appendChild(prompt);
      var grid = el("div", "answers pair3");
      if (pr.reference !== null && pr.reference !== undefined) {
        var ref = el("div", "ans ref");
        ref.appendChild(el("h4", null, "reference"));
        ref.appendChild(textBox(pr.reference));
        grid.appendChild(ref);
      }
      grid.appendChild(column(+selA.value, pi));
      grid.appendChild(column(+selB.value, pi));
      pairView.appendChild(grid);
    }
    function load() {
      if (pairs) return;
      var block = document.getElementById("pairs-data");
      pairs = block ? JSON.parse(block.textContent) : { targets: [], prompts: [], answers: [], train: {} };
      render();
    }
    function step(d) { load(); at += d; render(); }
    document.getElementById("pair-prev").addEventListener("click", function () { step(-1); });
    document.getElementById("pair-next").addEventListener("click", function () { step(1); });
    [selA, selB, onlyDiffer, onlyFlagged].forEach(function (c) {
      c.addEventListener("change", function () { load(); at = 0; render(); });
    });
    var section = document.getElementById("samples");
    if ("IntersectionObserver" in window) {
      var io = new IntersectionObserver(function (entries) {
        if (entries.some(function (e) { return e.isIntersecting; })) { io.disconnect(); load(); }
      }, { rootMargin: "400px" });
      io.observe(section);
    } else {
      load();
    }
  }

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
