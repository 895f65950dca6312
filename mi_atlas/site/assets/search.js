/*
 * mi-atlas explorer search: one MiniSearch index over what a researcher types.
 *
 * Fields, strongest first: the title and the short names a paper introduces (aka: ROME, CAA,
 * LAPE), its authors, the names and aliases of its taxonomy tags ("activation patching",
 * "SAE", "ACDC" are aliases in taxonomy/*.yaml), its venue, summary and abstract. Exact and
 * prefix matches are tried first; typo tolerance (one edit, words of five letters or more)
 * is only a fallback when they find nothing, so "induction" never turns into "reduction".
 * A query of several words that is one whole short name or alias ("activation patching")
 * ranks the papers that carry that very phrase first, before those that merely hold both
 * words ("attribution patching" next to "activations").
 * `window.MI_ATLAS_SEARCH(DATA)` returns { search(query) -> Map(paper index -> score),
 * ready() -> milliseconds it took to build }; explorer.js calls it on first use.
 */
(function () {
  "use strict";

  var FIELDS = ["t", "k", "a", "n", "v", "m", "x"];
  // Word characters of a phrase, run together: "Activation Patching" -> "activationpatching".
  function joined(text) {
    return fold(text).replace(/[\s\p{P}]+/gu, "");
  }
  var BOOST = { t: 4, k: 4, a: 3, n: 1.5, v: 1, m: 1, x: 0.5 };

  // Case and accents never matter: "Libovicky" finds "Libovický".
  function fold(term) {
    return term.normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase();
  }

  function tagText(DATA) {
    // "<axis key>/<node id>" -> the node's name and aliases, for the field "n".
    var text = {};
    DATA.axes.forEach(function (axis) {
      axis.nodes.forEach(function (node) {
        text[axis.key + "/" + node.id] = [node.name].concat(node.aliases || []);
      });
    });
    return text;
  }

  window.MI_ATLAS_SEARCH = function (DATA) {
    var tags = tagText(DATA);
    var keys = DATA.axes.map(function (axis) { return axis.key; });
    // Each paper's whole short names and tag names, as joined phrases (see joined()).
    var phrases = DATA.papers.map(function (p) {
      var set = {};
      (p.k || []).forEach(function (name) { set[joined(name)] = true; });
      keys.forEach(function (key) {
        (p[key] || []).forEach(function (id) {
          (tags[key + "/" + id] || []).forEach(function (name) { set[joined(name)] = true; });
        });
      });
      return set;
    });
    var index = new window.MiniSearch({
      idField: "id",
      fields: FIELDS,
      processTerm: function (term) {
        var folded = fold(term);
        return folded.length ? folded : null;
      },
      extractField: function (doc, field) {
        var p = DATA.papers[doc.id];
        if (field === "id") return doc.id;
        if (field === "a") return (p.a || []).join(" ; ");
        if (field === "k") return (p.k || []).join(" ; ");
        if (field === "n") {
          var parts = [];
          keys.forEach(function (key) {
            (p[key] || []).forEach(function (id) { parts.push((tags[key + "/" + id] || []).join(" ; ")); });
          });
          return parts.join(" ; ");
        }
        if (field === "v") return p.v + (DATA.venueNames && DATA.venueNames[p.v] ? " " + DATA.venueNames[p.v] : "");
        return p[field] || "";
      },
      searchOptions: {
        combineWith: "AND",
        boost: BOOST,
        // A one-letter prefix matches nearly every word and narrows nothing.
        prefix: function (term) { return term.length >= 2; },
        fuzzy: false,
      },
    });
    var start = window.performance.now();
    index.addAll(DATA.papers.map(function (_, n) { return { id: n }; }));
    var built = Math.round(window.performance.now() - start);

    function run(query, options) {
      var hits = new Map();
      index.search(query, options).forEach(function (r) { hits.set(r.id, r.score); });
      return hits;
    }

    return {
      ready: function () { return built; },
      search: function (query) {
        var hits = run(query);
        if (!hits.size) {
          return run(query, { fuzzy: function (term) { return term.length >= 5 ? 1 : false; } });
        }
        var phrase = joined(query);
        if (/\s/.test(query.trim()) && phrase) {
          var top = 0;
          hits.forEach(function (score) { top = Math.max(top, score); });
          hits.forEach(function (score, n) { if (phrases[n][phrase]) hits.set(n, score + top); });
        }
        return hits;
      },
    };
  };
})();
