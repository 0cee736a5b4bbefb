// Sorting and filtering of the leaderboard tables, in the page (works in the static copy too).
(function () {
  "use strict";

  function cellValue(row, index, type) {
    var v = row.cells[index].getAttribute("data-value");
    if (type === "num") {
      if (v === null || v === "") return null;
      var n = parseFloat(v);
      return isNaN(n) ? null : n;
    }
    return (v === null ? row.cells[index].textContent : v).toLowerCase();
  }

  function sortBy(table, th) {
    var index = Array.prototype.indexOf.call(th.parentNode.children, th);
    var type = th.getAttribute("data-type") || "text";
    var current = th.getAttribute("aria-sort");
    var dir = current === "descending" ? "ascending"
      : current === "ascending" ? "descending" : (type === "num" ? "descending" : "ascending");
    Array.prototype.forEach.call(th.parentNode.children, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir);
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.forEach(function (r, i) { r._pos = i; });
    rows.sort(function (a, b) {
      var x = cellValue(a, index, type), y = cellValue(b, index, type);
      if (x === null && y === null) return a._pos - b._pos;
      if (x === null) return 1;          // missing values last in both directions
      if (y === null) return -1;
      var c = x < y ? -1 : x > y ? 1 : 0;
      return (dir === "ascending" ? c : -c) || a._pos - b._pos;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }

  function applyFilter() {
    var table = document.getElementById("ranking");
    if (!table) return;
    var q = (document.getElementById("filter").value || "").trim().toLowerCase();
    var showBase = document.getElementById("show-baselines").checked;
    var shown = 0, rows = table.tBodies[0].rows;
    Array.prototype.forEach.call(rows, function (r) {
      var text = r.textContent.toLowerCase();
      var visible = (!q || text.indexOf(q) >= 0) && (showBase || r.getAttribute("data-kind") !== "baseline");
      r.hidden = !visible;
      if (visible) shown += 1;
    });
    document.getElementById("shown").textContent = shown + " of " + rows.length + " shown";
  }

  function selected() {
    return Array.prototype.map.call(
      document.querySelectorAll("#ranking input[name=ids]:checked"), function (c) { return c.value; });
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
        var button = th.querySelector("button");
        if (button) button.addEventListener("click", function () { sortBy(table, th); });
      });
    });
    var filter = document.getElementById("filter");
    if (filter) {
      filter.addEventListener("input", applyFilter);
      document.getElementById("show-baselines").addEventListener("change", applyFilter);
    }
    var form = document.getElementById("compare-form");
    var button = document.getElementById("compare-button");
    if (form && button) {
      // the checkboxes sit in the table (form="compare-form"): their events bubble there
      document.getElementById("ranking").addEventListener("change", function () {
        var n = selected().length;
        button.disabled = n < 2 || n > 4;
      });
      form.addEventListener("submit", function (ev) {
        ev.preventDefault();
        var ids = selected();
        if (ids.length < 2 || ids.length > 4) return;
        window.location.href = form.getAttribute("data-root") + "compare/" +
          ids.map(encodeURIComponent).join("+") + "/";
      });
    }
  });
})();
