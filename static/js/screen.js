/* The big screen (/screen): city-wide figures and the latest issues, refreshed every minute
 * together with the map (GeoMap.refresh). A full reload twice a day keeps a wall display that
 * runs for weeks from accumulating state. Text from the server goes through textContent. */
(function () {
  'use strict';
  var settings = JSON.parse(document.getElementById('gs-screen-config').textContent);
  var started = Date.now();

  function $(id) { return document.getElementById(id); }

  function setText(id, value) { $(id).textContent = value; }

  // The deployment's time zone (config TIMEZONE), whatever the wall PC's clock is set to.
  var format = new Intl.DateTimeFormat('zh-CN', {
    timeZone: settings.timezone, year: 'numeric', month: 'long', day: 'numeric',
    hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23'
  });

  function clock() { setText('gs-clock', format.format(new Date())); }

  function render(data) {
    setText('kpi-open', data.open);
    setText('kpi-overdue', data.overdue);
    setText('kpi-closed', data.closed_this_week);
    setText('kpi-rate', data.close_rate === null ? '—' : (data.close_rate * 100).toFixed(1) + '%');
    var colours = {};
    var classes = $('gs-classes');
    classes.textContent = '';
    data.classes.forEach(function (c) {
      colours[c.id] = c.colour;
      var row = document.createElement('div'), dot = document.createElement('i');
      dot.style.background = c.colour;
      row.appendChild(dot);
      row.appendChild(document.createTextNode(c.title + ' ' + c.count));
      classes.appendChild(row);
    });
    var list = $('gs-latest');
    list.textContent = '';
    data.latest.forEach(function (i) {
      var li = document.createElement('li');
      var time = document.createElement('time');
      time.textContent = i.reported_at.slice(5, 10).replace('-', '/') + ' ' + i.reported_at.slice(11, 16);
      var what = document.createElement('span');
      what.className = 'what';
      what.textContent = i.category + (i.place ? ' · ' + i.place : '') + (i.leader ? ' · ' + i.leader : '');
      what.title = i.description || '';
      var state = document.createElement('span');
      state.className = 'state';
      state.style.background = colours[i.class] || '#555';
      state.textContent = i.status_label;
      li.appendChild(time);
      li.appendChild(what);
      li.appendChild(state);
      list.appendChild(li);
    });
    setText('gs-updated', data.at.slice(11, 19));
    $('gs-notice').hidden = true;
    window.gsScreen = data;
  }

  function load() {
    fetch(settings.data, { credentials: 'same-origin', cache: 'no-cache', headers: { Accept: 'application/json' } })
      .then(function (r) {
        if (r.status === 401) { throw new Error('登录已过期，请重新登录'); }
        if (!r.ok) { throw new Error('数据加载失败（' + r.status + '），稍后自动重试'); }
        return r.json();
      })
      .then(render)
      .catch(function (e) { var n = $('gs-notice'); n.textContent = e.message; n.hidden = false; });
  }

  function tick() {
    if (Date.now() - started > 12 * 3600 * 1000) { location.reload(); return; }
    load();
    if (window.GeoMap && GeoMap.refresh) { GeoMap.refresh(); }
  }

  clock();
  setInterval(clock, 1000);
  load();
  setInterval(tick, settings.refresh * 1000);
})();
