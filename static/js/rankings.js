/* 督查考核排名 page: ranking table (sortable, searchable, paged, drill-down), red/black lists,
   sparklines, charts. Data comes from /api/rankings*; the first ranking is embedded in the page
   (a long one, e.g. ~30,000 grids, by its first page only: the whole table is fetched after). */
(function () {
  "use strict";

  var initial = JSON.parse(document.getElementById("rk-initial").textContent);
  var state = { of: initial.of, kind: initial.period.kind, label: initial.period.label,
                data: initial, sort: null, desc: false, page: 0, filter: "" };
  var PAGE = Number(document.getElementById("rk-pager").dataset.rows) || 100;
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

  function searchText(r) {
    var d = r.detail || {};
    return [r.name, r.key, d.title, d.code, d.unit, d.community, d.street].filter(function (x) {
      return x != null && x !== "";
    }).join(" ").toLowerCase();
  }

  function tableRows() {
    var rows = state.data.rows.slice();
    var words = state.filter.toLowerCase().split(/\s+/).filter(Boolean);
    if (words.length) {
      rows = rows.filter(function (r) {
        var text = searchText(r);
        return words.every(function (w) { return text.indexOf(w) >= 0; });
      });
    }
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
    return rows;
  }

  function renderPager(total, pages) {
    var partial = state.data.partial;
    var text = partial
      ? "共 " + state.data.rows_total + " 个，显示前 " + state.data.rows.length + " 个（正在加载全部…）"
      : (state.filter ? "找到 " : "共 ") + total + " 个" +
        (pages > 1 ? "，第 " + (state.page + 1) + " / " + pages + " 页" : "");
    ["rk-pager", "rk-pager-bottom"].forEach(function (id) {
      $(id).innerHTML = '<span class="rk-count">' + esc(text) + "</span>" + (pages > 1 && !partial
        ? '<button type="button" data-page="first"' + (state.page ? "" : " disabled") + ">首页</button>" +
          '<button type="button" data-page="prev"' + (state.page ? "" : " disabled") + ">上一页</button>" +
          '<button type="button" data-page="next"' + (state.page < pages - 1 ? "" : " disabled") + ">下一页</button>" +
          '<button type="button" data-page="last"' + (state.page < pages - 1 ? "" : " disabled") + ">末页</button>"
        : "");
    });
  }

  function renderTable() {
    var rows = tableRows();
    var pages = Math.max(1, Math.ceil(rows.length / PAGE));
    state.page = Math.min(state.page, pages - 1);
    renderPager(rows.length, pages);
    rows = rows.slice(state.page * PAGE, (state.page + 1) * PAGE);
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
    }).join("") || '<tr><td colspan="25" class="muted">没有符合条件的对象</td></tr>';
    document.querySelectorAll("#rk-table th[data-sort]").forEach(function (th) {
      th.classList.toggle("sorted", th.dataset.sort === state.sort);
      th.classList.toggle("desc", th.dataset.sort === state.sort && state.desc);
    });
  }

  // A list names at most LISTED rows: with ties (a city's grids: thousands at 100 分 or at 0)
  // the rest are counted, not listed.
  var LISTED = 10;
  function listed(rows, item, rest) {
    return rows.slice(0, LISTED).map(item).join("") +
      (rows.length > LISTED ? '<li class="more">' + rest(rows.length - LISTED) + "</li>" : "");
  }
  function redItem(r) { return "<li><b>" + esc(r.name) + "</b> " + num(r.score, 2) + " 分</li>"; }

  function renderLists() {
    var ranked = state.data.rows.filter(function (r) { return r.ranked; });
    var red = ranked.filter(function (r) { return r.rank <= 3; });
    if (state.data.partial) {  // the embedded first page: the top, not yet the bottom
      $("rk-red").innerHTML = red.slice(0, LISTED).map(redItem).join("") || "<li>本期无参与排名的对象</li>";
      $("rk-black").innerHTML = "<li class=\"more\">加载中…</li>";
      return;
    }
    $("rk-red").innerHTML = listed(red, redItem, function (n) {
      return "另有 " + n + " 个并列前三";
    }) || "<li>本期无参与排名的对象</li>";
    var black = ranked.filter(function (r) { return r.bottom; });
    var below = ranked.filter(function (r) { return r.below_threshold && !r.bottom; });
    $("rk-black").innerHTML = listed(black, function (r) {
      return "<li><b>" + esc(r.name) + "</b> " + num(r.score, 2) + " 分（第" + r.rank + "名）</li>";
    }, function (n) { return "另有 " + n + " 个并列后" + state.data.settings.bottom_n + "名"; }) +
      (below.length ? '<li class="more">另有 ' + below.length + " 个低于" +
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
    // The nine largest categories and the rest summed as 其他: the bars add up to the total.
    var byCategory = c.overdue_by_category;
    var cat = byCategory.length > 10 ? byCategory.slice(0, 9).concat([{
      name: "其他（" + (byCategory.length - 9) + " 类）",
      value: byCategory.slice(9).reduce(function (sum, x) { return sum + x.value; }, 0)
    }]) : byCategory.slice();
    cat.reverse();
    chart("chart-category").setOption({
      animation: false,
      tooltip: {},
      grid: { left: 90, right: 45, top: 10, bottom: 25 },
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
    state.page = 0;
    var embedded = state.data && state.data.of === state.of && state.data.period.label === state.label
      && state.data.period.kind === state.kind;
    var ranking = embedded ? Promise.resolve(state.data) : getJSON("/api/rankings?" + query({ of: state.of }));
    ranking.then(function (data) {
      state.data = data;
      state.label = data.period.label;
      $("rk-from").value = data.period.label;
      $("rk-period-title").textContent = data.period.title;
      renderLists();
      renderTable();
      loadTrend();
      if (push) { history.replaceState(null, "", "?" + query({ of: state.of })); }
      if (data.partial) {
        return getJSON("/api/rankings?" + query({ of: data.of })).then(function (full) {
          if (state.data !== data) { return; }  // another tab or period was chosen meanwhile
          state.data = full;
          renderLists();
          renderTable();
        });
      }
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
      state.page = 0;
      state.filter = $("rk-search").value = "";
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
      state.page = 0;
      renderTable();
    });
  });
  var searching = null;
  $("rk-search").addEventListener("input", function () {
    var value = this.value;
    clearTimeout(searching);
    searching = setTimeout(function () { state.filter = value.trim(); state.page = 0; renderTable(); }, 150);
  });
  document.querySelectorAll(".rk-pager").forEach(function (pager) {
    pager.addEventListener("click", function (ev) {
      var b = ev.target.closest("button[data-page]");
      if (!b) { return; }
      var pages = Math.max(1, Math.ceil(tableRows().length / PAGE));
      state.page = { first: 0, prev: state.page - 1, next: state.page + 1, last: pages - 1 }[b.dataset.page];
      renderTable();
      if (pager.id === "rk-pager-bottom") { $("rk-table").scrollIntoView(); }
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
