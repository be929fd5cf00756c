/* The interactive map of geoservice (/map, 我的包保 map, /screen).
 *
 * The page is built by folium (geoservice/web/maps.py): its layer objects call the factories
 * below (GeoMap.basemap, .layer, .issues, .heat, .choropleth) and GeoMap.start(map) wires the
 * panel. Data never sits in the page: layers and issues come as vector tiles from
 * /api/collections/{id}/tiles, the rest from /api/map/… — always with the current filters, so
 * what is drawn is what the server selects. Popups are HTML fragments rendered (and escaped)
 * by the server; text built here goes through textContent only.
 *
 * The page's settings are the JSON in <script type="application/json" id="gs-map-config">.
 * For tests and the benchmark, window.gsMap counts tiles and features drawn per layer.
 */
(function () {
  'use strict';

  var GeoMap = window.GeoMap = {};
  var status = window.gsMap = {
    tiles: {}, features: {}, loadedAt: {}, errors: [], popups: 0, firstFeaturesAt: null
  };
  var cfg = null;
  var map = null;
  var state = null;
  var overlays = {};   // id → layer object (as made by the factories)
  var basemaps = {};   // id → L.LayerGroup
  var CLASS_COLOURS = {};
  var REDS = ['#fee5d9', '#fcae91', '#fb6a4a', '#de2d26', '#a50f15'];

  window.addEventListener('error', function (e) { status.errors.push(String(e.message)); });
  window.addEventListener('unhandledrejection', function (e) { status.errors.push(String(e.reason)); });

  function config() {
    if (!cfg) {
      cfg = JSON.parse(document.getElementById('gs-map-config').textContent);
      state = JSON.parse(JSON.stringify(cfg.state));
      cfg.classes.forEach(function (c) { CLASS_COLOURS[c.id] = c.colour; });
      patchVectorGrid();
    }
    return cfg;
  }

  // --- Leaflet.VectorGrid 1.3.0 on Leaflet 1.9 ----------------------------------------------
  // VectorGrid's canvas tiles call L.DomEvent.fakeStop on click, which Leaflet 1.8 removed
  // (TypeError on every click on an interactive layer). Its click handler is replaced by one in
  // Leaflet 1.9's style; a click that hits nothing on the topmost tile canvas is passed to the
  // canvases below it (the layers underneath), and to the map when no feature is hit at all.
  // tests/test_map_browser.py clicks points, polygons under points and empty map.
  function patchVectorGrid() {
    if (!L.DomEvent.fakeStop) { L.DomEvent.fakeStop = function (e) { e._stopped = true; }; }
    var proto = L.Canvas.Tile && L.Canvas.Tile.prototype;
    if (!proto || proto._gsPatched) { return; }
    var initialize = proto.initialize;
    proto.initialize = function (tileCoord, tileSize, options) {
      initialize.call(this, tileCoord, tileSize, options);
      this._container._gsTile = this;
    };
    proto._hit = function (e) {
      if (!this._map) { return null; }
      var point = this._map.mouseEventToLayerPoint(e).subtract(this.getOffset());
      var hit = null;
      var moved = (e.type === 'click' || e.type === 'preclick');
      for (var id in this._layers) {
        var layer = this._layers[id];
        if (layer.options.interactive && layer._containsPoint(point) &&
            !(moved && this._map._draggableMoved(layer))) { hit = layer; }
      }
      return hit;
    };
    proto._onClick = function (e) {
      var renderer = this;
      var hit = this._hit(e);
      if (!hit && document.elementsFromPoint) {
        var below = document.elementsFromPoint(e.clientX, e.clientY);
        for (var i = 0; i < below.length && !hit; i++) {
          var other = below[i]._gsTile;
          if (other && other !== this && other._map) {
            hit = other._hit(e);
            if (hit) { renderer = other; }
          }
        }
      }
      renderer._fireEvent(hit ? [hit] : false, e);
    };
    // Leaflet 1.9 treats a small circle as a marker and asks for its latlng on every mouse
    // event; VectorGrid's point symbolizers only know their pixel in the tile.
    var fireEvent = proto._fireEvent;
    proto._fireEvent = function (layers, e, type) {
      for (var i = 0; layers && i < layers.length; i++) {
        var l = layers[i];
        if (l._point && !l._latlng && this._map) {
          l._latlng = this._map.layerPointToLatLng(l._point.add(this.getOffset()));
        }
      }
      return fireEvent.call(this, layers, e, type);
    };
    // Labels (text points) and cluster-free canvases draw text where a point style asks for it.
    var updateCircle = proto._updateCircle;
    proto._updateCircle = function (layer) {
      var text = layer.options.text;
      if (!text) { return updateCircle.call(this, layer); }
      if (!this._drawing || layer._empty()) { return; }
      var p = layer._point, ctx = this._ctx;
      ctx.font = layer.options.font || '12px sans-serif';
      ctx.textAlign = 'center';
      ctx.textBaseline = 'middle';
      ctx.lineWidth = 3;
      ctx.strokeStyle = layer.options.halo || 'rgba(255,255,255,0.9)';
      ctx.strokeText(text, p.x, p.y);
      ctx.fillStyle = layer.options.textColor || '#123';
      ctx.fillText(text, p.x, p.y);
    };
    proto._gsPatched = true;
  }

  // Drawing order (z-index): choropleth < layers < labels < heat (overlayPane, 400) < issues <
  // cluster bubbles (markerPane, 600) < popups.
  var PANES = { 'gs-theme': 250, 'gs-layers': 300, 'gs-labels': 350, 'gs-issues': 450 };

  function ensurePanes(m) {
    for (var name in PANES) {
      if (!m.getPane(name)) { m.createPane(name).style.zIndex = String(PANES[name]); }
    }
  }

  // --- request parameters from the state ------------------------------------------------------

  function leaderFilter() {
    if (state.mine && cfg.me.leader_id) { return String(cfg.me.leader_id); }
    return state.filters.leader_id || '';
  }

  function issueParams(options) {
    var p = new URLSearchParams();
    cfg.filters.forEach(function (name) {
      var v = state.filters[name];
      if (name === 'status' && (v === 'all' || (options && options.noStatus))) { return; }
      if (v) { p.set(name, v); }
    });
    var leader = leaderFilter();
    if (leader) { p.set('leader_id', leader); }
    return p;
  }

  function layerParams() {
    var p = new URLSearchParams();
    var leader = leaderFilter();
    if (leader) { p.set('leader_id', leader); }
    return p;
  }

  function withShift(p) {
    if (cfg.basemap.shift) { p.set('shift', cfg.basemap.shift); }
    return p;
  }

  function url(template, params) {
    var q = params.toString();
    return template + (q ? (template.indexOf('?') < 0 ? '?' : '&') + q : '');
  }

  function getJSON(path, params) {
    return fetch(url(path, params), { credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then(function (r) {
        if (r.status === 401) { showNotice('登录已过期，请刷新页面重新登录'); }
        if (r.status === 400) {  // a filter the server refuses (a 'from' after the 'to' …): say so
          return r.json().catch(function () { return {}; }).then(function (e) {
            showNotice(BAD_FILTER + (e.error || '请检查筛选条件'));
            throw new Error(path + ' → 400');
          });
        }
        if (!r.ok) { throw new Error(path + ' → ' + r.status); }
        var notice = document.getElementById('gs-notice');
        if (notice && notice.textContent.indexOf(BAD_FILTER) === 0) { showNotice(''); }
        return r.json();
      });
  }

  var BAD_FILTER = '筛选条件有误：';

  function showNotice(text) {
    var el = document.getElementById('gs-notice');
    if (el) { el.textContent = text; el.hidden = !text; }
  }

  // --- bookkeeping for tests and the benchmark ----------------------------------------------

  function counted(id, tile) {
    status.tiles[id] = (status.tiles[id] || 0) + 1;
    var n = 0;
    for (var name in tile.layers) { n += tile.layers[name].features.length; }
    status.features[id] = (status.features[id] || 0) + n;
    if (n && status.firstFeaturesAt === null) { status.firstFeaturesAt = performance.now(); }
    return tile;
  }

  // A VectorGrid.Protobuf whose decoded tiles pass through `after(tile, coords)` first.
  function protobufGrid(id, template, options, after) {
    var Grid = L.VectorGrid.Protobuf.extend({
      _getVectorTilePromise: function (coords) {
        return L.VectorGrid.Protobuf.prototype._getVectorTilePromise.call(this, coords)
          .then(function (tile) {
            counted(id, tile);
            return after ? after(tile, coords) : tile;
          });
      }
    });
    var grid = new Grid(template, L.extend({
      rendererFactory: L.canvas.tile,
      maxNativeZoom: 22,
      fetchOptions: cfg.mode === 'screen' ? { credentials: 'same-origin', cache: 'no-cache' }
                                            : { credentials: 'same-origin' }
    }, options));
    grid.on('load', function () {
      status.tiles[id + ':load'] = (status.tiles[id + ':load'] || 0) + 1;
      status.loadedAt[id] = status.loadedAt[id] || performance.now();
    });
    return grid;
  }

  // --- basemaps -------------------------------------------------------------------------------

  GeoMap.basemap = function (id) {
    config();
    var group = L.layerGroup();
    var choice = cfg.basemap.choices.filter(function (c) { return c.id === id; })[0];
    (choice ? choice.sources : []).forEach(function (s) {
      group.addLayer(L.tileLayer(s.url, {
        subdomains: s.subdomains || 'abc', maxZoom: 20, maxNativeZoom: s.maxZoom,
        attribution: s.attribution
      }));
    });
    group.gsId = id;
    basemaps[id] = group;
    return group;
  };

  // --- registered layers ----------------------------------------------------------------------

  function layerStyle(spec) {
    return function (props) {
      var s = L.extend({}, spec.style);
      if (spec.styleBy && spec.styleBy.styles[props[spec.styleBy.attribute]]) {
        L.extend(s, spec.styleBy.styles[props[spec.styleBy.attribute]]);
      }
      s.fill = spec.polygonal;
      if (!spec.polygonal) { s.radius = s.radius || 6; s.fill = true; s.fillOpacity = s.fillOpacity || 0.8; }
      return s;
    };
  }

  function placeId(feature) {
    feature.properties.__id = feature.id;  // the click handler needs it; properties are shared
    return feature.id;
  }

  var LayerOverlay = L.LayerGroup.extend({
    initialize: function (spec) {
      L.LayerGroup.prototype.initialize.call(this, []);
      this.gsId = spec.id;
      this._spec = spec;
      var styles = {};
      styles[spec.id] = layerStyle(spec);
      // At low zoom the server folds features smaller than a pixel (and points in cells
      // too dense for the tile's budget) into counted points
      // (layer `<id>_folded`): drawn as faint dots so an area never looks empty.
      styles[spec.id + '_folded'] = {
        radius: 2, stroke: false, fill: true, fillOpacity: 0.5,
        fillColor: (spec.style && spec.style.color) || '#3b6ea8'
      };
      this._grid = protobufGrid(spec.id, this._url(spec.tiles), {
        vectorTileLayerStyles: styles, interactive: true, minZoom: spec.minZoom,
        getFeatureId: placeId, pane: 'gs-layers', zIndex: spec.zIndex
      });
      this._grid.on('click', onPlaceClick);
      this.addLayer(this._grid);
      if (spec.labels) {
        var labelStyles = {};
        labelStyles[spec.id] = function (props) {
          return { radius: 1, stroke: false, fill: false, text: props.label, font: '11px sans-serif' };
        };
        this._labels = protobufGrid(spec.id + ':labels', this._url(spec.labels), {
          vectorTileLayerStyles: labelStyles, minZoom: spec.labelMinZoom, pane: 'gs-labels'
        });
        this.addLayer(this._labels);
      }
    },
    onAdd: function (m) {
      ensurePanes(m);
      L.LayerGroup.prototype.onAdd.call(this, m);
    },
    _url: function (template) { return url(template, withShift(layerParams())); },
    refresh: function () {
      this._grid.setUrl(this._url(this._spec.tiles));
      if (this._labels) { this._labels.setUrl(this._url(this._spec.labels)); }
    }
  });

  GeoMap.layer = function (id) {
    config();
    var spec = cfg.layers.filter(function (l) { return l.id === id; })[0];
    var layer = new LayerOverlay(spec);
    overlays[id] = layer;
    return layer;
  };

  // --- issues: aggregated cells at low zoom (cluster bubbles), coloured points at high zoom ---

  function issueClass(p) {
    if (p.overdue) { return 'overdue'; }
    if (p.status === 'fixed') { return 'fixed'; }
    if (p.status === 'closed' || p.status === 'rejected') { return 'closed'; }
    return 'open';
  }

  function issueStyle(props) {
    return {
      radius: 6, fill: true, fillColor: CLASS_COLOURS[issueClass(props)], fillOpacity: 0.95,
      color: '#ffffff', weight: 1.5
    };
  }

  function shortCount(n) {
    return n >= 10000 ? (n / 10000).toFixed(n >= 100000 ? 0 : 1) + '万' : String(n);
  }

  function clusterMarker(latlng, g) {
    var share = g.n ? g.open / g.n : 0;
    var level = share >= 0.5 ? 'hot' : (share >= 0.2 ? 'warm' : 'cool');
    var d = Math.round(Math.min(58, 24 + 9 * Math.log(g.n) / Math.LN10));
    var marker = L.marker(latlng, {
      icon: L.divIcon({
        className: 'gs-cluster gs-cluster-' + level,
        html: '<span>' + shortCount(g.n) + '</span>',
        iconSize: [d, d]
      }),
      keyboard: false,
      title: '问题 ' + g.n + ' 件，其中未销号 ' + g.open + ' 件（点击放大）'
    });
    marker.on('click', function () { map.setView(latlng, Math.min(map.getZoom() + 2, cfg.issues.aggregateMaxZoom + 1)); });
    return marker;
  }

  var IssueLayer = L.Layer.extend({
    initialize: function () {
      var self = this;
      this.gsId = 'issues';
      this._clusters = L.layerGroup();
      this._byTile = {};
      var styles = {};
      styles[cfg.issues.layer] = issueStyle;
      this._grid = protobufGrid('issues', this._url(), {
        vectorTileLayerStyles: styles, interactive: true, getFeatureId: placeId, pane: 'gs-issues'
      }, function (tile, coords) { return self._split(tile, coords); });
      this._grid.on('tileunload', function (e) { self._drop(self._grid._tileCoordsToKey(e.coords)); });
      this._grid.on('click', onIssueClick);
    },
    _url: function () { return url(cfg.issues.tiles, withShift(issueParams())); },
    onAdd: function (m) { ensurePanes(m); this._clusters.addTo(m); this._grid.addTo(m); },
    onRemove: function (m) {
      m.removeLayer(this._grid);
      m.removeLayer(this._clusters);
      this._clusters.clearLayers();
      this._byTile = {};
    },
    refresh: function () {
      this._clusters.clearLayers();
      this._byTile = {};
      this._grid.setUrl(this._url());
    },
    _drop: function (key) {
      (this._byTile[key] || []).forEach(function (m) { this._clusters.removeLayer(m); }, this);
      delete this._byTile[key];
    },
    // Cluster cells (1/32–1/64 of a tile) are merged into 4 × 4 bubbles per tile, drawn as
    // markers above the tiles (so a bubble is never cut at a tile edge); single issues stay in
    // the tile as coloured points.
    _split: function (tile, coords) {
      var layer = tile.layers[cfg.issues.layer];
      if (!layer) { return tile; }
      var extent = layer.extent || 4096, cell = extent / 4, groups = {}, points = [];
      layer.features.forEach(function (f) {
        if (!f.properties.cluster) { points.push(f); return; }
        var p = f.geometry[0][0];
        if (p.x < 0 || p.y < 0 || p.x >= extent || p.y >= extent) { return; }  // a neighbour's
        var key = Math.floor(p.x / cell) + ':' + Math.floor(p.y / cell);
        var g = groups[key] || (groups[key] = { n: 0, open: 0, x: 0, y: 0 });
        var n = f.properties.count;
        g.n += n; g.open += f.properties.open; g.x += p.x * n; g.y += p.y * n;
      });
      layer.features = points;
      var key = this._grid._tileCoordsToKey(coords);
      if (!this._map || !this._grid._tiles[key]) { return tile; }
      this._drop(key);
      var size = this._grid.getTileSize();
      var markers = [];
      for (var k in groups) {
        var g = groups[k];
        var px = L.point((coords.x + g.x / g.n / extent) * size.x, (coords.y + g.y / g.n / extent) * size.y);
        var marker = clusterMarker(this._map.unproject(px, coords.z), g);
        markers.push(marker);
        this._clusters.addLayer(marker);
      }
      this._byTile[key] = markers;
      return tile;
    }
  });

  GeoMap.issues = function () {
    config();
    overlays.issues = new IssueLayer();
    return overlays.issues;
  };

  // --- heat map of open issues ----------------------------------------------------------------

  var HeatOverlay = L.Layer.extend({
    initialize: function () { this.gsId = 'heat'; },
    onAdd: function (m) {
      this._heat = L.heatLayer([], { radius: 22, blur: 18, minOpacity: 0.25, maxZoom: 18 }).addTo(m);
      m.on('moveend', this.refresh, this);
      this.refresh();
    },
    onRemove: function (m) {
      m.off('moveend', this.refresh, this);
      m.removeLayer(this._heat);
      this._heat = null;
    },
    refresh: function () {
      if (!this._map || !this._heat) { return; }
      var b = this._map.getBounds();
      var p = issueParams({ noStatus: true });
      p.set('bbox', [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(function (v) {
        return Math.max(-180, Math.min(180, v)).toFixed(6);
      }).join(','));
      p.set('z', String(this._map.getZoom()));
      var self = this;
      var token = this._token = {};
      getJSON(cfg.endpoints.heat, p).then(function (data) {
        if (self._token !== token || !self._heat) { return; }
        var points = data.points.map(function (q) { return [q[0], q[1], Math.sqrt(q[2])]; });
        self._heat.setOptions({ max: Math.max(1, Math.sqrt(data.max) * 0.7) });
        self._heat.setLatLngs(points);
        status.tiles.heat = (status.tiles.heat || 0) + 1;
        status.features.heat = points.length;
      }).catch(function (e) { status.errors.push(String(e)); });
    }
  });

  GeoMap.heat = function () {
    config();
    overlays.heat = new HeatOverlay();
    return overlays.heat;
  };

  // --- choropleth of grids / communities by open or overdue issues ---------------------------

  var Choropleth = L.Layer.extend({
    initialize: function () {
      this.gsId = 'theme';
      this._counts = {};
      this._breaks = [];
      this._of = null;
      this._legend = L.control({ position: 'bottomright' });
      var self = this;
      this._legend.onAdd = function () {
        self._legendEl = L.DomUtil.create('div', 'gs-legend');
        self._drawLegend();
        return self._legendEl;
      };
    },
    theme: function () {
      var parts = (state.theme || cfg.themes[0].id).split(':');
      return { of: parts[0], measure: parts[1] || 'open' };
    },
    onAdd: function (m) {
      ensurePanes(m);
      if (!state.theme) { state.theme = cfg.themes[0].id; syncForm(); writeUrl(); }
      this._legend.addTo(m);
      this.refresh();
    },
    onRemove: function (m) {
      if (this._grid) { m.removeLayer(this._grid); }
      this._grid = null;
      this._of = null;
      m.removeControl(this._legend);
    },
    colour: function (n) {
      if (!n) { return null; }
      var b = this._breaks, colours = REDS.slice(REDS.length - b.length);
      for (var i = 0; i < b.length; i++) { if (n <= b[i]) { return colours[i]; } }
      return colours[colours.length - 1];
    },
    refresh: function () {
      if (!this._map) { return; }
      var t = this.theme(), self = this;
      var p = issueParams({ noStatus: true });
      p.set('of', t.of);
      p.set('measure', t.measure);
      var token = this._token = {};
      getJSON(cfg.endpoints.counts, p).then(function (data) {
        if (self._token !== token || !self._map) { return; }
        self._counts = data.counts;
        self._breaks = data.breaks;
        self._data = data;
        self._drawLegend();
        if (self._of !== t.of) { self._makeGrid(t.of); } else if (self._grid) { self._grid.redraw(); }
        status.tiles.theme = (status.tiles.theme || 0) + 1;
      }).catch(function (e) { status.errors.push(String(e)); });
    },
    _makeGrid: function (of) {
      var self = this, def = cfg.themeShapes[of];
      if (this._grid) { this._map.removeLayer(this._grid); }
      var styles = {};
      styles[def.layer] = function (props) {
        var colour = self.colour(self._counts[String(props.__id)]);
        return {
          fill: true, fillColor: colour || '#ffffff', fillOpacity: colour ? 0.7 : 0.05,
          color: '#7a4b3a', weight: 0.6, opacity: 0.6
        };
      };
      styles[def.layer + '_folded'] = [];  // sub-pixel shapes have no colour of their own
      this._of = of;
      this._grid = protobufGrid('theme', url(def.tiles, withShift(new URLSearchParams())), {
        vectorTileLayerStyles: styles, interactive: true, minZoom: def.minZoom,
        getFeatureId: placeId, pane: 'gs-theme'
      });
      this._grid.on('click', function (e) {
        if (def.places) { onPlaceClick(e); return; }
        L.DomEvent.stopPropagation(e);
        var props = e.layer.properties, box = document.createElement('div');
        box.className = 'gs-popup';
        var h = document.createElement('h3');
        h.textContent = props.name + '（' + props.code + '）';
        var line = document.createElement('p');
        line.textContent = (self._data ? self._data.measure_title : '问题') + '：' +
          (self._counts[String(props.__id)] || 0) + ' 件';
        box.appendChild(h);
        box.appendChild(line);
        L.popup().setLatLng(e.latlng).setContent(box).openOn(map);
      });
      this._grid.addTo(this._map);
    },
    _drawLegend: function () {
      var el = this._legendEl;
      if (!el) { return; }
      el.textContent = '';
      var data = this._data, t = this.theme();
      var title = document.createElement('b');
      title.textContent = data ? data.of_title + ' · ' + data.measure_title : '专题图';
      el.appendChild(title);
      var b = this._breaks, colours = REDS.slice(REDS.length - b.length), low = 1;
      if (!b.length) {
        var none = document.createElement('div');
        none.textContent = data ? '无' : '加载中…';
        el.appendChild(none);
      }
      b.forEach(function (high, i) {
        var row = document.createElement('div'), sw = document.createElement('i');
        sw.style.background = colours[i];
        row.appendChild(sw);
        row.appendChild(document.createTextNode(low === high ? String(high) : low + '–' + high));
        el.appendChild(row);
        low = high + 1;
      });
      var def = cfg.themeShapes[t.of];
      if (def && map && map.getZoom() < def.minZoom) {
        var hint = document.createElement('div');
        hint.className = 'gs-hint';
        hint.textContent = '放大到 ' + def.minZoom + ' 级以上显示';
        el.appendChild(hint);
      }
    }
  });

  GeoMap.choropleth = function () {
    config();
    overlays.theme = new Choropleth();
    return overlays.theme;
  };

  // --- popups and the side panel --------------------------------------------------------------

  function showDetail(html) {
    var el = document.getElementById('gs-detail');
    if (el) { el.innerHTML = html; el.hidden = false; }
  }

  var lastPopup = null;

  function openFragment(latlng, path) {
    var popup = L.popup({ maxWidth: 340 }).setLatLng(latlng).setContent('加载中…').openOn(map);
    lastPopup = popup;
    fetch(path, { credentials: 'same-origin', headers: { Accept: 'text/html' } })
      .then(function (r) {
        if (r.redirected) { throw new Error('登录已过期，请刷新页面重新登录'); }
        if (!r.ok) { throw new Error(r.status === 404 ? '无权查看或已不存在' : '加载失败'); }
        return r.text();
      })
      .then(function (html) {  // server-rendered and escaped (templates/maps/_*.html)
        if (popup !== lastPopup) { return; }  // a later click won
        popup.setContent(html);
        showDetail(html);
        status.popups += 1;
      })
      .catch(function (e) { popup.setContent(document.createTextNode(e.message)); });
  }

  function onPlaceClick(e) {
    L.DomEvent.stopPropagation(e);
    var id = e.layer.properties.__id;
    if (id === undefined) { return; }
    openFragment(e.latlng, cfg.endpoints.placePopup.replace('{id}', String(id)));
  }

  function onIssueClick(e) {
    L.DomEvent.stopPropagation(e);
    var id = e.layer.properties.__id;
    if (id === undefined) { return; }
    openFragment(e.latlng, cfg.endpoints.issuePopup.replace('{id}', String(id)));
  }

  function onMapClick(e) {
    if (e.originalEvent && e.originalEvent._stopped) { return; }
    if (!cfg.endpoints.report) { return; }
    // e.latlng is WGS-84 on every basemap (L.CRS.GCJ02 unprojects to WGS-84).
    var lon = e.latlng.lng.toFixed(7), lat = e.latlng.lat.toFixed(7);
    var box = document.createElement('div');
    box.className = 'gs-popup';
    var where = document.createElement('p');
    where.textContent = '经度 ' + lon + '，纬度 ' + lat;
    var a = document.createElement('a');
    a.className = 'gs-report';
    a.href = url(cfg.endpoints.report, new URLSearchParams({ lon: lon, lat: lat }));
    a.textContent = '在此处上报问题';
    box.appendChild(where);
    box.appendChild(a);
    L.popup().setLatLng(e.latlng).setContent(box).openOn(map);
  }

  // --- summary (counts for the current filters) -----------------------------------------------

  function refreshSummary() {
    var el = document.getElementById('gs-summary');
    if (!el) { return; }
    getJSON(cfg.endpoints.summary, issueParams()).then(function (data) {
      el.textContent = '';
      var total = document.createElement('div');
      total.className = 'gs-total';
      total.textContent = '符合条件的问题 ' + data.total + ' 件';
      el.appendChild(total);
      data.classes.forEach(function (c) {
        var row = document.createElement('div'), sw = document.createElement('i');
        row.className = 'gs-class';
        sw.style.background = c.colour;
        row.appendChild(sw);
        row.appendChild(document.createTextNode(c.title + ' ' + c.count));
        el.appendChild(row);
      });
      status.summary = data;
    }).catch(function (e) {
      el.textContent = '';  // no figures of an earlier filter beside an empty map
      status.summary = null;
      status.errors.push(String(e));
    });
  }

  // --- state ⇄ URL and the filter form -----------------------------------------------------

  function writeUrl() {
    var p = new URLSearchParams();
    cfg.filters.forEach(function (name) { if (state.filters[name]) { p.set(name, state.filters[name]); } });
    if (state.mine) { p.set('mine', '1'); }
    var visible = Object.keys(overlays).filter(function (id) { return map && map.hasLayer(overlays[id]); });
    p.set('layers', visible.join(','));
    if (state.theme && map && overlays.theme && map.hasLayer(overlays.theme)) { p.set('theme', state.theme); }
    if (state.base) { p.set('base', state.base); }
    var hash = '';
    if (map) {
      var c = map.getCenter();
      hash = '#' + map.getZoom() + '/' + c.lat.toFixed(5) + '/' + c.lng.toFixed(5);
    }
    history.replaceState(null, '', location.pathname + '?' + p.toString() + hash);
  }

  function readHash() {
    var m = /^#(\d+)\/(-?[\d.]+)\/(-?[\d.]+)$/.exec(location.hash);
    return m ? { zoom: +m[1], center: L.latLng(+m[2], +m[3]) } : null;
  }

  function form() { return document.getElementById('gs-filters'); }

  function syncForm() {
    var f = form();
    if (!f) { return; }
    ['category', 'source', 'status', 'unit_id'].forEach(function (name) {
      if (f.elements[name]) { f.elements[name].value = state.filters[name] || (name === 'status' ? 'open' : ''); }
    });
    var dt = (state.filters.datetime || '').split('/');
    if (f.elements.from) { f.elements.from.value = dt[0] && dt[0] !== '..' ? dt[0] : ''; }
    if (f.elements.to) { f.elements.to.value = dt[1] && dt[1] !== '..' ? dt[1] : ''; }
    if (f.elements.mine) { f.elements.mine.checked = !!state.mine; }
    if (f.elements.theme) { f.elements.theme.value = state.theme || ''; }
  }

  function readForm() {
    var f = form();
    ['category', 'source', 'status', 'unit_id'].forEach(function (name) {
      if (f.elements[name]) { state.filters[name] = f.elements[name].value; }
    });
    var from = f.elements.from ? f.elements.from.value : '', to = f.elements.to ? f.elements.to.value : '';
    state.filters.datetime = (from || to) ? (from || '..') + '/' + (to || '..') : '';
    if (f.elements.mine) { state.mine = f.elements.mine.checked; }
  }

  function applyFilters() {
    Object.keys(overlays).forEach(function (id) {
      if (overlays[id].refresh) { overlays[id].refresh(); }
    });
    refreshSummary();
    writeUrl();
  }

  function setupLeaderPicker() {
    var input = document.getElementById('gs-leader');
    var list = document.getElementById('gs-leader-list');
    if (!input || !list) { return; }
    var timer = null;
    input.addEventListener('input', function () {
      var m = /#(\d+)$/.exec(input.value);
      if (m) {
        state.filters.leader_id = m[1];
        applyFilters();
        return;
      }
      if (!input.value) { state.filters.leader_id = ''; applyFilters(); return; }
      clearTimeout(timer);
      timer = setTimeout(function () {
        getJSON(cfg.endpoints.leaders, new URLSearchParams({ q: input.value })).then(function (data) {
          list.textContent = '';
          data.leaders.slice(0, 30).forEach(function (l) {
            var o = document.createElement('option');
            o.value = l.name + ' · ' + (l.unit || l.title || '') + ' #' + l.id;
            list.appendChild(o);
          });
        }).catch(function () {});
      }, 250);
    });
  }

  function setupUnits() {
    var select = form() && form().elements.unit_id;
    if (!select || !cfg.endpoints.units) { return; }
    getJSON(cfg.endpoints.units, new URLSearchParams()).then(function (data) {
      data.units.forEach(function (u) {
        var o = document.createElement('option');
        o.value = String(u.id);
        o.textContent = u.name;
        select.appendChild(o);
      });
      select.value = state.filters.unit_id || '';
    }).catch(function () {});
  }

  function setupForm() {
    var f = form();
    if (!f) { return; }
    syncForm();
    f.addEventListener('change', function (e) {
      if (e.target.name === 'leader') { return; }
      if (e.target.name === 'theme') {
        state.theme = e.target.value;
        if (!state.theme) { map.removeLayer(overlays.theme); }
        else if (map.hasLayer(overlays.theme)) { overlays.theme.refresh(); }
        else { map.addLayer(overlays.theme); }
        writeUrl();
        return;
      }
      readForm();
      applyFilters();
    });
    f.addEventListener('submit', function (e) { e.preventDefault(); });
    var reset = document.getElementById('gs-reset');
    if (reset) {
      reset.addEventListener('click', function () {
        state.filters = { status: 'open' };
        state.mine = false;
        var leader = document.getElementById('gs-leader');
        if (leader) { leader.value = ''; }
        syncForm();
        applyFilters();
      });
    }
    setupLeaderPicker();
    setupUnits();
  }

  // --- start ------------------------------------------------------------------------------------

  // The first view: the URL's (#zoom/lat/lon), else the page's bounds (the leader's places,
  // the account's area, or everything).
  GeoMap.view = function (m) {
    config();
    map = m;
    var view = readHash();
    if (view) { map.setView(view.center, view.zoom, { animate: false }); }
    else if (cfg.bounds) {
      map.fitBounds([[cfg.bounds[1], cfg.bounds[0]], [cfg.bounds[3], cfg.bounds[2]]],
                    { maxZoom: 17, padding: [20, 20], animate: false });
    }
  };

  GeoMap.start = function (m) {
    config();
    map = m;
    map.on('click', onMapClick);
    map.on('moveend', writeUrl);
    map.on('overlayadd overlayremove', function (e) {
      if (e.layer === overlays.theme && e.type === 'overlayremove') { state.theme = ''; syncForm(); }
      writeUrl();
    });
    map.on('baselayerchange', function (e) { state.base = e.layer.gsId || ''; writeUrl(); });
    map.on('zoomend', function () { if (overlays.theme) { overlays.theme._drawLegend(); } });
    setupForm();
    refreshSummary();
    writeUrl();
    GeoMap.map = map;
    document.documentElement.setAttribute('data-map-started', '1');
  };

  // Redraw everything with fresh data (the big screen calls this every minute).
  GeoMap.refresh = function () { applyFilters(); };
})();
