// The investor's shortlist: up to N site IDs kept in the browser (localStorage key
// "omw-sites.shortlist", a JSON array), so any page can add to it without the API.
// A page opts in by loading this script and marking its controls:
//   <input type="checkbox" data-shortlist-id="S…">    ticks a site on or off
//   <a data-compare-base="/catalogue/compare" data-lang="pl"> … <span class="shortlist-count">
//                                                       links to /catalogue/compare?ids=…
//   <button data-remove-id="S…">                         (compare page) drops a site
// window.omwShortlist = {read, add, remove, has, refresh, max, key} for other scripts: a
// page that draws its checkboxes later (the catalogue's list) calls refresh() after.
(function () {
  "use strict";
  var KEY = "omw-sites.shortlist";
  var script = document.currentScript;
  var MAX = parseInt((script && script.getAttribute("data-max")) || "10", 10);
  var FULL = (script && script.getAttribute("data-full")) || "The shortlist is full.";

  function read() {
    try {
      var v = JSON.parse(window.localStorage.getItem(KEY) || "[]");
      if (!Array.isArray(v)) return [];
      return v.filter(function (x) { return typeof x === "string" && /^[A-Za-z0-9_-]{1,64}$/.test(x); }).slice(0, MAX);
    } catch (e) {
      return [];
    }
  }
  function write(ids) {
    window.localStorage.setItem(KEY, JSON.stringify(ids.slice(0, MAX)));
    refresh();
  }
  function has(id) { return read().indexOf(id) >= 0; }
  function add(id) {
    var ids = read();
    if (ids.indexOf(id) >= 0) return true;
    if (ids.length >= MAX) return false;
    ids.push(id);
    write(ids);
    return true;
  }
  function remove(id) { write(read().filter(function (x) { return x !== id; })); }

  function compareHref(base, lang, ids) {
    var q = [];
    if (ids.length) q.push("ids=" + ids.map(encodeURIComponent).join(","));
    if (lang) q.push("lang=" + encodeURIComponent(lang));
    return base + (q.length ? "?" + q.join("&") : "");
  }
  function say(text) {
    var boxes = document.querySelectorAll(".shortlist-message");
    for (var i = 0; i < boxes.length; i++) boxes[i].textContent = text;
  }
  function refresh() {
    var ids = read();
    var counts = document.querySelectorAll(".shortlist-count");
    for (var i = 0; i < counts.length; i++) counts[i].textContent = String(ids.length);
    var links = document.querySelectorAll("a[data-compare-base]");
    for (var j = 0; j < links.length; j++) {
      var a = links[j];
      a.href = compareHref(a.getAttribute("data-compare-base"), a.getAttribute("data-lang"), ids);
    }
    var boxes = document.querySelectorAll("input[data-shortlist-id]");
    for (var k = 0; k < boxes.length; k++) boxes[k].checked = ids.indexOf(boxes[k].getAttribute("data-shortlist-id")) >= 0;
  }

  document.addEventListener("change", function (ev) {
    var box = ev.target;
    if (!box || !box.matches || !box.matches("input[data-shortlist-id]")) return;
    var id = box.getAttribute("data-shortlist-id");
    if (box.checked) {
      if (!add(id)) { box.checked = false; say(FULL); return; }
    } else {
      remove(id);
    }
    say("");
  });
  document.addEventListener("click", function (ev) {
    var btn = ev.target && ev.target.closest ? ev.target.closest("button[data-remove-id]") : null;
    if (!btn) return;
    var id = btn.getAttribute("data-remove-id");
    remove(id);
    var url = new URL(window.location.href);
    var left = (url.searchParams.get("ids") || "").split(",").filter(function (x) { return x && x !== id; });
    if (left.length) url.searchParams.set("ids", left.join(",")); else url.searchParams.delete("ids");
    window.location.assign(url.toString());
  });
  // another tab changed the shortlist: show it here too
  window.addEventListener("storage", function (ev) { if (ev.key === KEY) refresh(); });
  // the compare page opened without ids (from the menu) shows the stored shortlist
  if (document.body.classList.contains("compare-page")) {
    var url = new URL(window.location.href);
    var stored = read();
    if (!url.searchParams.get("ids") && stored.length) {
      url.searchParams.set("ids", stored.join(","));
      window.location.replace(url.toString());
    }
  }
  window.omwShortlist = {
    read: read, add: add, remove: remove, has: has, refresh: refresh, max: MAX, key: KEY
  };
  refresh();
})();
