/* The investor catalogue: the filter form is the state; the URL mirrors it. On every
   change the server turns the state into one CQL2 filter and the ids it matches
   (/catalogue/matches); the list is a page of /collections/sites/items with that filter,
   the map shows exactly those ids over the API's own vector tiles. window.catalogue
   exposes what is shown (filter, count, ids) and the map, for tests and benchmarks. */
(() => {
  'use strict';
  const cfg = JSON.parse(document.getElementById('catalogue-config').textContent);
  const L = cfg.labels;
  const form = document.getElementById('filters');
  const tbody = document.querySelector('#list tbody');
  const count = document.getElementById('count');
  const pageinfo = document.getElementById('pageinfo');
  const prev = document.getElementById('prev');
  const next = document.getElementById('next');
  const locale = cfg.lang === 'pl' ? 'pl-PL' : 'en-GB';
  const formats = {};
  const num = (value, digits) => {
    if (value === null || value === undefined || value === '') return '';
    const key = String(digits);
    formats[key] = formats[key] || new Intl.NumberFormat(locale, {
      minimumFractionDigits: digits, maximumFractionDigits: digits,
    });
    return formats[key].format(value);
  };
  const label = (key, values) => (L[key] || key).replace(/%\((\w+)\)s/g, (_, k) => values[k]);

  const state = window.catalogue = {
    ready: false, seq: 0, filter: null, matched: null, ids: [], rows: [], map: null, config: cfg,
    drawnIds() {
      const feats = this.map.queryRenderedFeatures({layers: ['sites-fill']});
      const on = feats.filter((f) => f.state && f.state.on);
      return [...new Set(on.map((f) => f.properties.site_id))].sort();
    },
  };

  // ------------------------------------------------------------------ state <-> URL
  function query() {
    const params = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (v !== '') params.append(k, v);
    return params.toString();
  }
  function profile() { return form.elements.profile ? form.elements.profile.value : null; }
  function page() { return Number(form.elements.page.value) || 1; }

  // ------------------------------------------------------------------------- list
  function precinct(ids) {
    const first = (ids || '').split(',')[0];
    const parts = first.split('.');
    return parts.length >= 3 ? parts[1] : '';
  }
  function siteName(p) {
    const parts = [p.gmina];
    const obr = precinct(p.parcel_ids);
    if (obr) parts.push(`${L.precinct} ${obr}`);
    parts.push(`${num(p.area_ha, 1)} ha`);
    if (p.zoning_class) parts.push(p.zoning_class);
    return parts.filter(Boolean).join(' · ');
  }
  function price(p) {
    if (p.price_pln_m2 != null) return `${num(p.price_pln_m2, 0)} ${L['PLN/m²']}`;
    if (p.lease_pln_m2_year != null) return `${num(p.lease_pln_m2_year, 1)} ${L['PLN/m²/year']}`;
    return '—';
  }
  function cell(row, text, cls) {
    const td = row.insertCell();
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  }
  function renderList(doc) {
    const prof = profile();
    tbody.textContent = '';
    state.rows = [];
    for (const f of doc.features) {
      const p = f.properties;
      const rank = prof ? p[`rank_${prof}`] : null;
      const tr = tbody.insertRow();
      tr.dataset.siteId = p.site_id;
      const pick = document.createElement('input');
      pick.type = 'checkbox';
      pick.dataset.shortlistId = p.site_id;
      pick.setAttribute('aria-label', `${L['Shortlist']}: ${siteName(p)}`);
      tr.insertCell().append(pick);
      cell(tr, rank >= 1 ? num(rank, 0) : L['not ranked'], 'num');
      const a = document.createElement('a');
      a.href = cfg.site.replace('SITE_ID', encodeURIComponent(p.site_id));
      a.textContent = siteName(p);
      const name = tr.insertCell();
      name.className = 'name';
      name.append(a);
      cell(tr, p.gmina || '', 'gmina');
      cell(tr, num(p.area_ha, 2), 'num');
      cell(tr, p.zoning_symbol || p.zoning_class || '');
      cell(tr, L[`status:${p.status}`] || p.status || '', `status-${p.status}`);
      cell(tr, price(p), 'num');
      cell(tr, prof ? p[`tier_${prof}`] || '' : '');
      cell(tr, prof && p[`score_${prof}`] != null ? num(p[`score_${prof}`], 2) : '—', 'num');
      state.rows.push(p.site_id);
    }
    if (window.omwShortlist) window.omwShortlist.refresh();  // tick the rows already chosen
    const pages = Math.max(1, Math.ceil(doc.numberMatched / cfg.pageSize));
    count.textContent = `${L['Sites found:']} ${num(doc.numberMatched, 0)}`;
    count.dataset.count = doc.numberMatched;
    if (!doc.numberMatched) {
      const tr = tbody.insertRow();
      const td = cell(tr, L['No site matches these filters.']);
      td.colSpan = 10;
    }
    pageinfo.textContent = label('Page %(page)s of %(pages)s', {page: num(page(), 0), pages: num(pages, 0)});
    prev.disabled = page() <= 1;
    next.disabled = page() >= pages;
  }

  // -------------------------------------------------------------------------- map
  const B = cfg.breaks;
  const C = cfg.colours;
  function colour(prof) {
    const s = ['get', `score_${prof}`];
    return ['case', ['==', ['typeof', s], 'number'],
      ['step', s, C[0], B[0], C[1], B[1], C[2], B[2], C[3], B[3], C[4]], cfg.excludedColour];
  }
  // The matched sites are shown by feature state, not by a layer filter: a new filter
  // makes MapLibre lay out every loaded tile again, a state change only repaints the
  // features whose state changed (several times faster at 20k sites).
  const SITES = {source: 'sites', sourceLayer: 'sites'};
  let shown = new Set();
  function showOnMap(ids) {
    const next = new Set(ids);
    for (const id of shown) if (!next.has(id)) map.removeFeatureState({...SITES, id}, 'on');
    for (const id of next) if (!shown.has(id)) map.setFeatureState({...SITES, id}, {on: true});
    shown = next;
  }
  const visible = ['case', ['boolean', ['feature-state', 'on'], false], 1, 0];
  const map = new maplibregl.Map({
    container: 'map',
    attributionControl: false,
    fadeDuration: 0,  // no symbol fades: 'idle' (list and map agree) comes one frame after
    style: {
      version: 8,
      sources: {
        basemap: {type: 'geojson', data: cfg.basemap},
        sites: {type: 'vector', tiles: [cfg.tiles], minzoom: 0, maxzoom: 14, promoteId: 'site_id'},
      },
      layers: [
        {id: 'background', type: 'background', paint: {'background-color': '#f4f3ef'}},
        {id: 'gminy-fill', type: 'fill', source: 'basemap',
          filter: ['==', ['get', 'layer'], 'gminy'], paint: {'fill-color': '#ecebe4'}},
        {id: 'water', type: 'fill', source: 'basemap',
          filter: ['==', ['get', 'layer'], 'water'], paint: {'fill-color': '#a9cce3'}},
        {id: 'gminy-line', type: 'line', source: 'basemap',
          filter: ['==', ['get', 'layer'], 'gminy'], paint: {'line-color': '#7a5c8f', 'line-width': 1}},
        {id: 'roads', type: 'line', source: 'basemap',
          filter: ['==', ['get', 'layer'], 'roads_main'],
          paint: {'line-color': '#b35806', 'line-width': ['interpolate', ['linear'], ['zoom'], 8, 1, 13, 3]}},
        {id: 'rail', type: 'line', source: 'basemap',
          filter: ['==', ['get', 'layer'], 'rail'],
          paint: {'line-color': '#333', 'line-width': 1.5, 'line-dasharray': [3, 2]}},
        // the outline (same colour) keeps a site smaller than a pixel visible
        {id: 'sites-fill', type: 'fill', source: 'sites', 'source-layer': 'sites',
          paint: {'fill-color': colour(profile()), 'fill-outline-color': colour(profile()),
            'fill-opacity': visible}},
        // below zoom 12 a site is a few pixels at most: a dot at its corners shows it
        {id: 'sites-dot', type: 'circle', source: 'sites', 'source-layer': 'sites', maxzoom: 12,
          paint: {'circle-color': colour(profile()), 'circle-radius': 3, 'circle-opacity': visible,
            'circle-stroke-color': '#333', 'circle-stroke-width': 0.5, 'circle-stroke-opacity': visible}},
      ],
    },
    bounds: cfg.view ? undefined : cfg.bounds,
    fitBoundsOptions: {padding: 20},
    center: cfg.view ? [cfg.view[2], cfg.view[1]] : undefined,
    zoom: cfg.view ? cfg.view[0] : undefined,
  });
  state.map = map;
  // on a phone the legend starts folded, so that it does not cover the map
  if (window.matchMedia('(max-width: 800px)').matches) document.getElementById('legend').open = false;
  map.addControl(new maplibregl.NavigationControl({showCompass: false}));
  map.addControl(new maplibregl.AttributionControl({compact: true,
    customAttribution: 'omw-sites · EGiB, BDOT10k, PRG'}));
  const loaded = new Promise((resolve) => map.on('load', resolve));
  map.on('error', (e) => console.error(L['The map could not be drawn:'], String((e.error && e.error.message) || e)));

  function idle() {
    return new Promise((resolve) => { map.once('idle', resolve); map.triggerRepaint(); });
  }
  map.on('moveend', () => {
    const c = map.getCenter();
    form.elements.map.value = `${map.getZoom().toFixed(2)}/${c.lat.toFixed(5)}/${c.lng.toFixed(5)}`;
    history.replaceState(null, '', `?${query()}`);
  });
  loaded.then(() => fetch(cfg.basemap).then((r) => r.json()).then((doc) => {
    for (const f of doc.features) {
      if (f.properties.layer !== 'gmina_label') continue;
      const el = document.createElement('div');
      el.className = 'gmina-label';
      el.textContent = f.properties.name;
      new maplibregl.Marker({element: el}).setLngLat(f.geometry.coordinates).addTo(map);
      // a place name on the map, not a control: the gmina filter lists the same names
      el.removeAttribute('aria-label');
      el.removeAttribute('role');
      el.setAttribute('aria-hidden', 'true');
      el.tabIndex = -1;
    }
  }));
  // the list row under the pointer shows its site
  map.on('click', 'sites-fill', (e) => {
    const hit = e.features.find((f) => f.state && f.state.on);
    if (!hit) return;
    const id = hit.properties.site_id;
    const row = tbody.querySelector(`tr[data-site-id="${CSS.escape(id)}"]`);
    if (row) { row.scrollIntoView({block: 'nearest'}); row.classList.add('hover'); }
  });

  // ---------------------------------------------------------------------- refresh
  async function getJSON(url) {
    const r = await fetch(url, {headers: {Accept: 'application/json'}});
    if (!r.ok) {
      let detail = r.statusText;
      try { detail = (await r.json()).detail || detail; } catch (e) { /* not JSON */ }
      throw new Error(detail);
    }
    return r.json();
  }
  async function refresh() {
    const seq = ++state.seq;
    state.ready = false;
    document.body.dataset.ready = 'false';
    const qs = query();
    history.replaceState(null, '', `?${qs}`);
    let matches, items;
    try {
      matches = await getJSON(`${cfg.matches}?${qs}`);
      if (seq !== state.seq) return;
      items = await getJSON(matches.items);
    } catch (err) {
      if (seq !== state.seq) return;
      count.textContent = `${L['The list could not be loaded:']} ${err.message}`;
      count.className = 'count error';
      return;
    }
    if (seq !== state.seq) return;
    count.className = 'count';
    renderList(items);
    state.filter = matches.filter;
    state.matched = items.numberMatched;
    state.ids = matches.ids;
    await loaded;
    const prof = profile();
    showOnMap(matches.ids);
    map.setPaintProperty('sites-fill', 'fill-color', colour(prof));
    map.setPaintProperty('sites-fill', 'fill-outline-color', colour(prof));
    map.setPaintProperty('sites-dot', 'circle-color', colour(prof));
    await idle();
    if (seq !== state.seq) return;
    state.ready = true;
    document.body.dataset.ready = 'true';
    document.dispatchEvent(new CustomEvent('catalogue:ready'));
  }

  let timer = null;
  function changed(event) {
    if (event.target.name !== 'page') form.elements.page.value = '1';
    clearTimeout(timer);
    // typing a number waits for a pause; a click or a choice applies at once
    timer = setTimeout(refresh, event.type === 'input' ? 250 : 0);
  }
  form.addEventListener('change', changed);
  form.addEventListener('input', (e) => { if (e.target.type === 'number') changed(e); });
  form.addEventListener('submit', (e) => { e.preventDefault(); refresh(); });
  prev.addEventListener('click', () => { form.elements.page.value = String(page() - 1); refresh(); });
  next.addEventListener('click', () => { form.elements.page.value = String(page() + 1); refresh(); });
  refresh();
})();
