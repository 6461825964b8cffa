/* omw-sites map helpers: site and hexagon popups/tooltips built from compact properties.
 *
 * Site feature properties: i site_id, g gmina, t TERYT, a area (ha), z zoning symbol,
 * zc zoning class, s score, r rank, x excluded reason, d drivers, st status, p price
 * (PLN/m²), l lease (PLN/m² a year), j minutes to a junction, jn its name, wf working-age
 * people within 30 min by road, mh maximum building height (m), c criteria values
 * (display units, in the order of omw.config.fields).
 * Eligible hexagon: n sites, r best rank, s best score, m median score.
 * Excluded hexagon: n sites, x [[reason, count], ...].
 */
var omw = (function () {
  "use strict";
  var config = { fields: [], nEligible: 0, profile: "", lang: "en", words: {} };
  /* a word of the page's language: config.words, from the message catalogue
     (profile_map.SCRIPT_WORDS); the key itself if the page set none */
  function w(key) { return esc(config.words[key] || key); }
  var ENTITIES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

  function esc(v) {
    return String(v).replace(/[&<>"']/g, function (c) { return ENTITIES[c]; });
  }
  function missing(v) {
    return v === null || v === undefined || v === "" || (typeof v === "number" && isNaN(v));
  }
  function num(v, d) {
    if (missing(v)) { return "\u2013"; }
    return Number(v).toLocaleString(config.lang === "pl" ? "pl-PL" : "en-GB", {
      minimumFractionDigits: d, maximumFractionDigits: d
    });
  }
  function row(th, td, cls) {
    return "<tr" + (cls ? ' class="' + cls + '"' : "") + "><th>" + th + "</th><td>" + td +
      "</td></tr>";
  }

  function offer(p) {
    if (!missing(p.p)) { return num(p.p, 2) + " " + w("perM2"); }
    if (!missing(p.l)) { return num(p.l, 2) + " " + w("lease"); }
    return '<span class="omw-dim">' + w("askGmina") + "</span>";
  }

  function sheetLink(p) {
    if (!config.sheetUrl) { return ""; }
    if (config.sheetIds && config.sheetIds.indexOf(p.i) < 0) { return ""; }
    return '<div class="omw-sheet"><a href="' + esc(config.sheetUrl.replace("{id}", p.i)) +
      '" target="_blank">' + w("sheet") + "</a></div>";
  }

  /* The facts that matter, at most 10 rows: where, how big, zoning, status and price,
   * score and rank, the junction, the workforce within 30 min, the plan's maximum height,
   * the profile's heaviest criteria (config.fields holds only those), why. */
  function sitePopup(p) {
    var title = (missing(p.g) ? w("site") : esc(p.g)) + " \u00b7 " + num(p.a, 2) + " ha" +
      (missing(p.z) ? "" : " \u00b7 " + esc(p.z));
    var h = '<div class="omw-popup"><div class="omw-popup-title">' + title + "</div>";
    h += '<div class="omw-dim">' + esc(p.i) + (missing(p.t) ? "" : " \u00b7 TERYT " + esc(p.t)) +
      "</div><table>";
    var st = missing(p.st) ? "available" : p.st;
    var known = ["available", "reserved", "sold", "withdrawn"].indexOf(st) >= 0;
    h += row(w("status"), known ? w(st) : esc(st), st === "available" ? "" : "omw-status-" + esc(st));
    h += row(w("price"), offer(p));
    if (!missing(p.x)) {
      h += row(w("score"), "\u2013 (" + esc(p.x) + ")", "omw-excluded");
    } else {
      h += row(w("scoreRank"), num(p.s, 3) + " \u00b7 " + num(p.r, 0) +
        ' <span class="omw-dim">' + w("of") + " " + num(config.nEligible, 0) + "</span>");
    }
    if (!missing(p.j)) {
      h += row(w("junction"), (missing(p.jn) ? "" : esc(p.jn) + ", ") + num(p.j, 1) + " min");
    }
    if (!missing(p.wf)) { h += row(w("workforce"), num(p.wf, 0)); }
    if (!missing(p.mh)) { h += row(w("height"), num(p.mh, 1) + " m"); }
    config.fields.forEach(function (f, k) {
      var v = p.c ? p.c[k] : null;
      h += row(esc(f.label), missing(v) ? "\u2013" : num(v, f.decimals) + " " + esc(f.unit));
    });
    h += "</table>";
    if (!missing(p.d) && missing(p.x)) {
      h += '<div class="omw-drivers"><b>' + w("why") + "</b> " + esc(p.d) + "</div>";
    }
    return h + sheetLink(p) + "</div>";
  }

  function siteTooltip(p) {
    return esc(p.i) + (missing(p.x) ? " \u00b7 " + w("rank") + " " + num(p.r, 0) :
      " \u00b7 " + w("excluded"));
  }

  function hexPopup(p) {
    var h = '<div class="omw-popup"><div class="omw-popup-title">' + num(p.n, 0) + " " +
      (p.n === 1 ? w("oneSite") : w("sites")) + " " + w("inHexagon") + "</div><table>";
    if (p.x) {
      h += row(w("status"), w("excluded"), "omw-excluded");
      p.x.forEach(function (e) { h += row(esc(e[0]), num(e[1], 0)); });
    } else {
      h += row(w("bestRank"), num(p.r, 0) + ' <span class="omw-dim">' + w("of") + " " +
        num(config.nEligible, 0) + "</span>");
      h += row(w("bestScore"), num(p.s, 3));
      h += row(w("medianScore"), num(p.m, 3));
    }
    h += "</table>";
    if (!p.x) {
      h += '<div class="omw-dim">' + w("below") + "</div>";
    }
    return h + "</div>";
  }

  function hexTooltip(p) {
    return num(p.n, 0) + " " + (p.x ? w("excluded") : w("more")) + " " +
      (p.n === 1 ? w("oneSite") : w("sites")) +
      (p.x ? "" : " \u00b7 " + w("rank") + " " + num(p.r, 0));
  }

  /* never wider than the window (phones), never wider than 340 px */
  function popupWidth() { return Math.max(160, Math.min(340, window.innerWidth - 90)); }

  function bind(popup, tooltip) {
    return function (feature, layer) {
      layer.bindPopup(function () { return popup(feature.properties); },
        { maxWidth: popupWidth(), minWidth: Math.min(220, popupWidth()),
          autoPanPaddingTopLeft: [10, 110], autoPanPaddingBottomRight: [10, 10] });
      layer.bindTooltip(function () { return tooltip(feature.properties); }, { sticky: true });
    };
  }

  return {
    config: config,
    configure: function (c) { Object.assign(config, c); },
    sitePopup: sitePopup,
    siteTooltip: siteTooltip,
    hexPopup: hexPopup,
    hexTooltip: hexTooltip,
    bindSite: bind(sitePopup, siteTooltip),
    bindHex: bind(hexPopup, hexTooltip),
    /* a gmina's name at its centre, always visible */
    bindPlaceLabel: function (feature, layer) {
      var name = feature.properties.name;
      if (missing(name)) { return; }
      layer.bindTooltip(esc(name), { permanent: true, direction: "center",
        className: "omw-place", interactive: false });
    }
  };
})();
