// 测评录入 (phone): one site's standards → POST /api/assessment/rounds/<id>/results (multipart).
(function () {
  "use strict";
  var form = document.getElementById("record-form");
  if (!form) return;
  var position = document.getElementById("position");
  var errorBox = document.getElementById("record-error");
  var doneBox = document.getElementById("record-done");
  var here = null;

  if (navigator.geolocation) {
    navigator.geolocation.getCurrentPosition(
      function (p) {
        here = { lon: p.coords.longitude, lat: p.coords.latitude };
        position.textContent = "已获取签到位置（精度约 " + Math.round(p.coords.accuracy) + " 米）";
      },
      function () { position.textContent = "未能获取位置：结果仍可提交，但不记录签到位置"; },
      { enableHighAccuracy: true, timeout: 10000, maximumAge: 60000 }
    );
  } else {
    position.textContent = "此设备不支持定位";
  }

  function show(box, text) {
    errorBox.hidden = true;
    doneBox.hidden = true;
    box.textContent = text;
    box.hidden = false;
    box.scrollIntoView({ block: "center" });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var data = new FormData();
    var results = [];
    var problem = null;
    form.querySelectorAll("fieldset.standard:not([disabled])").forEach(function (fs) {
      var id = fs.getAttribute("data-standard");
      var checked = fs.querySelector("input[type=radio]:checked");
      if (!checked) return;
      var file = fs.querySelector("input[type=file]");
      var note = fs.querySelector("input[type=text]");
      if (checked.value === "fail" && !(file && file.files.length)) {
        problem = problem || (fs.querySelector("legend b").textContent + " 为不合格，请拍照");
      }
      results.push({ standard_id: Number(id), outcome: checked.value, note: note ? note.value : "" });
      if (file && file.files.length) data.append("photo_" + id, file.files[0]);
    });
    if (problem) { show(errorBox, problem); return; }
    if (!results.length) { show(errorBox, "请至少选择一条标准的结果"); return; }
    data.append("site_id", form.getAttribute("data-site"));
    data.append("results", JSON.stringify(results));
    if (here) { data.append("lon", here.lon); data.append("lat", here.lat); }
    var token = document.querySelector("meta[name=csrf-token]").getAttribute("content");
    var button = form.querySelector("button[type=submit]");
    button.disabled = true;
    fetch(form.getAttribute("data-url"), {
      method: "POST", body: data, credentials: "same-origin", headers: { "X-CSRFToken": token }
    }).then(function (response) {
      return response.json().then(function (body) { return { ok: response.ok, body: body }; });
    }).then(function (answer) {
      button.disabled = false;
      if (!answer.ok) { show(errorBox, answer.body.error || "提交失败"); return; }
      var far = answer.body.results.some(function (r) { return r.far; });
      show(doneBox, "已提交 " + answer.body.results.length + " 条结果" +
        (far ? "（签到位置离点位较远，已标记）" : ""));
      setTimeout(function () { window.location.reload(); }, 800);
    }).catch(function () {
      button.disabled = false;
      show(errorBox, "网络错误，请稍后重试");
    });
  });
})();
