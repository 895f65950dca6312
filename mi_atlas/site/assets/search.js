/*
 * mi-atlas explorer search: one MiniSearch index over what a researcher types.
 *
 * Fields, strongest first: the title and the short names a paper introduces (aka: ROME, CAA,
 * LAPE), its authors, its taxonomy tags, its venue, summary and abstract. Exact and prefix
 * matches are tried first; typo tolerance (one edit, words of five letters or more) is only a
 * fallback when they find nothing, so "induction" never turns into "reduction".
 *
 * Tags are searched by their names and aliases (taxonomy/*.yaml: "activation patching",
 * "SAE", "ACDC") without copying those words into every paper: a paper holds one token per
 * tag, and each query word also matches the tokens of the nodes whose names or aliases have
 * that word. A query of several words that is one whole short name or alias ranks the papers
 * that carry that very phrase first, before those that merely hold both words.
 *
 * `window.MI_ATLAS_SEARCH(DATA)` returns { search(query) -> Map(paper index -> score),
 * ready() -> milliseconds it took to build }; explorer.js calls it on first use.
 */
(function () {
  "use strict";

  var FIELDS = ["t", "k", "a", "n", "v", "m", "x"];
  var BOOST = { t: 4, k: 4, a: 3, n: 1.5, v: 1, m: 1, x: 0.5 };
  var SPLIT = /[\n\r\p{Z}\p{P}]+/u; // MiniSearch's own word boundaries

  // Case and accents never matter: "Libovicky" finds "Libovický".
  function fold(term) {
    return term.normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase();
  }

  function words(text) {
    return fold(text).split(SPLIT).filter(Boolean);
  }

  // Word characters of a phrase, run together: "Activation Patching" -> "activationpatching".
  function joined(text) {
    return words(text).join("");
  }

  function oneEdit(a, b) {
    // Levenshtein distance <= 1, without building the table.
    if (Math.abs(a.length - b.length) > 1) return false;
    var i = 0;
    var j = 0;
    var edits = 0;
    while (i < a.length && j < b.length) {
      if (a[i] === b[j]) { i++; j++; continue; }
      if (++edits > 1) return false;
      if (a.length > b.length) i++;
      else if (a.length < b.length) j++;
      else { i++; j++; }
    }
    return edits + (a.length - i) + (b.length - j) <= 1;
  }

  window.MI_ATLAS_SEARCH = function (DATA) {
    // One token per taxonomy node ("zzl" + "causalattribution"): letters only, so MiniSearch
    // keeps it whole, and a prefix no English word has.
    var nodes = [];
    var tokenOf = {};
    DATA.axes.forEach(function (axis) {
      axis.nodes.forEach(function (node) {
        var token = "zz" + axis.key + node.id.replace(/[^a-z0-9]/g, "");
        var labels = [node.name].concat(node.aliases || []);
        var vocabulary = {};
        labels.forEach(function (label) { words(label).forEach(function (w) { vocabulary[w] = true; }); });
        nodes.push({
          token: token,
          words: Object.keys(vocabulary),
          phrases: labels.map(joined),
        });
        tokenOf[axis.key + "/" + node.id] = token;
      });
    });
    var keys = DATA.axes.map(function (axis) { return axis.key; });

    function tagTokens(p) {
      var tokens = [];
      keys.forEach(function (key) {
        (p[key] || []).forEach(function (id) {
          var token = tokenOf[key + "/" + id];
          if (token) tokens.push(token);
        });
      });
      return tokens;
    }

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
        if (field === "n") return tagTokens(p).join(" ");
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

    function nodeTokens(term, fuzzy) {
      // The tokens of the nodes one of whose name or alias words this query word matches:
      // exactly, by prefix (2+ letters, as the index matches words), or in the fallback by one
      // edit (5+ letters).
      var found = [];
      nodes.forEach(function (node) {
        var hit = node.words.some(function (w) {
          return w === term || (term.length >= 2 && w.indexOf(term) === 0) ||
            (fuzzy && term.length >= 5 && oneEdit(term, w));
        });
        if (hit) found.push(node.token);
      });
      return found;
    }

    function run(query, fuzzy) {
      var terms = words(query);
      var hits = new Map();
      if (!terms.length) return hits;
      var tree = {
        combineWith: "AND",
        queries: terms.map(function (term) {
          return { combineWith: "OR", queries: [term].concat(nodeTokens(term, fuzzy)) };
        }),
      };
      var options = fuzzy ? { fuzzy: function (term) { return term.length >= 5 ? 1 : false; } } : {};
      index.search(tree, options).forEach(function (r) { hits.set(r.id, r.score); });
      return hits;
    }

    function carriesPhrase(n, phrase, phraseTokens) {
      var p = DATA.papers[n];
      if ((p.k || []).some(function (name) { return joined(name) === phrase; })) return true;
      return tagTokens(p).some(function (token) { return phraseTokens[token]; });
    }

    return {
      ready: function () { return built; },
      search: function (query) {
        var hits = run(query, false);
        if (!hits.size) return run(query, true);
        if (words(query).length > 1) {
          var phrase = joined(query);
          var phraseTokens = {}; // the nodes with this whole phrase as a name or alias
          nodes.forEach(function (node) { if (node.phrases.indexOf(phrase) >= 0) phraseTokens[node.token] = true; });
          var top = 0;
          hits.forEach(function (score) { top = Math.max(top, score); });
          hits.forEach(function (score, n) {
            if (carriesPhrase(n, phrase, phraseTokens)) hits.set(n, score + top);
          });
        }
        return hits;
      },
    };
  };
})();
