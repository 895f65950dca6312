/*
 * Sortable tables: every `table.mi-sortable` gets a button in each column header; pressing
 * it (click, Enter or Space) sorts the rows by that column, pressing again reverses the order.
 * A cell's `data-sort` value is used when present, else its text; columns whose header says
 * data-sort-type="number" sort numerically. The header's aria-sort tells screen readers.
 */
(function () {
  "use strict";

  function key(row, index, numeric) {
    var cell = row.cells[index];
    var value = cell ? (cell.getAttribute("data-sort") || cell.textContent) : "";
    return numeric ? parseFloat(value) || 0 : value.trim().toLowerCase();
  }

  function sortBy(table, index, numeric, descending) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var keyed = rows.map(function (row, n) { return [key(row, index, numeric), n, row]; });
    keyed.sort(function (a, b) {
      var order = a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
      return (descending ? -order : order) || a[1] - b[1];
    });
    var frag = document.createDocumentFragment();
    keyed.forEach(function (item) { frag.appendChild(item[2]); });
    body.appendChild(frag);
  }

  function setup(table) {
    var headers = table.tHead ? table.tHead.rows[0].cells : [];
    Array.prototype.forEach.call(headers, function (th, index) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "mi-sort";
      while (th.firstChild) button.appendChild(th.firstChild);
      th.appendChild(button);
      button.addEventListener("click", function () {
        var descending = th.getAttribute("aria-sort") === "ascending";
        Array.prototype.forEach.call(headers, function (other) { other.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", descending ? "descending" : "ascending");
        sortBy(table, index, th.getAttribute("data-sort-type") === "number", descending);
      });
    });
  }

  function init() {
    Array.prototype.forEach.call(document.querySelectorAll("table.mi-sortable"), setup);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
