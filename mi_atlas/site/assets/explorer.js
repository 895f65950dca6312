/*
 * mi-atlas explorer: filter the index by every taxonomy axis, venue and year, and search
 * titles, authors and abstracts, entirely in the browser.
 *
 * Data comes from papers.js (window.MI_ATLAS) and bibtex.js (window.MI_ATLAS_BIBTEX), plain
 * scripts rather than fetch(), so the explorer also works when the site is opened from disk.
 * The view lives in the URL query (?search=...&objects=ffn&locate=probing&from=2022): a shared
 * link opens the same view and the back button steps through earlier views. Every text from
 * the data is put into the page with textContent, never parsed as HTML.
 */
(function () {
  "use strict";

  var root = document.getElementById("mi-explorer");
  var DATA = window.MI_ATLAS;
  if (!root || !DATA) return;

  var PAGE = 50;
  var AXES = DATA.axes;
  var PAPERS = DATA.papers;
  var FILTERS = AXES.map(function (a) { return a.id; }).concat(["venue"]);
  var paperHref = root.getAttribute("data-paper-href");

  // node id -> name, and each node's parent, per axis
  var names = {};
  var parents = {};
  AXES.forEach(function (axis) {
    names[axis.id] = {};
    parents[axis.id] = {};
    axis.nodes.forEach(function (node) {
      names[axis.id][node.id] = node.name;
      if (node.parent) parents[axis.id][node.id] = node.parent;
    });
  });

  // Each paper's tags with their ancestors (a sub-goal's paper is also its goal's paper).
  var TAGS = PAPERS.map(function (paper) {
    var tags = {};
    AXES.forEach(function (axis) {
      var list = [];
      (paper[axis.key] || []).forEach(function (id) {
        for (var n = id; n; n = parents[axis.id][n]) if (list.indexOf(n) < 0) list.push(n);
      });
      tags[axis.id] = list;
    });
    tags.venue = [paper.v];
    return tags;
  });

  var years = PAPERS.map(function (p) { return p.y; });
  var minYear = years.length ? Math.min.apply(null, years) : 0;
  var maxYear = years.length ? Math.max.apply(null, years) : 0;

  var els = {
    q: document.getElementById("mi-q"),
    sort: document.getElementById("mi-sort"),
    filters: document.getElementById("mi-filters"),
    count: document.getElementById("mi-count"),
    results: document.getElementById("mi-results"),
    more: document.getElementById("mi-more"),
    copy: document.getElementById("mi-copy"),
    clear: document.getElementById("mi-clear"),
    copied: document.getElementById("mi-copied"),
  };

  // -- search index (search.js), built on first use --------------------------------------

  var search = null;
  function searchIndex() {
    if (search) return search;
    search = window.MI_ATLAS_SEARCH(DATA);
    // For the benchmark: how long building the index took.
    root.setAttribute("data-index-ms", String(search.ready()));
    return search;
  }

  // -- state <-> URL ---------------------------------------------------------------------

  function emptyState() {
    var s = { q: "", from: null, to: null, sort: "relevance", sel: {} };
    FILTERS.forEach(function (f) { s.sel[f] = []; });
    return s;
  }

  function readURL() {
    var params = new URLSearchParams(window.location.search);
    var s = emptyState();
    s.q = params.get("search") || "";
    FILTERS.forEach(function (f) {
      params.getAll(f).forEach(function (value) {
        value.split(",").forEach(function (v) {
          v = v.trim();
          var known = f === "venue" ? DATA.venues.indexOf(v) >= 0 : v in names[f];
          if (known && s.sel[f].indexOf(v) < 0) s.sel[f].push(v);
        });
      });
    });
    var from = parseInt(params.get("from"), 10);
    var to = parseInt(params.get("to"), 10);
    s.from = isNaN(from) ? null : from;
    s.to = isNaN(to) ? null : to;
    var sort = params.get("sort");
    if (sort && ["relevance", "newest", "oldest", "title"].indexOf(sort) >= 0) s.sort = sort;
    return s;
  }

  function toQuery(s) {
    var params = new URLSearchParams();
    if (s.q) params.set("search", s.q);
    FILTERS.forEach(function (f) {
      s.sel[f].forEach(function (v) { params.append(f, v); });
    });
    if (s.from !== null) params.set("from", String(s.from));
    if (s.to !== null) params.set("to", String(s.to));
    if (s.sort !== "relevance") params.set("sort", s.sort);
    var text = params.toString();
    return text ? "?" + text : "";
  }

  var state = readURL();
  var typing = false; // consecutive keystrokes in the search box share one history entry

  function commit(replace) {
    var query = toQuery(state);
    if (query === window.location.search) return;
    var url = window.location.pathname + query;
    if (replace) window.history.replaceState(null, "", url);
    else window.history.pushState(null, "", url);
  }

  // -- filtering -------------------------------------------------------------------------

  function failedFilters(n, hits) {
    // The filters paper n fails: "search", "year", an axis id or "venue".
    var failed = [];
    if (hits && !hits.has(n)) failed.push("search");
    var y = PAPERS[n].y;
    if ((state.from !== null && y < state.from) || (state.to !== null && y > state.to)) failed.push("year");
    for (var i = 0; i < FILTERS.length; i++) {
      var f = FILTERS[i];
      var sel = state.sel[f];
      if (!sel.length) continue;
      var tags = TAGS[n][f];
      var ok = false;
      for (var j = 0; j < tags.length && !ok; j++) ok = sel.indexOf(tags[j]) >= 0;
      if (!ok) failed.push(f);
      if (failed.length > 1) break;
    }
    return failed;
  }

  function compute() {
    var hits = null;
    var scores = null;
    var q = state.q.trim();
    if (q) {
      hits = searchIndex().search(q);
      scores = hits;
    }
    var matches = [];
    var counts = {};
    FILTERS.forEach(function (f) { counts[f] = {}; });
    for (var n = 0; n < PAPERS.length; n++) {
      var failed = failedFilters(n, hits);
      if (failed.length > 1) continue;
      if (!failed.length) matches.push(n);
      // A facet's counts ignore that facet's own selection (the usual faceted-search rule).
      for (var i = 0; i < FILTERS.length; i++) {
        var f = FILTERS[i];
        if (failed.length && failed[0] !== f) continue;
        var tags = TAGS[n][f];
        for (var j = 0; j < tags.length; j++) counts[f][tags[j]] = (counts[f][tags[j]] || 0) + 1;
      }
    }
    sortMatches(matches, scores);
    return { matches: matches, counts: counts };
  }

  var titleOrder = null;
  function sortMatches(matches, scores) {
    var sort = state.sort === "relevance" && !scores ? "newest" : state.sort;
    if (sort === "relevance") {
      matches.sort(function (a, b) { return scores.get(b) - scores.get(a) || a - b; });
    } else if (sort === "oldest") {
      matches.sort(function (a, b) { return PAPERS[a].y - PAPERS[b].y || a - b; });
    } else if (sort === "title") {
      if (!titleOrder) {
        var order = PAPERS.map(function (_, n) { return n; });
        order.sort(function (a, b) { return PAPERS[a].t.localeCompare(PAPERS[b].t); });
        titleOrder = new Int32Array(PAPERS.length);
        order.forEach(function (n, rank) { titleOrder[n] = rank; });
      }
      matches.sort(function (a, b) { return titleOrder[a] - titleOrder[b]; });
    }
    // "newest": the data file is already newest first.
  }

  // -- building the filter controls ------------------------------------------------------

  var boxes = {}; // filter -> value -> {input, count}

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    if (attrs) Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function checkbox(filter, value, label, depth) {
    var id = "mi-f-" + filter + "-" + value.replace(/[^A-Za-z0-9_-]/g, "_");
    var row = el("label", { class: "mi-check" + (depth ? " mi-check--child" : ""), for: id });
    var input = el("input", { type: "checkbox", id: id, name: filter, value: value });
    var count = el("span", { class: "mi-check__count" }, "0");
    row.appendChild(input);
    row.appendChild(el("span", { class: "mi-check__label" }, label));
    row.appendChild(count);
    input.addEventListener("change", function () {
      var sel = state.sel[filter];
      var at = sel.indexOf(value);
      if (input.checked && at < 0) sel.push(value);
      if (!input.checked && at >= 0) sel.splice(at, 1);
      typing = false;
      update(false);
    });
    boxes[filter][value] = { input: input, count: count, row: row };
    return row;
  }

  function buildFilters() {
    var form = els.filters;
    form.addEventListener("submit", function (e) { e.preventDefault(); });
    AXES.forEach(function (axis) {
      boxes[axis.id] = {};
      var set = el("fieldset", { class: "mi-facet", "data-facet": axis.id });
      set.appendChild(el("legend", null, axis.title));
      axis.nodes.forEach(function (node) {
        set.appendChild(checkbox(axis.id, node.id, node.name, node.parent ? 1 : 0));
      });
      form.appendChild(set);
    });

    var years = el("fieldset", { class: "mi-facet mi-facet--years", "data-facet": "year" });
    years.appendChild(el("legend", null, "Year"));
    [["from", "From"], ["to", "To"]].forEach(function (pair) {
      var label = el("label", { class: "mi-year", for: "mi-" + pair[0] }, pair[1] + " ");
      var input = el("input", {
        type: "number", id: "mi-" + pair[0], min: String(minYear), max: String(maxYear),
        step: "1", placeholder: String(pair[0] === "from" ? minYear : maxYear), inputmode: "numeric",
      });
      input.addEventListener("change", function () {
        var v = parseInt(input.value, 10);
        state[pair[0]] = isNaN(v) ? null : v;
        typing = false;
        update(false);
      });
      label.appendChild(input);
      years.appendChild(label);
      els[pair[0]] = input;
    });
    form.appendChild(years);

    boxes.venue = {};
    var venues = el("fieldset", { class: "mi-facet mi-facet--venues", "data-facet": "venue" });
    venues.appendChild(el("legend", null, "Venue"));
    var others = DATA.venuesOther || [];
    DATA.venues.forEach(function (v) {
      if (others.length && v === others[0]) {
        venues.appendChild(el("p", { class: "mi-muted" }, "Other venues (not in venues.yaml)"));
      }
      venues.appendChild(checkbox("venue", v, v, 0));
    });
    form.appendChild(venues);
  }

  // -- rendering -------------------------------------------------------------------------

  var last = { matches: [] };
  var shown = 0;

  function chip(axis, id) {
    var b = el("button", { type: "button", class: "mi-tag mi-tag--" + axis, "data-axis": axis, "data-id": id,
      title: "Filter by " + names[axis][id] }, names[axis][id]);
    return b;
  }

  var nodeHref = root.getAttribute("data-node-href");
  var runnable = {}; // axis id -> node id -> true where the node has a reference implementation
  AXES.forEach(function (axis) {
    runnable[axis.id] = {};
    axis.nodes.forEach(function (node) { if (node.impl) runnable[axis.id][node.id] = true; });
  });

  function authorLinks(authors) {
    // Each name is a search for that author (a real link: it opens in a new tab too).
    var p = el("span", { class: "mi-result__authors" });
    var shown = authors.slice(0, 4);
    shown.forEach(function (name, i) {
      if (i) p.appendChild(document.createTextNode(", "));
      p.appendChild(el("a", { class: "mi-author", href: "?search=" + encodeURIComponent(name),
        "data-author": name, title: "Papers by " + name }, name));
    });
    if (authors.length > shown.length) p.appendChild(document.createTextNode(" et al."));
    return p;
  }

  function methodLinks(p) {
    // "▶ runnable method" links to the node pages of the paper's locate and steer methods,
    // then the paper's code, separated by " · ".
    var items = [];
    AXES.forEach(function (axis) {
      if (axis.id !== "locate" && axis.id !== "steer") return;
      (p[axis.key] || []).forEach(function (id) {
        if (!runnable[axis.id][id]) return;
        items.push(el("a", { class: "mi-run", href: nodeHref.replace("__AXIS__", axis.id).replace("__ID__", id),
          title: "Runnable method: run " + names[axis.id][id] + " on the zoo models" }, "▶ " + names[axis.id][id]));
      });
    });
    if (p.c && /^https?:\/\//i.test(p.c)) items.push(el("a", { class: "mi-code", href: p.c, rel: "noopener" }, "code"));
    if (!items.length) return null;
    var box = el("p", { class: "mi-result__run" });
    items.forEach(function (item, i) {
      if (i) box.appendChild(document.createTextNode(" · "));
      box.appendChild(item);
    });
    return box;
  }

  function resultItem(n) {
    var p = PAPERS[n];
    var li = el("li", { class: "mi-result", "data-id": p.i });
    var h = el("h3", { class: "mi-result__title" });
    h.appendChild(el("a", { href: paperHref.replace("__ID__", encodeURIComponent(p.i)) }, p.t));
    li.appendChild(h);
    var meta = el("p", { class: "mi-result__meta" });
    if (p.a.length) {
      meta.appendChild(authorLinks(p.a));
      meta.appendChild(document.createTextNode(" · "));
    }
    meta.appendChild(document.createTextNode((p.v ? p.v + " " : "") + p.y + (p.k ? " · " + p.k.join(", ") : "")));
    li.appendChild(meta);
    var tags = el("p", { class: "mi-result__tags" });
    AXES.forEach(function (axis) {
      (p[axis.key] || []).forEach(function (id) { tags.appendChild(chip(axis.id, id)); });
    });
    li.appendChild(tags);
    var run = methodLinks(p);
    if (run) li.appendChild(run);
    var summary = p.m || p.x;
    if (summary) {
      var abstract = summary.length > 280 ? summary.slice(0, 277).replace(/\s+\S*$/, "") + "…" : summary;
      li.appendChild(el("p", { class: "mi-result__abstract" }, abstract));
    }
    return li;
  }

  function renderMore() {
    var frag = document.createDocumentFragment();
    var end = Math.min(last.matches.length, shown + PAGE);
    for (var k = shown; k < end; k++) frag.appendChild(resultItem(last.matches[k]));
    els.results.appendChild(frag);
    shown = end;
    els.more.hidden = shown >= last.matches.length;
    if (!els.more.hidden) els.more.textContent = "Show more (" + (last.matches.length - shown) + " left)";
  }

  function syncControls() {
    if (els.q.value !== state.q) els.q.value = state.q;
    els.sort.value = state.sort;
    els.from.value = state.from === null ? "" : String(state.from);
    els.to.value = state.to === null ? "" : String(state.to);
    FILTERS.forEach(function (f) {
      Object.keys(boxes[f]).forEach(function (v) {
        boxes[f][v].input.checked = state.sel[f].indexOf(v) >= 0;
      });
    });
  }

  function render(result) {
    last = result;
    FILTERS.forEach(function (f) {
      var counts = result.counts[f];
      Object.keys(boxes[f]).forEach(function (v) {
        var box = boxes[f][v];
        var n = counts[v] || 0;
        var text = String(n);
        if (box.count.textContent !== text) box.count.textContent = text;
        var empty = n === 0 && !box.input.checked;
        if (box.row.classList.contains("mi-check--empty") !== empty) box.row.classList.toggle("mi-check--empty", empty);
      });
    });
    var n = result.matches.length;
    var active = state.q.trim() || state.from !== null || state.to !== null ||
      FILTERS.some(function (f) { return state.sel[f].length; });
    els.count.textContent = active
      ? n + " of " + PAPERS.length + " papers"
      : PAPERS.length + " papers";
    els.count.setAttribute("data-count", String(n));
    els.copy.textContent = "Copy BibTeX of these " + n + " paper" + (n === 1 ? "" : "s");
    els.copy.disabled = n === 0 || !window.MI_ATLAS_BIBTEX;
    els.clear.disabled = !active;
    els.results.textContent = "";
    shown = 0;
    if (n === 0) {
      els.results.appendChild(el("li", { class: "mi-result mi-result--none" }, "No paper matches these filters."));
      els.more.hidden = true;
    } else {
      renderMore();
    }
  }

  function update(replace) {
    commit(replace);
    render(compute());
  }

  // -- copy BibTeX -----------------------------------------------------------------------

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () { return legacyCopy(text); });
    }
    return legacyCopy(text);
  }

  function legacyCopy(text) {
    var area = el("textarea", { class: "mi-sr-only", readonly: "" });
    area.value = text;
    document.body.appendChild(area);
    area.select();
    var ok = document.execCommand("copy");
    document.body.removeChild(area);
    return ok ? Promise.resolve() : Promise.reject(new Error("copy failed"));
  }

  els.copy.addEventListener("click", function () {
    var bib = window.MI_ATLAS_BIBTEX || {};
    var entries = last.matches.map(function (n) { return bib[PAPERS[n].i]; }).filter(Boolean);
    copyText(entries.map(function (e) { return e.trim(); }).join("\n\n") + "\n").then(
      function () { els.copied.textContent = "Copied " + entries.length + " BibTeX entries."; },
      function () { els.copied.textContent = "Copying failed: use the Downloads page instead."; }
    );
  });

  // -- events ----------------------------------------------------------------------------

  els.q.addEventListener("input", function () {
    state.q = els.q.value;
    update(typing);
    typing = true;
  });
  els.q.addEventListener("blur", function () { typing = false; });
  els.sort.addEventListener("change", function () {
    state.sort = els.sort.value;
    typing = false;
    update(false);
  });
  els.clear.addEventListener("click", function () {
    state = emptyState();
    typing = false;
    syncControls();
    update(false);
  });
  els.more.addEventListener("click", renderMore);
  els.results.addEventListener("click", function (e) {
    var author = e.target.closest ? e.target.closest("a.mi-author") : null;
    if (author && !e.ctrlKey && !e.metaKey && !e.shiftKey && e.button === 0) {
      // An author's name searches for their papers, in place (the URL records it).
      e.preventDefault();
      state.q = author.getAttribute("data-author");
      typing = false;
      syncControls();
      update(false);
      window.scrollTo(0, 0);
      return;
    }
    var target = e.target.closest ? e.target.closest("button.mi-tag") : null;
    if (!target) return;
    var axis = target.getAttribute("data-axis");
    var id = target.getAttribute("data-id");
    if (state.sel[axis].indexOf(id) < 0) state.sel[axis].push(id);
    typing = false;
    syncControls();
    update(false);
  });
  window.addEventListener("popstate", function () {
    state = readURL();
    typing = false;
    syncControls();
    render(compute());
  });
  document.addEventListener("DOMContentLoaded", function () {
    // bibtex.js is deferred: it has run by now.
    els.copy.disabled = last.matches.length === 0 || !window.MI_ATLAS_BIBTEX;
  });

  buildFilters();
  syncControls();
  render(compute());
  root.setAttribute("data-ready", "true");
  // Build the search index while the reader looks at the first results.
  if (!state.q) window.setTimeout(searchIndex, 0);
})();
