/* 督查考核排名 page: ranking table (sortable, drill-down), red/black lists, sparklines, charts.
   Data comes from /api/rankings*; the first ranking is embedded in the page. */
(function () {
  "use strict";

  var initial = JSON.parse(document.getElementById("rk-initial").textContent);
  var state = { of: initial.of, kind: initial.period.kind, label: initial.period.label,
                data: initial, sort: null, desc: false };
  var charts = {};

  function $(id) { return document.getElementById(id); }
  function esc(s) {
    return String(s == null ? "" : s).replace(/[&<>"]/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c];
    });
  }
  function pct(v) { return v == null ? "—" : (v * 100).toFixed(1) + "%"; }
  function num(v, d) { return v == null ? "—" : Number(v).toFixed(d || 0); }
  function query(extra) {
    var p = new URLSearchParams({ period: state.kind, from: state.label });
    Object.keys(extra || {}).forEach(function (k) { p.set(k, extra[k]); });
    return p.toString();
  }
  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        return r.json().then(function (body) {
          if (!r.ok) { throw new Error(body.error || ("HTTP " + r.status)); }
          return body;
        });
      });
  }

  function flags(r) {
    var out = [];
    if (r.bottom) { out.push("后" + state.data.settings.bottom_n + "名"); }
    if (r.below_threshold) { out.push("低于" + state.data.settings.threshold + "分"); }
    return out.join("、");
  }

  function drillCell(r, field) {
    var v = r[field];
    if (!v) { return '<td class="num">' + (v == null ? "—" : v) + "</td>"; }
    return '<td class="num"><a href="#" class="drill" data-key="' +
      (r.key == null ? "none" : esc(r.key)) + '" data-ind="' + field + '">' + v + "</a></td>";
  }

  function sparkline(values) {
    var pts = values.map(function (v, i) { return [i, v]; })
      .filter(function (p) { return p[1] != null; });
    if (pts.length < 2) { return '<span class="spark-none">—</span>'; }
    var w = 90, h = 22, n = values.length - 1;
    var path = pts.map(function (p) {
      return (p[0] * w / n).toFixed(1) + "," + (h - 2 - p[1] * (h - 4) / 100).toFixed(1);
    }).join(" ");
    var last = pts[pts.length - 1];
    return '<svg class="spark" width="' + w + '" height="' + h + '" viewBox="0 0 ' + w + " " + h +
      '"><line x1="0" x2="' + w + '" y1="' + (h - 2 - 85 * (h - 4) / 100).toFixed(1) + '" y2="' +
      (h - 2 - 85 * (h - 4) / 100).toFixed(1) + '" class="spark-threshold"/>' +
      '<polyline points="' + path + '"/><circle r="2" cx="' + (last[0] * w / n).toFixed(1) +
      '" cy="' + (h - 2 - last[1] * (h - 4) / 100).toFixed(1) + '"/></svg>';
  }

  function renderTable() {
    var rows = state.data.rows.slice();
    if (state.sort) {
      var k = state.sort, sign = state.desc ? -1 : 1;
      rows.sort(function (a, b) {
        var x = a[k], y = b[k];
        if (x == null && y == null) { return 0; }
        if (x == null) { return 1; }
        if (y == null) { return -1; }
        return (x < y ? -1 : x > y ? 1 : 0) * sign;
      });
    }
    var trend = state.trend || {};
    $("rk-table").querySelector("tbody").innerHTML = rows.map(function (r) {
      var detail = r.detail || {};
      var sub = detail.title || detail.code || detail.unit || detail.community || detail.street || "";
      var t = trend[r.key == null ? "none" : r.key];
      return '<tr class="' + (r.flagged ? "flagged" : "") + (r.key == null ? " unassigned" : "") +
        '"><td class="num">' + (r.rank || "—") + "</td>" +
        "<td>" + esc(r.name) + (sub ? '<div class="sub">' + esc(sub) + "</div>" : "") + "</td>" +
        "<td>" + (t ? sparkline(t) : '<span class="spark-none">…</span>') + "</td>" +
        '<td class="num score">' + num(r.score, 2) + "</td>" +
        '<td class="num">' + pct(r.on_time_rate) + "</td>" +
        '<td class="num">' + pct(r.close_rate) + "</td>" +
        '<td class="num">' + pct(r.rework_rate) + "</td>" +
        '<td class="num">' + pct(r.satisfaction_rate) + "</td>" +
        ["received", "should_close", "closed", "closed_on_time", "open_end", "overdue_end",
         "reworked", "relapses", "handed_overdue", "extension_granted"
        ].map(function (f) { return drillCell(r, f); }).join("") +
        '<td class="num">' + pct(r.patrol_rate) + "</td>" +
        '<td class="num">' + (r.patrol_due == null ? "—" : r.patrol_due) + "</td>" +
        '<td class="num">' + (r.patrol_done == null ? "—" : r.patrol_done) + "</td>" +
        '<td class="num">' + num(r.avg_hours_to_close, 1) + "</td>" +
        '<td class="flag">' + esc(flags(r)) + "</td></tr>";
    }).join("");
    document.querySelectorAll("#rk-table th[data-sort]").forEach(function (th) {
      th.classList.toggle("sorted", th.dataset.sort === state.sort);
      th.classList.toggle("desc", th.dataset.sort === state.sort && state.desc);
    });
  }

  function renderLists() {
    var ranked = state.data.rows.filter(function (r) { return r.ranked; });
    $("rk-red").innerHTML = ranked.filter(function (r) { return r.rank <= 3; }).map(function (r) {
      return "<li><b>" + esc(r.name) + "</b> " + num(r.score, 2) + " 分</li>";
    }).join("") || "<li>本期无参与排名的对象</li>";
    var black = ranked.filter(function (r) { return r.bottom; });
    var below = ranked.filter(function (r) { return r.below_threshold && !r.bottom; });
    $("rk-black").innerHTML = black.map(function (r) {
      return "<li><b>" + esc(r.name) + "</b> " + num(r.score, 2) + " 分（第" + r.rank + "名）</li>";
    }).join("") + (below.length ? '<li class="more">另有 ' + below.length + " 个低于" +
      state.data.settings.threshold + "分</li>" : "") || "<li>无</li>";
  }

  function renderCards(t) {
    var items = [
      ["受理", t.received], ["应结案", t.should_close], ["结案", t.closed],
      ["结案率", pct(t.close_rate)], ["按期结案率", pct(t.on_time_rate)],
      ["期末未结", t.open_end], ["期末超期", t.overdue_end], ["返工率", pct(t.rework_rate)],
      ["综合得分", num(t.score, 2)]
    ];
    if (t.patrol_due) { items.push(["巡查到位率（" + t.patrol_done + "/" + t.patrol_due + "）", pct(t.patrol_rate)]); }
    $("rk-cards").innerHTML = items.map(function (i) {
      return '<div class="card"><div class="v">' + i[1] + '</div><div class="k">' + i[0] + "</div></div>";
    }).join("");
  }

  function chart(id) {
    if (!charts[id]) { charts[id] = echarts.init($(id), null, { renderer: "canvas" }); }
    return charts[id];
  }

  function renderCharts(c) {
    var w = c.weekly;
    chart("chart-weekly").setOption({
      animation: false,
      tooltip: { trigger: "axis" },
      legend: { data: ["受理", "结案", "期末超期"], top: 0 },
      grid: { left: 40, right: 10, top: 30, bottom: 40 },
      xAxis: { type: "category", data: w.weeks, axisLabel: { rotate: 30 } },
      yAxis: { type: "value" },
      series: [
        { name: "受理", type: "bar", data: w.received, itemStyle: { color: "#5470c6" } },
        { name: "结案", type: "bar", data: w.closed, itemStyle: { color: "#91cc75" } },
        { name: "期末超期", type: "line", data: w.overdue_end, itemStyle: { color: "#b71c1c" } }
      ]
    }, true);
    var cat = c.overdue_by_category.slice(0, 10).reverse();
    chart("chart-category").setOption({
      animation: false,
      tooltip: {},
      grid: { left: 90, right: 20, top: 10, bottom: 25 },
      xAxis: { type: "value" },
      yAxis: { type: "category", data: cat.map(function (x) { return x.name; }) },
      series: [{ type: "bar", data: cat.map(function (x) { return x.value; }),
                 itemStyle: { color: "#d9534f" }, label: { show: true, position: "right" } }]
    }, true);
    chart("chart-source").setOption({
      animation: false,
      tooltip: { trigger: "item", formatter: "{b}：{c} 件（{d}%）" },
      series: [{ type: "pie", radius: ["35%", "65%"], data: c.overdue_by_source,
                 label: { formatter: "{b}\n{c}" } }]
    }, true);
  }

  function loadTrend() {
    state.trend = null;
    getJSON("/api/rankings/trend?" + query({ of: state.of })).then(function (t) {
      var byKey = {};
      t.rows.forEach(function (r) { byKey[r.key == null ? "none" : r.key] = r.score; });
      state.trend = byKey;
      renderTable();
    }).catch(function () { state.trend = {}; renderTable(); });
  }

  function load(push) {
    $("rk-download").href = "/api/rankings/report.xlsx?" + query();
    var ranking = state.data && state.data.of === state.of && state.data.period.label === state.label
      && state.data.period.kind === state.kind
      ? Promise.resolve(state.data) : getJSON("/api/rankings?" + query({ of: state.of }));
    ranking.then(function (data) {
      state.data = data;
      state.label = data.period.label;
      $("rk-from").value = data.period.label;
      $("rk-period-title").textContent = data.period.title;
      renderLists();
      renderTable();
      loadTrend();
      if (push) { history.replaceState(null, "", "?" + query({ of: state.of })); }
    }).catch(function (e) { alert("加载排名失败：" + e.message); });
    getJSON("/api/rankings?" + query({ of: "all" })).then(function (d) {
      renderCards(d.rows[0] || {});
    });
    getJSON("/api/rankings/charts?" + query()).then(renderCharts);
  }

  function drill(key, indicator) {
    var title = state.data.indicators[indicator];
    var row = state.data.rows.find(function (r) { return String(r.key == null ? "none" : r.key) === key; });
    $("rk-drill-title").textContent = (row ? row.name : "") + " · " + title + "（" + state.data.period.title + "）";
    $("rk-drill-body").innerHTML = "加载中…";
    $("rk-drill").showModal();
    getJSON("/api/rankings/issues?" + query({ of: state.of, key: key, indicator: indicator }))
      .then(function (d) {
        $("rk-drill-body").innerHTML = "<p>共 " + d.total + " 件</p><table class=\"grid\"><thead><tr>" +
          "<th>编号</th><th>类别</th><th>来源</th><th>位置</th><th>上报</th><th>时限</th><th>期末状态</th><th>超期天数</th>" +
          "</tr></thead><tbody>" + d.issues.map(function (i) {
            return "<tr><td>" + i.id + "</td><td>" + esc(i.category) + "</td><td>" + esc(i.source) +
              "</td><td>" + esc(i.place || "") + "</td><td>" + esc((i.reported_at || "").slice(0, 16).replace("T", " ")) +
              "</td><td>" + esc((i.deadline || "").slice(0, 16).replace("T", " ")) + "</td><td>" +
              esc(i.status_at_end_title) + "</td><td>" + (i.overdue_days == null ? "" : i.overdue_days) + "</td></tr>";
          }).join("") + "</tbody></table>";
      }).catch(function (e) { $("rk-drill-body").textContent = "加载失败：" + e.message; });
  }

  document.querySelectorAll(".rk-switch button").forEach(function (b) {
    b.addEventListener("click", function () {
      document.querySelectorAll(".rk-switch button").forEach(function (x) { x.classList.remove("on"); });
      b.classList.add("on");
      state.kind = b.dataset.kind;
      state.label = "";
      document.querySelector("#rk-controls input[name=period]").value = state.kind;
      load(true);
    });
  });
  document.querySelectorAll(".rk-tabs a").forEach(function (a) {
    a.addEventListener("click", function (ev) {
      ev.preventDefault();
      document.querySelectorAll(".rk-tabs a").forEach(function (x) { x.classList.remove("on"); });
      a.classList.add("on");
      state.of = a.dataset.of;
      state.sort = null;
      load(true);
    });
  });
  function step(dir) {
    // A moment half a day outside the current period names the neighbouring one.
    var d = new Date(state.data.period[dir < 0 ? "from" : "to"]);
    d = new Date(d.getTime() + (dir < 0 ? -1 : 1) * 3600 * 1000 * 12);
    state.label = d.toISOString().slice(0, 10);
    load(true);
  }
  $("rk-prev").addEventListener("click", function () { step(-1); });
  $("rk-next").addEventListener("click", function () { step(1); });
  $("rk-from").addEventListener("change", function () { state.label = this.value.trim(); load(true); });
  $("rk-controls").addEventListener("submit", function (ev) {
    ev.preventDefault(); state.label = $("rk-from").value.trim(); load(true);
  });
  document.querySelectorAll("#rk-table th[data-sort]").forEach(function (th) {
    th.addEventListener("click", function () {
      var k = th.dataset.sort;
      state.desc = state.sort === k ? !state.desc : ["score", "on_time_rate", "close_rate", "satisfaction_rate", "patrol_rate"].indexOf(k) < 0 && k !== "rank" && k !== "name";
      state.sort = k;
      renderTable();
    });
  });
  $("rk-table").addEventListener("click", function (ev) {
    var a = ev.target.closest("a.drill");
    if (a) { ev.preventDefault(); drill(a.dataset.key, a.dataset.ind); }
  });
  window.addEventListener("resize", function () {
    Object.keys(charts).forEach(function (k) { charts[k].resize(); });
  });
  load(false);
})();
