/*
 * mi-atlas explorer on narrow screens: the filters live in a drawer that slides in from the
 * side, so that the search box, the result count and the first papers are on the first screen.
 *
 * On wide screens (60em and up, where the stylesheet puts the filters beside the results) this
 * script changes nothing that shows. It only opens and closes the drawer and keeps its labels
 * current: "Filters (n)" on the button that opens it, with n the active filters, and
 * "Show n papers" on the button that closes it. Filtering itself is explorer.js's.
 */
(function () {
  "use strict";

  var root = document.getElementById("mi-explorer");
  if (!root) return;
  var open = document.getElementById("mi-filters-open");
  var panel = document.getElementById("mi-filters-panel");
  var form = document.getElementById("mi-filters");
  var close = document.getElementById("mi-filters-close");
  var done = document.getElementById("mi-filters-done");
  var backdrop = document.getElementById("mi-filters-backdrop");
  var active = document.getElementById("mi-filters-active");
  var count = document.getElementById("mi-count");
  var wide = window.matchMedia("(min-width: 60em)");

  function isOpen() {
    return root.classList.contains("mi-explorer--filters-open");
  }

  function setOpen(value) {
    if (value === isOpen()) return;
    root.classList.toggle("mi-explorer--filters-open", value);
    document.documentElement.classList.toggle("mi-explorer-locked", value);
    open.setAttribute("aria-expanded", String(value));
    backdrop.hidden = !value;
    if (value) {
      panel.setAttribute("role", "dialog");
      panel.setAttribute("aria-modal", "true");
      close.focus();
    } else {
      panel.removeAttribute("role");
      panel.removeAttribute("aria-modal");
      if (!wide.matches) open.focus();
    }
  }

  // How many filters are set: ticked values, and each end of the year range.
  function activeFilters() {
    var n = form.querySelectorAll("input[type=checkbox]:checked").length;
    form.querySelectorAll("input[type=number]").forEach(function (input) {
      if (input.value !== "") n += 1;
    });
    return n;
  }

  function relabel() {
    var n = activeFilters();
    active.textContent = n ? " (" + n + ")" : "";
    var shown = count.getAttribute("data-count");
    if (shown !== null) {
      done.textContent = "Show " + shown + " paper" + (shown === "1" ? "" : "s");
    }
  }

  open.addEventListener("click", function () { setOpen(true); });
  close.addEventListener("click", function () { setOpen(false); });
  done.addEventListener("click", function () { setOpen(false); });
  backdrop.addEventListener("click", function () { setOpen(false); });
  root.addEventListener("keydown", function (e) {
    if (e.key === "Escape" && isOpen()) {
      e.preventDefault();
      setOpen(false);
    }
  });
  // Tab stays inside the open drawer: past its last control it comes back to the first.
  panel.addEventListener("keydown", function (e) {
    if (e.key !== "Tab" || !isOpen()) return;
    var controls = panel.querySelectorAll("button, input, select");
    var first = controls[0];
    var last = controls[controls.length - 1];
    if (e.shiftKey && document.activeElement === first) {
      e.preventDefault();
      last.focus();
    } else if (!e.shiftKey && document.activeElement === last) {
      e.preventDefault();
      first.focus();
    }
  });
  // Grown past the breakpoint, the filters are beside the results: no drawer to close.
  wide.addEventListener("change", function () { if (wide.matches) setOpen(false); });

  // explorer.js rewrites the count after every change of view (ticks, search, back button).
  new MutationObserver(relabel).observe(count, { attributes: true, childList: true });
  relabel();
})();
