/* omw-sites map helpers: site and hexagon popups/tooltips built from compact properties.
 *
 * Site feature properties: i site_id, g gmina, t TERYT, a area (ha), z zoning symbol,
 * zc zoning class, s score, r rank, x excluded reason, c criteria values (display units,
 * in the order of omw.config.fields).
 * Eligible hexagon: n sites, r best rank, s best score, m median score.
 * Excluded hexagon: n sites, x [[reason, count], ...].
 */
var omw = (function () {
  "use strict";
  var config = { fields: [], nEligible: 0, profile: "" };
  var ENTITIES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

  function esc(v) {
    return String(v).replace(/[&<>"']/g, function (c) { return ENTITIES[c]; });
  }
  function missing(v) {
    return v === null || v === undefined || v === "" || (typeof v === "number" && isNaN(v));
  }
  function num(v, d) {
    if (missing(v)) { return "\u2013"; }
    return Number(v).toLocaleString("en-GB", {
      minimumFractionDigits: d, maximumFractionDigits: d
    });
  }
  function row(th, td, cls) {
    return "<tr" + (cls ? ' class="' + cls + '"' : "") + "><th>" + th + "</th><td>" + td +
      "</td></tr>";
  }

  function sitePopup(p) {
    var h = '<div class="omw-popup"><div class="omw-popup-title">Site ' + esc(p.i) + "</div>";
    h += "<table>";
    h += row("Gmina", esc(missing(p.g) ? "\u2013" : p.g) +
      (missing(p.t) ? "" : " (TERYT " + esc(p.t) + ")"));
    h += row("Area", num(p.a, 2) + " ha");
    var zoning = missing(p.z) ? "\u2013" : esc(p.z);
    if (!missing(p.zc)) { zoning += " \u00b7 class " + esc(p.zc); }
    h += row("Zoning", zoning);
    if (!missing(p.x)) {
      h += row("Score", "\u2013 (excluded)");
      h += row("Rank", "\u2013");
      h += row("Excluded", esc(p.x), "omw-excluded");
    } else {
      h += row("Score", num(p.s, 3) + " <span class=\"omw-dim\">of 1</span>");
      h += row("Rank", num(p.r, 0) + ' <span class="omw-dim">of ' + num(config.nEligible, 0) +
        "</span>");
    }
    h += "</table>";
    if (!missing(p.d) && missing(p.x)) {
      h += '<div class="omw-drivers"><b>Why:</b> ' + esc(p.d) + "</div>";
    }
    if (config.sheetUrl) {
      h += '<div><a href="' + esc(config.sheetUrl.replace("{id}", p.i)) +
        '" target="_blank">Site sheet (karta terenu)</a></div>';
    }
    if (config.fields.length) {
      h += '<table class="omw-criteria"><caption>Criteria (' + esc(config.profile) +
        ")</caption>";
      config.fields.forEach(function (f, k) {
        var v = p.c ? p.c[k] : null;
        var th = esc(f.label);
        if (f.weight !== undefined) {
          th += ' <span class="omw-dim">w ' + num(f.weight, 2) + "</span>";
        }
        h += row(th, missing(v) ? "\u2013" : num(v, f.decimals) + " " + esc(f.unit));
      });
      h += "</table>";
    }
    return h + "</div>";
  }

  function siteTooltip(p) {
    return esc(p.i) + (missing(p.x) ? " \u00b7 rank " + num(p.r, 0) : " \u00b7 excluded");
  }

  function hexPopup(p) {
    var h = '<div class="omw-popup"><div class="omw-popup-title">' + num(p.n, 0) +
      (p.n === 1 ? " site" : " sites") + " in this hexagon</div><table>";
    if (p.x) {
      h += row("Status", "excluded", "omw-excluded");
      p.x.forEach(function (e) { h += row(esc(e[0]), num(e[1], 0)); });
    } else {
      h += row("Best rank", num(p.r, 0) + ' <span class="omw-dim">of ' +
        num(config.nEligible, 0) + "</span>");
      h += row("Best score", num(p.s, 3));
      h += row("Median score", num(p.m, 3));
    }
    h += "</table>";
    if (!p.x) {
      h += '<div class="omw-dim">These sites rank below the ones drawn as polygons.</div>';
    }
    return h + "</div>";
  }

  function hexTooltip(p) {
    return num(p.n, 0) + (p.x ? " excluded" : " more") + (p.n === 1 ? " site" : " sites") +
      (p.x ? "" : " \u00b7 best rank " + num(p.r, 0));
  }

  function bind(popup, tooltip) {
    return function (feature, layer) {
      layer.bindPopup(function () { return popup(feature.properties); }, { maxWidth: 400 });
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
    bindHex: bind(hexPopup, hexTooltip)
  };
})();
