/*
 * mi-atlas: Material's site search loads its index when the reader goes to search, not on
 * every page.
 *
 * Material requests search/search_index.json on every page view, whether or not the reader
 * searches; most page views (a paper page reached from the explorer, a node page) never do.
 * This script holds that one request until the reader shows they are about to search: the
 * pointer over the search box, focus in it (a click, a tap on the search icon, or Material's
 * "s", "f" and "/" keys), after which Material gets the index as usual. Every other request
 * is left alone. If a future Material loads its index some other way, this does nothing and
 * the index simply loads as before (tests/site/test_site_search.py notices).
 */
(function () {
  "use strict";

  var INDEX = /\/search\/search_index\.json(?:[?#]|$)/;
  var proto = window.XMLHttpRequest && window.XMLHttpRequest.prototype;
  if (!proto) return;
  var open = proto.open;
  var send = proto.send;
  var held = [];
  var wanted = false;

  proto.open = function (method, url) {
    this.miAtlasSearchIndex = INDEX.test(String(url));
    return open.apply(this, arguments);
  };
  proto.send = function () {
    if (this.miAtlasSearchIndex && !wanted) {
      var request = this;
      var args = arguments;
      held.push(function () { send.apply(request, args); });
      return undefined;
    }
    return send.apply(this, arguments);
  };

  function release() {
    if (wanted) return;
    wanted = true;
    held.splice(0).forEach(function (go) { go(); });
  }

  function inSearch(target) {
    return !!(target && target.closest && target.closest(".md-search, label[for='__search']"));
  }

  document.addEventListener("focusin", function (e) { if (inSearch(e.target)) release(); });
  document.addEventListener("pointerover", function (e) { if (inSearch(e.target)) release(); });
  document.addEventListener("change", function (e) {
    if (e.target && e.target.id === "__search" && e.target.checked) release();
  });
})();
